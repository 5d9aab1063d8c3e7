"""runtime/view_state.py: the state both explorers keep (URL and session file), its round trips, the repairs
of hostile input, and the checked-in schema."""

from __future__ import annotations

import json

import pytest

from latent_atlas.runtime import explorer_rules as rules
from latent_atlas.runtime import view_state as vs
from latent_atlas.runtime.json_schema import first_error, unsupported_keywords

FULL = vs.ViewState(model="mnist", compare="models/fashion-mnist/", dims=(1, 0), cursor=(0.5, -1.25),
                    view=((-3.0, 3.0), (-2.0, 2.5)), a=(1.0, 2.0), b=(-0.125, 3.0), layer="aggregate",
                    points="factor:size", grid_n=12, grid_source="percentiles", uncertainty=True, neighbours=5)


def test_the_checked_in_schema_is_current_and_uses_only_what_both_validators_check():
    assert vs.SCHEMA_PATH.read_text(encoding="utf-8") == vs.schema_text(), \
        "runtime/view_state.schema.json is stale: run latent_atlas.runtime.view_state.write_schema()"
    assert unsupported_keywords(vs.SCHEMA) == []
    assert first_error(vs.SCHEMA, FULL.to_json()) is None
    assert first_error(vs.SCHEMA, vs.ViewState().to_json()) is None


@pytest.mark.parametrize("state", [vs.ViewState(), FULL, vs.ViewState(model="https://example.org/b/", cursor=(1e-05, 7.0))])
def test_round_trips_through_json_and_the_query(state):
    assert vs.from_json(json.loads(json.dumps(state.to_json())), models=["mnist"], latent_dim=2) == (state, [])
    assert vs.from_query(state.to_query(), models=["mnist"], latent_dim=2) == (state, [])
    assert vs.from_query("?" + state.to_query()) == (state, [])


def test_the_query_is_compact_and_holds_only_what_differs_from_the_defaults():
    assert vs.ViewState().to_query() == ""
    assert vs.ViewState(model="mnist", cursor=(0.5, -1.25), layer="prior").to_query() == \
        "model=mnist&cursor=0.5,-1.25&layer=prior"
    # Seven significant digits: float32's precision, and a query read back is then stable.
    once = vs.ViewState(cursor=(0.123456789, -2 / 3)).to_query()
    assert once == "cursor=0.1234568,-0.6666667"
    assert vs.from_query(once)[0].to_query() == once
    assert FULL.to_query().count("&") == 11 and len(FULL.to_query()) < 200


def test_a_huge_query_is_ignored_whole():
    state, messages = vs.from_query("cursor=" + "1," * vs.MAX_QUERY_CHARS)
    assert state == vs.ViewState()
    assert messages == [f"(the whole state): more than the {vs.MAX_QUERY_CHARS} characters a view state may hold; "
                        f"the default view is shown"]


def test_hostile_values_are_clamped_or_dropped_with_one_message_each():
    query = ("cursor=1e308,-1e308&a=nan,1&b=1e400,0&view=-5000,1,0,0.5&dims=0,7&layer=%3Cscript%3E&points=factor:"
             + "x" * 200 + "&grid=500,view&neighbours=0.5&uncertainty=maybe&zzz=1&" + "k" * 100 + "=2&cursor=0,0")
    state, messages = vs.from_query(query, models=["mnist"], latent_dim=2)
    assert state == vs.ViewState(cursor=(1000.0, -1000.0), view=((-1000.0, 1.0), (0.0, 0.5)), grid_n=40)
    assert messages == [
        "cursor: given more than once; the first kept",
        "(a key that cannot be shown): not a view-state key; ignored",
        "zzz: not a view-state key; ignored",
        "dims: expected two different latent dims in 0..1; 0,1 shown",
        "cursor: numbers beyond -1000..1000 clamped",
        "a: expected a list of numbers; ignored",
        "b: a number is not finite; ignored",
        "view: ranges beyond -1000..1000 clamped",
        "layer: expected one of none, prior, aggregate, entropy; none shown",
        "points: expected class, error or factor:NAME; class shown",
        "grid.n: expected 2..40; clamped",
        "uncertainty: expected true or false; false shown",
        "neighbours: expected a whole number; 8 shown",
    ]
    for message in messages:
        assert "\n" not in message and len(message) < 120


