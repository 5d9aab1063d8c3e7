"""What an explorer shows, as one format for both: the browser keeps it in its URL (a link opens the same
view), the desktop app in a session file.

`ViewState` is the state; `to_json`/`from_json` the session file's form, `to_query`/`from_query` the URL's
(compact: `model=mnist&dims=0,1&cursor=0.5,-1.25&view=-3,3,-2,2&layer=prior`, only what differs from the
defaults). A state comes from anywhere (a link someone sent), so the readers never raise: a value that is
malformed or hostile (non-finite or out-of-range numbers, unknown keys or models, strings or a query over
their bound, vectors of another latent size) is clamped or dropped, and each such repair is reported as a
one-line message. `SCHEMA` is the JSON Schema of `to_json`'s output, generated here and checked in as
view_state.schema.json beside this module; every site ships it, and web/app/js/view_state.js (the same
reader in JavaScript, its messages word for word) takes its bounds from it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from . import explorer_rules as rules
from .bundle_schema import FACTOR_NAME
from .limits import MAX_LATENT_DIM

SCHEMA_FILE = "view_state.schema.json"
SCHEMA_PATH = Path(__file__).with_name(SCHEMA_FILE)
# A latent coordinate a state may hold: codes of a trained VAE lie within a few units of the origin, so
# this bound is far beyond any real view and keeps arithmetic on it (zoom, spans) finite.
LATENT_LIMIT = 1000
# A model given as a bundle location (a URL or a path); browsers take URLs of this length everywhere.
MAX_LOCATION_CHARS = 2048
# A state's query, whole: three vectors of MAX_LATENT_DIM coordinates at 7 significant digits fit.
MAX_QUERY_CHARS = 32_768
# Numbers in a query: 7 significant digits, float32's precision (what the models compute in).
QUERY_DIGITS = 7
# A bundled model's name, a factor's name; a location has a "/" or is an http(s) URL.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# A location: an http(s) URL, or a path with a separator (a Windows drive letter allowed); no control
# characters (spelt out: Python's and JavaScript's \s differ) and no other scheme (javascript:, data:).
LOCATION_PATTERN = r"^(https?://[^\x00-\x1f\x7f]+|([A-Za-z]:)?[^\x00-\x1f\x7f:]*[/\\][^\x00-\x1f\x7f]*)$"
POINTS_PATTERN = rf"^({'|'.join(rules.POINT_COLOURINGS)}|{rules.FACTOR_PREFIX}{FACTOR_NAME})$"
MAX_POINTS_CHARS = 100
NUMBER_PATTERN = r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
BOOLEANS = {"1": True, "true": True, "0": False, "false": False}
# Keys a message may show as they are; any other is shown as KEY_STAND_IN (it may be huge or hold anything).
SHOWN_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,40}$"
KEY_STAND_IN = "(a key that cannot be shown)"
FIELDS = ("model", "compare", "dims", "cursor", "view", "a", "b", "layer", "points", "grid", "uncertainty",
          "neighbours")


@dataclass(frozen=True)
class ViewState:
    """model and compare: a bundled model's name or a bundle's location (None: the explorer's default, no
    comparison); dims: the two latent dims the map shows; cursor, a, b: latent points [D] (None: unset);
    view: ((xlo, xhi), (ylo, yhi)) of the map (None: the home view); layer: a LAYERS name; points: "class",
    "error" or "factor:NAME"; grid_n, grid_source: the grid panel; uncertainty: the posterior's ellipses
    and samples shown; neighbours: how many real neighbours are listed."""

    model: str | None = None
    compare: str | None = None
    dims: tuple[int, int] = (0, 1)
    cursor: tuple[float, ...] | None = None
    view: tuple[tuple[float, float], tuple[float, float]] | None = None
    a: tuple[float, ...] | None = None
    b: tuple[float, ...] | None = None
    layer: str = rules.LAYERS[0]
    points: str = rules.POINT_COLOURINGS[0]
    grid_n: int = 20
    grid_source: str = rules.GRID_SOURCES[0]
    uncertainty: bool = False
    neighbours: int = rules.DEFAULT_NEIGHBOURS

    def to_json(self) -> dict:
        """The session file's form (what SCHEMA describes): every field, null where unset."""
        vector = (lambda v: None if v is None else [float(x) for x in v])
        return {"model": self.model, "compare": self.compare, "dims": list(self.dims), "cursor": vector(self.cursor),
                "view": None if self.view is None else {"x": list(self.view[0]), "y": list(self.view[1])},
                "a": vector(self.a), "b": vector(self.b), "layer": self.layer, "points": self.points,
                "grid": {"n": self.grid_n, "source": self.grid_source}, "uncertainty": self.uncertainty,
                "neighbours": self.neighbours}

    def to_query(self) -> str:
        """The URL's form, without "?": the fields that differ from the defaults, in FIELDS order."""
        default, state = ViewState().to_json(), self.to_json()
        pairs = [(key, _query_value(state[key])) for key in FIELDS if state[key] != default[key]]
        return urlencode(pairs, safe=",/:")


