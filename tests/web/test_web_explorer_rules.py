"""Both explorers read their shared rules from runtime/explorer_rules.py: the desktop app imports them, and
the site's config.json carries them to the page, which retypes none of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from latent_atlas.runtime import explorer_rules
from latent_atlas.web import site

APP = Path(site.__file__).parent / "app"


def test_the_site_config_carries_the_shared_rules():
    config = site.site_config([], "0.0.0")
    assert config["explorer"] == explorer_rules.site_config()


def test_the_desktop_explorer_reads_the_same_rules():
    from latent_atlas.desktop_app import engine, latent_map, panels, state, theme

    assert panels.GRID_SIZES is state.GRID_SIZES is explorer_rules.GRID_SIZES
    assert panels.INTERPOLATION_STEPS is state.INTERPOLATION_STEPS is explorer_rules.INTERPOLATION_STEPS
    assert state.GRID_SOURCES is explorer_rules.GRID_SOURCES and panels.GRID_SOURCE_NAMES is explorer_rules.GRID_SOURCE_NAMES
    assert latent_map.HOME_MARGIN == explorer_rules.HOME_MARGIN and latent_map.ZOOM_STEP == explorer_rules.ZOOM_STEP
    assert engine.VIEW_PERCENTILES is explorer_rules.VIEW_PERCENTILES
    assert [c.name() for c in theme.CLASS_COLOURS] == list(explorer_rules.CLASS_COLOURS)
    assert theme.UNLABELLED.name() == explorer_rules.UNLABELLED_COLOUR
    # The state clamps to the shared range.
    explorer = state.ExplorerState()
    explorer.set_grid_options(n=0)
    assert explorer.grid_n == explorer_rules.GRID_SIZES[0]
    explorer.set_interpolation(steps=10_000)
    assert explorer.interp_steps == explorer_rules.INTERPOLATION_STEPS[1]


def test_the_browser_app_retypes_none_of_the_rules():
    sources = {path.name: path.read_text(encoding="utf-8") for path in [*APP.glob("*.html"), *APP.glob("js/*.js")]}
    for name, text in sources.items():
        for colour in (*explorer_rules.CLASS_COLOURS, explorer_rules.UNLABELLED_COLOUR):
            assert colour.lower() not in text.lower(), f"{name} retypes the colour {colour}"
        for method in explorer_rules.INTERPOLATION_METHODS:
            assert f'value="{method}"' not in text, f"{name} retypes the interpolation method {method}"
    html = sources["index.html"]
    for field in ("grid-n", "interp-steps"):
        tag = re.search(rf'<input id="{field}"[^>]*>', html).group(0)
        assert " min=" not in tag and " max=" not in tag, f"index.html gives #{field} a range of its own: {tag}"
    assert re.search(r'<select id="grid-source">\s*</select>', html)


@pytest.mark.browser
def test_the_page_takes_its_controls_ranges_and_colours_from_config(page):
    ranges = page.evaluate("['grid-n', 'interp-steps'].map(id => { const f = document.getElementById(id); "
                           "return [Number(f.min), Number(f.max)]; })")
    assert ranges == [list(explorer_rules.GRID_SIZES), list(explorer_rules.INTERPOLATION_STEPS)]
    options = page.evaluate("['grid-source', 'interp-method'].map(id => Array.from(document.getElementById(id).options, "
                            "o => [o.value, o.text]))")
    assert options[0] == [list(item) for item in explorer_rules.GRID_SOURCE_NAMES.items()]
    assert [value for value, _ in options[1]] == list(explorer_rules.INTERPOLATION_METHODS)
    dots = page.evaluate("Array.from(document.querySelectorAll('#legend span'), s => getComputedStyle(s).backgroundColor)")
    assert dots == [f"rgb({', '.join(map(str, explorer_rules.rgb(c)))})" for _, c in explorer_rules.legend_rows(
        page.evaluate("window.__atlas.state.model.manifest.dataset.class_names"))]
    # A size below the range decodes the smallest grid the range allows.
    page.fill("#grid-n", "1")
    page.click("#grid-button")
    page.wait_for_function(f"window.__atlas.state.grid && window.__atlas.state.grid.n === {explorer_rules.GRID_SIZES[0]}")