def test_models_unknown_or_unsafe_are_dropped_and_locations_kept():
    cases = {"mnist": ("mnist", []),
             "nosuchmodel": (None, ["model: no bundled model is called nosuchmodel; the default model is shown"]),
             "javascript:alert(1)": (None, ["model: not a model name or an http(s) URL or path of a bundle; the "
                                            "default model is shown"]),
             "https://example.org/models/mine/": ("https://example.org/models/mine/", []),
             "models/mine/": ("models/mine/", []),
             "https://x/" + "y" * vs.MAX_LOCATION_CHARS: (None, [f"model: longer than {vs.MAX_LOCATION_CHARS} "
                                                                 f"characters; the default model is shown"])}
    for model, (kept, messages) in cases.items():
        state, said = vs.from_json({"model": model}, models=["mnist", "fashion-mnist"])
        assert (state.model, said) == (kept, messages), model
        assert first_error(vs.SCHEMA, state.to_json()) is None
    assert vs.from_json({"compare": 7})[1] == ["compare: expected a model name or bundle location; no second model"]


def test_vectors_of_another_latent_size_are_dropped_once_the_size_is_known():
    value = {"cursor": [0.0, 1.0, 2.0], "a": [1.0, 2.0], "dims": [0, 2]}
    unknown, messages = vs.from_json(value)
    assert unknown.cursor == (0.0, 1.0, 2.0) and unknown.a is None and unknown.dims == (0, 2)
    assert messages == ["a, b: vectors of different sizes (cursor, a, b); ignored"]
    known, messages = vs.from_json(value, latent_dim=2)
    assert known.cursor is None and known.a == (1.0, 2.0) and known.dims == (0, 1)
    assert messages == ["dims: expected two different latent dims in 0..1; 0,1 shown",
                        "cursor: expected 2 numbers (the model's latent size), found 3; ignored"]


def test_whatever_the_input_the_state_read_satisfies_the_schema():
    hostile = [None, [], "x", {"view": {"x": [0, 1]}}, {"view": {"x": [0, 1], "y": [1, 2], "z": 1}},
               {"grid": {"n": 3.5, "source": "nowhere"}}, {"grid": [1]}, {"neighbours": True},
               {"dims": [1, 1]}, {"dims": [True, 0]}, {"points": "factor:"}, {"cursor": []},
               {"cursor": [True, 1.0]}, {"a": [1.0] * (vs.MAX_LATENT_DIM + 1)}, {"uncertainty": 1}]
    for value in hostile:
        state, messages = vs.from_json(value)
        assert messages, value
        assert first_error(vs.SCHEMA, state.to_json()) is None, value
    assert vs.from_json(None) == (vs.ViewState(), ["(the whole state): expected an object of view-state keys; "
                                                   "the default view is shown"])
    assert vs.from_json({"neighbours": 1000})[0].neighbours == rules.NEIGHBOUR_COUNTS[1]


def test_the_site_ships_the_schema_and_the_readers_bounds():
    from latent_atlas.web import site

    config = site.site_config([], "0.0.0")
    assert config["view_state"] == vs.browser_rules()
    assert config["view_state"]["max_query_chars"] == vs.MAX_QUERY_CHARS
    from latent_atlas.runtime import explain

    assert config["explain"] == explain.browser_constants()


def test_a_trailing_newline_is_no_name():
    state, messages = vs.from_json({"model": "mnist\n", "points": "class\n"}, models=["mnist"])
    assert (state.model, state.points) == (None, "class") and len(messages) == 2
    assert all("\n" not in message for message in messages)