DEFAULT = ViewState()


def _number_text(value: float) -> str:
    text = f"{float(value):.{QUERY_DIGITS}g}"
    return "0" if text == "-0" else text


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict):  # view {x, y} and grid {n, source}: their values in order, flattened
        return ",".join(_query_value(v) for v in value.values())
    if isinstance(value, list):
        return ",".join(_query_value(v) for v in value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, int):
        return _number_text(value)
    return str(value)


# --- reading: never raises, repairs and says so ---------------------------------------------------------

def _matches(pattern: str, text: str) -> bool:
    """JavaScript's RegExp.test of an anchored ^...$ pattern (Python's $ also matches before a final newline)."""
    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), text) is not None


def _name(key: Any) -> str:
    """A key as a message may show it: itself when it is a short plain word, else a stand-in."""
    return key if isinstance(key, str) and _matches(SHOWN_KEY_PATTERN, key) else KEY_STAND_IN


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and float(value).is_integer()


class _Reader:
    def __init__(self, models, latent_dim):
        self.models = None if models is None else list(models)
        self.latent_dim = latent_dim
        self.messages: list[str] = []

    def say(self, key: str, text: str) -> None:
        self.messages.append(f"{key}: {text}")

    def model(self, key: str, value: Any, default: str | None) -> str | None:
        fallback = "the default model is shown" if key == "model" else "no second model"
        if value is None:
            return None
        if not isinstance(value, str):
            self.say(key, f"expected a model name or bundle location; {fallback}")
        elif len(value) > MAX_LOCATION_CHARS:
            self.say(key, f"longer than {MAX_LOCATION_CHARS} characters; {fallback}")
        elif _matches(NAME_PATTERN, value):
            if self.models is None or value in self.models:
                return value
            self.say(key, f"no bundled model is called {value}; {fallback}")
        elif _matches(LOCATION_PATTERN, value):
            return value
        else:
            self.say(key, f"not a model name or an http(s) URL or path of a bundle; {fallback}")
        return default

    def vector(self, key: str, value: Any, size: int | None) -> tuple[float, ...] | None:
        """A latent point: None when unset or unusable (said), clamped into +-LATENT_LIMIT (said)."""
        if value is None:
            return None
        if not isinstance(value, list) or not value or not all(_is_number(v) for v in value):
            self.say(key, "expected a list of numbers; ignored")
            return None
        if len(value) > MAX_LATENT_DIM:
            self.say(key, f"more than {MAX_LATENT_DIM} numbers; ignored")
            return None
        if size is not None and len(value) != size:
            self.say(key, f"expected {size} numbers (the model's latent size), found {len(value)}; ignored")
            return None
        if not all(math.isfinite(v) for v in value):
            self.say(key, "a number is not finite; ignored")
            return None
        if any(abs(v) > LATENT_LIMIT for v in value):
            self.say(key, f"numbers beyond -{LATENT_LIMIT}..{LATENT_LIMIT} clamped")
        return tuple(float(min(LATENT_LIMIT, max(-LATENT_LIMIT, v))) for v in value)

    def dims(self, value: Any) -> tuple[int, int]:
        size = self.latent_dim or MAX_LATENT_DIM
        if (isinstance(value, list) and len(value) == 2 and all(_is_integer(v) for v in value)
                and value[0] != value[1] and all(0 <= v < size for v in value)):
            return int(value[0]), int(value[1])
        self.say("dims", f"expected two different latent dims in 0..{size - 1}; {_query_value(list(DEFAULT.dims))} shown")
        return DEFAULT.dims

    def view(self, value: Any) -> tuple[tuple[float, float], tuple[float, float]] | None:
        if value is None:
            return None
        spans = [value.get(axis) for axis in ("x", "y")] if isinstance(value, dict) else []
        if (len(spans) != 2 or set(value) != {"x", "y"} or
                not all(isinstance(s, list) and len(s) == 2 and all(_is_number(v) and math.isfinite(v) for v in s)
                        for s in spans)):
            self.say("view", "expected x and y ranges of two finite numbers each; the home view is shown")
            return None
        clamped = [tuple(float(min(LATENT_LIMIT, max(-LATENT_LIMIT, v))) for v in span) for span in spans]
        if not all(lo < hi for lo, hi in clamped):
            self.say("view", "a range is empty (low not below high); the home view is shown")
            return None
        if clamped != [tuple(float(v) for v in span) for span in spans]:
            self.say("view", f"ranges beyond -{LATENT_LIMIT}..{LATENT_LIMIT} clamped")
        return clamped[0], clamped[1]

    def choice(self, key: str, value: Any, options, default: str) -> str:
        if isinstance(value, str) and value in options:
            return value
        self.say(key, f"expected one of {', '.join(options)}; {default} shown")
        return default

    def points(self, value: Any) -> str:
        if isinstance(value, str) and len(value) <= MAX_POINTS_CHARS and _matches(POINTS_PATTERN, value):
            return value
        self.say("points", f"expected {', '.join(rules.POINT_COLOURINGS)} or {rules.FACTOR_PREFIX}NAME; "
                           f"{rules.POINT_COLOURINGS[0]} shown")
        return rules.POINT_COLOURINGS[0]

    def count(self, key: str, value: Any, bounds: tuple[int, int], default: int) -> int:
        if not _is_integer(value):
            self.say(key, f"expected a whole number; {default} shown")
            return default
        if not bounds[0] <= value <= bounds[1]:
            self.say(key, f"expected {bounds[0]}..{bounds[1]}; clamped")
        return rules.clamp(value, bounds)

    def grid(self, value: Any, default: ViewState) -> tuple[int, str]:
        if not isinstance(value, dict) or set(value) - {"n", "source"}:
            self.say("grid", "expected n and source; the default grid is shown")
            return default.grid_n, default.grid_source
        n = self.count("grid.n", value.get("n", default.grid_n), rules.GRID_SIZES, default.grid_n)
        return n, self.choice("grid.source", value.get("source", default.grid_source), rules.GRID_SOURCES,
                              default.grid_source)

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if isinstance(value, bool):
            return value
        self.say(key, f"expected true or false; {'true' if default else 'false'} shown")
        return default


