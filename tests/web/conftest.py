"""Real headless Chromium (Debian's package) driven by Playwright, on the site `latent-atlas web --serve` serves.

Never a browser download: executable_path points at the system chromium that
scripts/install-system-deps.sh installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from latent_atlas.web.browser import SOFTWARE_WEBGPU_FLAGS, launch

PAGE_TIMEOUT_MS = 30_000


def start_server(*bundles: str, cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`latent-atlas web [-m BUNDLE ...] --serve --port 0` in a subprocess; returns it and the URL it prints."""
    process = subprocess.Popen([sys.executable, "-m", "latent_atlas.cli.main", "web", *(a for b in bundles for a in ("-m", b)), "--serve", "--port", "0",
                                "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    for line in process.stdout:
        if line.startswith("open "):
            return process, line.split()[1]
    process.wait(timeout=10)
    raise RuntimeError(f"latent-atlas web --serve exited {process.returncode}: {process.stderr.read()}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def site_url():
    process, url = start_server()
    yield url
    stop_server(process)


def launch_chromium(playwright, extra_flags: tuple[str, ...] = ()):
    try:
        context, user_data = launch(playwright, extra_flags)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    return context, user_data


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def _context(playwright, flags=()):
    context, user_data = launch_chromium(playwright, flags)
    yield context
    context.close()
    shutil.rmtree(user_data, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_context(playwright_driver):
    yield from _context(playwright_driver)


@pytest.fixture(scope="session")
def software_webgpu_context(playwright_driver):
    """Chromium with its software WebGPU adapter (SwiftShader), for machines without a GPU."""
    yield from _context(playwright_driver, SOFTWARE_WEBGPU_FLAGS)


def open_page(context, url: str, query: str = "", routes: dict | None = None):
    """Opens the explorer and waits until its first model is loaded (or its error is shown). `routes`:
    {URL glob: handler} that Playwright answers instead of the server (page.route)."""
    page = context.new_page()
    for pattern, handler in (routes or {}).items():
        page.route(pattern, handler)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + query)
    page.wait_for_function("window.__atlas !== undefined")
    page.evaluate("window.__atlas.ready")
    page.errors = errors
    return page


@pytest.fixture
def open_explorer(browser_context, site_url):
    """open_explorer(query) -> a page of the explorer served by `latent-atlas web --serve`, loaded."""
    pages = []

    def start(query: str = "?provider=wasm", routes: dict | None = None):
        pages.append(open_page(browser_context, site_url, query, routes))
        return pages[-1]

    yield start
    for page in pages:
        page.close()


@pytest.fixture
def page(browser_context, site_url):
    page = open_page(browser_context, site_url, "?provider=wasm")
    yield page
    page.close()
