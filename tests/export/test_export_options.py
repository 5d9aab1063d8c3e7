"""ExportOptions: a keyword-only parameter object that `latent-atlas export`, `fit-prior` and the Python API
all build the same way (no training: the export itself is replaced by a recorder)."""

from __future__ import annotations

import dataclasses

import pytest

from latent_atlas.cli.main import main as cli
from latent_atlas.export import exporter
from latent_atlas.export.exporter import FIT_PRIOR_SETTINGS, ExportOptions, export_bundle, fit_bundle_prior
from latent_atlas.runtime.evaluation import DEFAULT_IW_SAMPLES, QUICK_IW_IMAGES


def test_export_options_are_keyword_only_and_validated():
    with pytest.raises(TypeError, match="positional"):
        ExportOptions("int8")  # a reordering of the fields can never swap two settings
    assert ExportOptions().iw_samples == DEFAULT_IW_SAMPLES and ExportOptions().iw_images == QUICK_IW_IMAGES
    with pytest.raises(ValueError, match="--prior-components must be from 0"):
        ExportOptions(prior_components=-1)
    with pytest.raises(ValueError, match="variant must be one of"):
        ExportOptions(variant="int4")


def test_export_bundle_takes_options_and_keywords_and_refuses_before_any_work(tmp_path):
    missing_run = tmp_path / "no-such-run"  # never read: the options are refused first
    with pytest.raises(ValueError, match="--iw-samples must be from 0"):
        export_bundle(missing_run, tmp_path / "out", ExportOptions(variant="fp16"), iw_samples=-1)
    with pytest.raises(TypeError, match="quantise"):
        export_bundle(missing_run, tmp_path / "out", quantise="int8")
    with pytest.raises(TypeError, match="not variant"):
        fit_bundle_prior("mnist", tmp_path / "out", 5, variant="int8")
    assert set(FIT_PRIOR_SETTINGS) <= {f.name for f in dataclasses.fields(ExportOptions)}
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, expected", [
    ([], ExportOptions()),
    (["--quantize", "int8", "--name", "n", "--force", "--no-verify", "--iw-samples", "7", "--iw-images", "all",
      "--weights", "last", "--static-batch", "4", "--ort", "--prior-components", "3"],
     ExportOptions(variant="int8", name="n", force=True, verify=False, iw_samples=7, iw_images=None, weights="last",
                   static_batch=4, ort_format=True, prior_components=3)),
    (["--fp16", "--iw-images", "20"], ExportOptions(variant="fp16", iw_images=20)),
])
def test_export_command_builds_the_options_asked_for(monkeypatch, tmp_path, argv, expected):
    seen = {}

    def record(run_dir, out_dir, options=None, **kwargs):
        seen.update(options=options, kwargs=kwargs)
        return out_dir

    monkeypatch.setattr(exporter, "export_bundle", record)
    assert cli(["export", str(tmp_path / "run"), "--out", str(tmp_path / "out"), *argv]) == 0
    assert seen["options"] == expected
    assert set(seen["kwargs"]) == {"data_dir", "command"}
