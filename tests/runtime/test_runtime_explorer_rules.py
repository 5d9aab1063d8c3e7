"""The explorers' shared rules (runtime/explorer_rules.py): what they say, and the form config.json carries."""

from __future__ import annotations

import json

from latent_atlas.runtime import explorer_rules as rules
from latent_atlas.runtime.latent import PERCENTILE_EXTENT
from latent_atlas.runtime.options import INTERPOLATION_METHODS


def test_clamp_rounds_into_the_range():
    assert rules.clamp(1, (2, 40)) == 2
    assert rules.clamp(7.6, (2, 40)) == 8
    assert rules.clamp(1000, (2, 40)) == 40


def test_ranges_are_ordered_and_include_both_ends_of_a_path():
    for low, high in (rules.GRID_SIZES, rules.INTERPOLATION_STEPS):
        assert 2 <= low < high


def test_the_legend_lists_each_class_in_the_palette_unless_there_are_none_or_too_many():
    names = [str(i) for i in range(len(rules.CLASS_COLOURS) + 1)]  # one more than the palette: it starts again
    assert [colour for _, colour in rules.legend_rows(names)] == [*rules.CLASS_COLOURS, rules.CLASS_COLOURS[0]]
    assert rules.legend_rows(["a", "b"]) == [("a", rules.CLASS_COLOURS[0]), ("b", rules.CLASS_COLOURS[1])]
    assert rules.UNLABELLED_COLOUR not in rules.CLASS_COLOURS
    assert rules.legend_rows([]) == rules.legend_rows(None) == []
    assert rules.legend_rows([str(i) for i in range(rules.MAX_LEGEND_ROWS + 1)]) == []
    assert len(rules.legend_rows([str(i) for i in range(rules.MAX_LEGEND_ROWS)])) == rules.MAX_LEGEND_ROWS


def test_the_site_config_carries_every_rule_as_json():
    config = json.loads(json.dumps(rules.site_config()))
    assert config["grid_sizes"] == list(rules.GRID_SIZES)
    assert config["interpolation_steps"] == list(rules.INTERPOLATION_STEPS)
    assert config["interpolation_methods"] == list(INTERPOLATION_METHODS)
    assert list(config["grid_sources"]) == list(rules.GRID_SOURCES)  # order kept: the first is the default
    assert config["grid_percentiles"] == list(PERCENTILE_EXTENT)
    assert config["view_percentiles"] == list(rules.VIEW_PERCENTILES)
    assert config["class_colours"] == list(rules.CLASS_COLOURS)
    assert (config["home_margin"], config["zoom_step"], config["max_legend_rows"], config["unlabelled_colour"]) == (
        rules.HOME_MARGIN, rules.ZOOM_STEP, rules.MAX_LEGEND_ROWS, rules.UNLABELLED_COLOUR)
