"""A validator for the subset of JSON Schema that the bundle format uses (standard library only).

Keywords: type (a name or a list of names), enum (of JSON scalars), minimum, maximum, minLength, maxLength,
pattern, minItems, maxItems, items, required, properties, additionalProperties (false or a schema);
annotations such as description, default and title are ignored. web/app/js/schema.js is the same
validator in JavaScript: both check the keywords in the same order and stop at the first error, so the
two explorers refuse the same files with the same field path.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

SUPPORTED_KEYWORDS = ("type", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems",
                      "maxItems", "items", "required", "properties", "additionalProperties")
ANNOTATIONS = ("$schema", "$id", "title", "description", "default", "examples")


@dataclass(frozen=True)
class SchemaError:
    """Where a value breaks its schema (a field path such as `dataset.class_names[0]`) and how."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(the whole document)'}: {self.message}"


def json_type(value: Any) -> str:
    """The JSON type name of a parsed JSON value, as the errors name it ("integer" for whole numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if _is_integer(value) else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    # JSON has no NaN or infinity: a value Python's json module let through is not a JSON number.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    # As in JSON Schema (and JavaScript, which cannot tell them apart): 2.0 is an integer.
    return _is_number(value) and float(value).is_integer()


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_array(value: Any) -> bool:
    return isinstance(value, list)


def _identity(value: Any) -> Any:
    return value


# The bounds: (keyword, the values it applies to, what it bounds, whether it is a lower bound, the words).
_BOUNDS = (
    ("minimum", _is_number, _identity, True, "a number >= {}"),
    ("maximum", _is_number, _identity, False, "a number <= {}"),
    ("minLength", _is_string, len, True, "at least {} characters"),
    ("maxLength", _is_string, len, False, "at most {} characters"),
    ("minItems", _is_array, len, True, "at least {} items"),
    ("maxItems", _is_array, len, False, "at most {} items"),
)

_TYPE_TESTS = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "number": _is_number,
    "string": _is_string,
    "array": _is_array,
    "object": lambda v: isinstance(v, dict),
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality of scalars: true is not 1, 1.0 is 1."""
    kinds = {json_type(a), json_type(b)}
    return (len(kinds) == 1 or kinds == {"integer", "number"}) and a == b


def _shown(value: Any) -> str:
    """A value as JSON, shortened: errors stay one line."""
    text = json.dumps(value, ensure_ascii=False) if json_type(value) in _TYPE_TESTS else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def first_error(schema: dict, value: Any, path: str = "") -> SchemaError | None:
    """The first place where `value` breaks `schema`, or None when it conforms."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPE_TESTS[name](value) for name in names):
            return SchemaError(path, f"expected {' or '.join(names)}, found {json_type(value)} {_shown(value)}")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        return SchemaError(path, f"expected one of {', '.join(_shown(o) for o in schema['enum'])}, found {_shown(value)}")
    for keyword, applies, measure, lower, expected in _BOUNDS:
        if keyword in schema and applies(value):
            size, bound = measure(value), schema[keyword]
            if (size < bound) if lower else (size > bound):
                return SchemaError(path, f"expected {expected.format(bound)}, found {_shown(size)}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return SchemaError(path, f"expected a string matching {schema['pattern']}, found {_shown(value)}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            if error := first_error(schema["items"], item, _child(path, i)):
                return error
    if isinstance(value, dict):
        return _object_error(schema, value, path)
    return None


def _object_error(schema: dict, value: dict, path: str) -> SchemaError | None:
    for key in schema.get("required", ()):
        if key not in value:
            return SchemaError(_child(path, key), "missing (a required key)")
    properties = schema.get("properties", {})
    for key, subschema in properties.items():
        if key in value and (error := first_error(subschema, value[key], _child(path, key))):
            return error
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties or extra is True:
            continue
        if extra is False:
            return SchemaError(_child(path, key), "not a known key here")
        if error := first_error(extra, item, _child(path, key)):
            return error
    return None


def unsupported_keywords(schema: Any, path: str = "") -> list[str]:
    """Keywords in `schema` (recursively) that this validator does not implement: a schema that uses one
    would be checked less strictly than it says."""
    if not isinstance(schema, dict):
        return []
    found = [f"{path or '(root)'}: {k}" for k in schema if k not in SUPPORTED_KEYWORDS + ANNOTATIONS]
    for key, sub in schema.get("properties", {}).items():
        found += unsupported_keywords(sub, _child(path, key))
    for key in ("items", "additionalProperties"):
        found += unsupported_keywords(schema.get(key), f"{path}/{key}")
    return found
