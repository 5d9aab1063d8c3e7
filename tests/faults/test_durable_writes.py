"""Faults while writing: a second writer, a kill at every step of a write, a full disk. Each ends in one
line (naming the holder, or the path that could not be written) and loses nothing already saved."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import files
from latent_atlas.runtime.files import DirectoryBusy, append_text, atomic_write, directory_lock, staged_folder

from .conftest import fill, in_child, kill_at_step, one_line_error, run_cli

HOLD = """
import sys, time
from latent_atlas.runtime.files import directory_lock
with directory_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold_lock(directory: Path, command: str, seconds: float = 60) -> subprocess.Popen:
    """Another process holding `directory`'s lock as `command` would; returns once it holds it."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(directory), command, str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


# --- one writer at a time ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["train", "--limit", "100", "--epochs", "1", "--quiet", "--no-plots", "--out", "{dir}"],
    ["export", "{dir}-run", "--out", "{dir}"],
    ["fit-prior", "-m", "mnist", "--components", "2", "--out", "{dir}"],
])
def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path, capsys, argv):
    target = tmp_path / "out"
    holder = hold_lock(target, "latent-atlas train --out out")
    try:
        code, _, err = run_cli(capsys, *[a.replace("{dir}", str(target)) for a in argv])
        message = one_line_error(err, argv[0])
        assert code == 2 and f"process {holder.pid} on " in message and "latent-atlas train --out out" in message
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    target = tmp_path / "run"
    holder = hold_lock(target, "latent-atlas train")
    with pytest.raises(DirectoryBusy, match=f"process {holder.pid}"):
        with directory_lock(target):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with directory_lock(target):  # the kernel dropped the dead process's lock
        assert files.lock_path(target).is_file()
    assert not files.lock_path(target).exists()  # and a clean exit removes the file


CONTEND = """
import json, os, sys, time
from latent_atlas.runtime.files import DirectoryBusy, directory_lock
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
try:
    with directory_lock(sys.argv[1]):
        began = time.time()
        time.sleep(0.3)
        print(json.dumps([began, time.time()]))
except DirectoryBusy as exc:
    print(json.dumps(str(exc)))
"""


def test_concurrent_writers_never_overlap(tmp_path):
    start = time.time() + 1.5
    processes = [subprocess.Popen([sys.executable, "-c", CONTEND, str(tmp_path / "run"), str(start)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(6)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in processes]
    held = sorted(r for r in results if isinstance(r, list))
    refused = [r for r in results if isinstance(r, str)]
    assert held and all("is being written by process" in r for r in refused)
    assert all(earlier[1] <= later[0] for earlier, later in zip(held, held[1:]))  # one at a time


# --- a kill at every step ----------------------------------------------------------------------------

# The calls a write is made of: the test kills the process at each one in turn.
STEPS = {os: ["fsync", "rename", "replace", "unlink", "chmod", "ftruncate", "pwrite"],
         shutil: ["rmtree", "copyfile"], files: ["exchange"], tempfile: ["mkdtemp"]}


def bundle_name(target: Path) -> str:
    """The name of the complete, verified bundle at `target`."""
    return fmt.read(target, verify=True).name


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


@pytest.mark.parametrize("exchange", ["exchange", "two renames"])
def test_a_bundle_replaced_by_a_process_killed_at_any_step_is_old_or_new(tmp_path, exchange):
    """At every step: the old or the new complete bundle at the path; with the one-step exchange at every
    instant, with two renames at worst until the next writer restores the old one by itself."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    if exchange == "exchange" and not files.exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this system or file system has no renameat2 RENAME_EXCHANGE")
    target = tmp_path / "bundle"
    shutil.copytree(fmt.BUNDLED_MODELS_DIR / "mnist", target)
    new = fmt.BUNDLED_MODELS_DIR / "fashion-mnist"

    def replace(k: int):
        def body():
            if exchange == "two renames":
                files.exchange = lambda a, b: False
            kill_at_step(k, STEPS)
            with staged_folder(target) as staging:
                for path in new.iterdir():
                    shutil.copyfile(path, staging / path.name)
        return body

    outcomes, missing = [], 0
    for k in range(1, 200):
        code = in_child(replace(k))
        assert code in (0, 77), f"the write failed at step {k} (exit {code}) instead of being killed"
        if exchange == "exchange" or code == 0:
            assert bundle_name(target) in ("mnist", "fashion-mnist"), k  # never missing, never half
        else:
            missing += not target.exists()
        with directory_lock(target):  # the next writer: recovers and tidies
            pass
        outcomes.append(bundle_name(target))
        assert leftovers(target) == [], k
        if code == 0:
            break
        if outcomes[-1] == "fashion-mnist":  # a kill after the swap: put the old one back for the next k
            shutil.rmtree(target)
            shutil.copytree(fmt.BUNDLED_MODELS_DIR / "mnist", target)
    assert code == 0 and outcomes[-1] == "fashion-mnist" and "mnist" in outcomes and k > 5
    assert missing == (1 if exchange == "two renames" else 0)  # the one instant the next writer repairs