def from_json(value: Any, models=None, latent_dim: int | None = None) -> tuple[ViewState, list[str]]:
    """The state a session file (or a parsed query) describes, and one message per repair. `models`: the
    bundled names a name may take (None: any name); `latent_dim`: the model's latent size once known, which
    vectors must have and dims must fit (None: any up to MAX_LATENT_DIM; read again once it is known)."""
    reader, default = _Reader(models, latent_dim), ViewState()
    if not isinstance(value, dict):
        return default, ["(the whole state): expected an object of view-state keys; the default view is shown"]
    for key in sorted(_name(key) for key in value if key not in FIELDS):  # sorted: JavaScript reorders keys
        reader.say(key, "not a view-state key; ignored")
    get = value.get
    model = reader.model("model", get("model"), default.model)
    compare = reader.model("compare", get("compare"), default.compare)
    dims = reader.dims(get("dims")) if "dims" in value else default.dims
    size = latent_dim
    cursor, a, b = (reader.vector(key, get(key), size) for key in ("cursor", "a", "b"))
    sizes = {len(v) for v in (cursor, a, b) if v is not None}
    if size is None and len(sizes) > 1:  # vectors of different sizes cannot all be the model's
        reader.say("a, b", "vectors of different sizes (cursor, a, b); ignored")
        a = b = None
    if size is None and cursor is not None and max(dims) >= len(cursor):
        reader.say("dims", f"expected two different latent dims in 0..{len(cursor) - 1}; "
                           f"{_query_value(list(default.dims))} shown")
        dims = default.dims
    view = reader.view(get("view"))
    layer = reader.choice("layer", get("layer"), rules.LAYERS, default.layer) if "layer" in value else default.layer
    points = reader.points(get("points")) if "points" in value else default.points
    grid_n, grid_source = reader.grid(get("grid"), default) if "grid" in value else (default.grid_n, default.grid_source)
    uncertainty = (reader.boolean("uncertainty", get("uncertainty"), default.uncertainty)
                   if "uncertainty" in value else default.uncertainty)
    neighbours = (reader.count("neighbours", get("neighbours"), rules.NEIGHBOUR_COUNTS, default.neighbours)
                  if "neighbours" in value else default.neighbours)
    state = ViewState(model, compare, dims, cursor, view, a, b, layer, points, grid_n, grid_source, uncertainty,
                      neighbours)
    return state, reader.messages


def _parse_token(token: str) -> Any:
    return float(token) if _matches(NUMBER_PATTERN, token) else token


def _from_query_value(key: str, text: str) -> Any:
    """A query value as the JSON form's value, for from_json to check: numbers where they parse (strictly:
    the same grammar as JavaScript), the text itself where they do not."""
    tokens = [_parse_token(t) for t in text.split(",")]
    if key in ("model", "compare", "layer", "points"):
        return text
    if key == "uncertainty":
        return BOOLEANS.get(text, text)
    if key == "neighbours":
        return tokens[0] if len(tokens) == 1 else text
    if key == "view":
        return {"x": tokens[:2], "y": tokens[2:]} if len(tokens) == 4 else text
    if key == "grid":
        return {"n": tokens[0], "source": text.split(",", 1)[1]} if len(tokens) == 2 else text
    return tokens  # dims, cursor, a, b


def from_query(query: str, models=None, latent_dim: int | None = None) -> tuple[ViewState, list[str]]:
    """The state a URL's query describes (with or without its "?"), and one message per repair (see
    from_json). A key given twice keeps its first value."""
    query = query.removeprefix("?") if isinstance(query, str) else query
    if not isinstance(query, str) or len(query) > MAX_QUERY_CHARS:
        return ViewState(), [f"(the whole state): more than the {MAX_QUERY_CHARS} characters a view state may hold; "
                             f"the default view is shown"]
    value: dict[str, Any] = {}
    messages = []
    for key, text in parse_qsl(query, keep_blank_values=True):
        if key in value:
            messages.append(f"{_name(key)}: given more than once; the first kept")
            continue
        value[key] = _from_query_value(key, text) if key in FIELDS else text
    state, more = from_json(value, models, latent_dim)
    return state, messages + more


# --- the checked-in schema ------------------------------------------------------------------------------

def _vector_schema(description: str) -> dict:
    return {"type": ["array", "null"], "description": description, "minItems": 1, "maxItems": MAX_LATENT_DIM,
            "items": {"type": "number", "minimum": -LATENT_LIMIT, "maximum": LATENT_LIMIT}}