def test_a_file_written_by_a_process_killed_at_any_step_is_old_or_new(tmp_path):
    target = tmp_path / "checkpoint.json"
    target.write_text("old")
    for k in range(1, 100):
        code = in_child(lambda: (kill_at_step(k, {**STEPS, Path: ["write_text"]}),
                                 atomic_write(target, lambda tmp: tmp.write_text("new " * 1000))))
        assert code in (0, 77)
        assert target.read_text() in ("old", "new " * 1000), k
        if code == 0:
            break
        target.write_text("old")
    assert code == 0 and k > 3


# --- a full disk -------------------------------------------------------------------------------------

def test_an_append_that_fills_the_disk_leaves_no_half_line(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"epoch": 1}\n')
    write = os.write

    def half_then_full(fd, data):
        if len(data) > 4:
            return write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match=f"No space left on device: '{log}'"):
        append_text(log, json.dumps({"epoch": 2, "test_neg_elbo": 150.0}) + "\n")
    monkeypatch.undo()
    assert log.read_text() == '{"epoch": 1}\n'


def test_a_bundle_replaced_on_a_full_disk_is_kept_and_named(small_filesystem):
    disk = small_filesystem(3.5)  # the MNIST bundle (2.4 MB) fits once, not twice
    target = disk / "bundle"
    shutil.copytree(fmt.BUNDLED_MODELS_DIR / "mnist", target)
    with pytest.raises(OSError) as caught:
        with staged_folder(target) as staging:
            for path in (fmt.BUNDLED_MODELS_DIR / "mnist").iterdir():
                shutil.copyfile(path, staging / path.name)
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "No space left on device" in message and str(target) in message
    assert bundle_name(target) == "mnist" and leftovers(target) == []


@pytest.mark.slow
def test_train_and_export_on_a_full_disk_say_so_in_one_line_and_keep_what_was_saved(small_filesystem, data_dir,
                                                                                     capsys):
    from latent_atlas.train.checkpoint import load_checkpoint

    disk = small_filesystem(48)
    run, out = disk / "run", disk / "bundle"
    tiny = ["--limit", "1000", "--eval-images", "200", "--quiet", "--no-plots", "--data-dir", str(data_dir)]
    assert run_cli(capsys, "train", "--epochs", "1", "--out", str(run), *tiny)[0] == 0
    assert run_cli(capsys, "export", str(run), "--out", str(out), "--iw-samples", "0", "--data-dir",
                   str(data_dir))[0] == 0
    fill(disk, 256 << 10)

    code, _, err = run_cli(capsys, "train", "--epochs", "2", "--resume", "--out", str(run), *tiny)
    message = one_line_error(err, "train")
    assert code == 2 and "No space left on device" in message and str(run) in message
    checkpoint = load_checkpoint(run)
    assert checkpoint.epoch == 1 and checkpoint.tensors("last")  # the previous checkpoint, verified
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines if line.strip()]

    code, _, err = run_cli(capsys, "export", str(run), "--out", str(out), "--iw-samples", "0", "--force",
                           "--weights", "last", "--data-dir", str(data_dir))
    message = one_line_error(err.strip().splitlines()[-1], "export")  # after export's progress lines
    assert "Traceback" not in err
    assert code == 2 and "No space left on device" in message and str(out) in message
    assert fmt.read(out, verify=True).manifest.training["epoch"] == 1 and leftovers(out) == []