def _span_schema(axis: str) -> dict:
    return {"type": "array", "description": f"[low, high] of the map's {axis} axis", "minItems": 2, "maxItems": 2,
            "items": {"type": "number", "minimum": -LATENT_LIMIT, "maximum": LATENT_LIMIT}}


def _model_schema(description: str) -> dict:
    return {"type": ["string", "null"], "description": description, "maxLength": MAX_LOCATION_CHARS,
            "pattern": f"^({NAME_PATTERN[1:-1]}|{LOCATION_PATTERN[1:-1]})$"}


def json_schema() -> dict:
    """The JSON Schema of ViewState.to_json (json_schema.py's subset, so both explorers can check it); each
    property's "default" is ViewState()'s, which the JavaScript reader starts from."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Latent Atlas view state",
        "description": "What an explorer shows: the browser's URL and the desktop app's session file "
                       "(runtime/view_state.py). Readers repair what breaks it, with a message per repair.",
        "type": "object",
        "required": list(FIELDS),
        "additionalProperties": False,
        "properties": {
            "model": _model_schema("a bundled model's name or a bundle's URL or path; null: the default"),
            "compare": _model_schema("the second model, compared under one cursor; null: none"),
            "dims": {"type": "array", "description": "the two latent dims the map shows (x, y)", "minItems": 2,
                     "maxItems": 2, "items": {"type": "integer", "minimum": 0, "maximum": MAX_LATENT_DIM - 1}},
            "cursor": _vector_schema("the latent point under the cursor; null: unset"),
            "view": {"type": ["object", "null"], "description": "the map's visible region; null: the home view",
                     "required": ["x", "y"], "additionalProperties": False,
                     "properties": {"x": _span_schema("x"), "y": _span_schema("y")}},
            "a": _vector_schema("interpolation endpoint A; null: unset"),
            "b": _vector_schema("interpolation endpoint B; null: unset"),
            "layer": {"type": "string", "description": "the map's background layer", "enum": list(rules.LAYERS)},
            "points": {"type": "string", "description": "how atlas points are coloured", "maxLength": MAX_POINTS_CHARS,
                       "pattern": POINTS_PATTERN},
            "grid": {"type": "object", "description": "the grid panel", "required": ["n", "source"],
                     "additionalProperties": False,
                     "properties": {"n": {"type": "integer", "description": "tiles per side",
                                          "minimum": rules.GRID_SIZES[0], "maximum": rules.GRID_SIZES[1]},
                                    "source": {"type": "string", "description": "what the grid spans",
                                               "enum": list(rules.GRID_SOURCES)}}},
            "uncertainty": {"type": "boolean", "description": "the posterior's ellipses and samples shown"},
            "neighbours": {"type": "integer", "description": "real neighbours listed under the cursor",
                           "minimum": rules.NEIGHBOUR_COUNTS[0], "maximum": rules.NEIGHBOUR_COUNTS[1]},
        },
    }
    for key, value in DEFAULT.to_json().items():
        schema["properties"][key]["default"] = value
    return schema


SCHEMA = json_schema()


def schema_text() -> str:
    """view_state.schema.json as checked in (and as every site ships it)."""
    return json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Regenerates the checked-in schema after a change here."""
    Path(path).write_text(schema_text(), encoding="utf-8")
    return Path(path)


def browser_rules() -> dict:
    """The reader's bounds the schema cannot hold, as the site's config.json carries them (web/site.py)."""
    return {"max_query_chars": MAX_QUERY_CHARS, "query_digits": QUERY_DIGITS, "name_pattern": NAME_PATTERN,
            "location_pattern": LOCATION_PATTERN, "number_pattern": NUMBER_PATTERN, "fields": list(FIELDS),
            "booleans": dict(BOOLEANS), "shown_key_pattern": SHOWN_KEY_PATTERN, "key_stand_in": KEY_STAND_IN,
            "point_colourings": list(rules.POINT_COLOURINGS), "factor_prefix": rules.FACTOR_PREFIX}
