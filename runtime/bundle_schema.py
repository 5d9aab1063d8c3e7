"""The bundle format's one owner: every file of a bundle and every key of its bundle.json, declared once.

`FIELDS` declares each manifest key: whether it is required, the JSON Schema of its value (nested
structure included), whether it is copied into the ONNX files' metadata, when it is written, and a
one-line description. Everything else is derived from it: `Manifest.to_json` / `from_json` and
`METADATA_KEYS` (runtime/bundle.py), the JSON Schema `SCHEMA` (checked in as bundle.schema.json beside
this module, copied into every site `latent-atlas web` writes, and what both explorers validate
bundle.json against: runtime/json_schema.py and web/app/js/schema.js), and the format's reference
(`reference_markdown`). After changing FIELDS, regenerate the checked-in schema with `write_schema()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import prior as priors
from .options import VARIANTS
from .image_shape import SEED_IMAGE_SHAPE
from .preprocessing import LAYOUTS

SCHEMA_VERSION = 1
SCHEMA_FILE = "bundle.schema.json"
SCHEMA_PATH = Path(__file__).with_name(SCHEMA_FILE)
METADATA_PREFIX = "latent_atlas."
IMAGE_SHAPE = SEED_IMAGE_SHAPE  # an absent image_shape: the seed's
# Where a training set came from: your own images (train/sources.py reads these), or a built-in dataset.
OWN_DATA_SOURCE_KINDS = ("folder", "npz", "idx")
DATA_SOURCE_KINDS = (*OWN_DATA_SOURCE_KINDS, "builtin")
ORT_OPTIMIZATION_STYLES = ("Fixed", "Runtime")
# A known factor's name (dataset.factor_names; the view state's "factor:NAME" colouring takes the same).
FACTOR_NAME = r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}"
# The decoder's likelihoods p(x|z) (train/likelihoods.py LIKELIHOODS defines each; a test keeps the two
# lists equal), named here because the torch-free runtime and the browser read the bundle too.
BERNOULLI = "bernoulli"
LIKELIHOOD_NAMES = (BERNOULLI, "continuous-bernoulli", "discretized-logistic")

COMPATIBILITY = (
    "A reader accepts exactly its own schema_version and refuses any other with a message naming both. "
    "Adding an optional key does not change the version: older readers keep unknown keys (at the top level "
    "and in `dataset`) and write them back unchanged, and a missing optional key reads as its default "
    "(absent sections as empty, absent `static_batch` and `runtimes` as unknown). Making a key required, "
    "removing or renaming one, or changing a key's type or meaning bumps schema_version."
)

# The files of a bundle directory: (name, required, description).
FILES = (
    ("bundle.json", True, "the manifest: the keys below"),
    ("encoder.onnx", True, "image float32 [N, C, H, W] in [0, 1] (`image_shape`) -> z_mean, z_logvar float32 [N, D]"),
    ("decoder.onnx", True, "z float32 [N, D] -> image float32 [N, C, H, W], pixel values in [0, 1] (the likelihood's "
                           "mean)"),
    ("atlas.npz", False, "z_mean float32 [M, D] and labels uint8 [M] of the test set (no pickles); absent: an "
                         "empty map"),
    ("atlas_extra.npz", False, "what the explorers explain with, one row per atlas point in its order (no "
                               "pickles): thumbnails uint8 [M, h, w] (grey) or [M, h, w, 3] (colour), sides at most "
                               "32; z_logvar float32 [M, D]; recon_error float32 [M], -log p(x | z = mean) in nats; "
                               "optional factors float32 [M, F] named by dataset.factor_names. Absent: no neighbour "
                               "thumbnails, aggregate layer or error colouring (`export --no-atlas-extra`)"),
    ("encoder.ort, decoder.ort", False, "only with `export --ort`: the same graphs in onnxruntime's ORT format"),
)


def _typed(types: str | list[str], description: str, **keywords: Any) -> dict:
    return {"type": types, "description": description, **keywords}


def _map(values: dict, description: str) -> dict:
    """An object whose keys are names chosen by the writer (file names, tensor names) and values `values`."""
    return _typed("object", description, additionalProperties=values)


def _object(description: str, properties: dict, required: tuple[str, ...] = ()) -> dict:
    out = _typed("object", description, properties=properties)
    if required:
        out["required"] = list(required)
    return out


_NUMBERS = {"type": "array", "items": {"type": "number"}}
_SHA256 = _typed("string", "SHA-256 of the file, lowercase hex", pattern="^[0-9a-f]{64}$")
_TENSOR_SHAPES = _map(_typed("array", "its shape: a size, or a name for a dynamic axis",
                             items={"type": ["integer", "string"]}), "each tensor's shape, by tensor name")
_GRAPH = _object("one ONNX file's inputs and outputs", {"inputs": _TENSOR_SHAPES, "outputs": _TENSOR_SHAPES})

DATASET = _object("what the model was trained on", {
    "name": _typed("string", "the dataset's name (a built-in dataset, or your own)"),
    "class_names": _typed("array", "one name per label; empty or absent: unlabelled (an uncoloured map)",
                          items={"type": "string"}, default=[]),
    "files": _map(_SHA256, "built-in datasets: each training file's SHA-256, by file name"),
    "factor_names": _typed("array", "the known factors of variation atlas_extra.npz `factors` holds, one name per "
                           "column; absent: none", items={"type": "string", "pattern": f"^{FACTOR_NAME}$"}),
    "layout": _typed(["string", "null"], "how preprocessing places an object (a preprocessing.LAYOUTS key); "
                     "absent: told by the dataset's name, else mnist", enum=[*LAYOUTS, None]),
    "source": _object("where the training images came from", {
        "kind": _typed("string", "the kind of source", enum=list(DATA_SOURCE_KINDS)),
        "path": _typed("string", "the folder, file or built-in name trained on"),
        "checksum": _typed("string", "a checksum of the source's files, to recognise it again"),
        "counts": _map(_typed("integer", "images in the split", minimum=0), "images per split"),
        "split_seed": _typed(["integer", "null"], "the seed that split the images; null: a fixed split"),
    }),
})

PRIOR = _object("the prior to sample z from; absent or {kind: standard_normal}: N(0, I) (runtime/prior.py)", {
    "kind": _typed("string", "the prior's family", enum=[priors.STANDARD_NORMAL, priors.GAUSSIAN_MIXTURE]),
    "weights": _typed("array", "gaussian_mixture: the M components' weights, summing to 1", items={"type": "number"}),
    "means": _typed("array", "gaussian_mixture: the components' means [M][D]", items=_NUMBERS),
    "covariances": _typed("array", "gaussian_mixture: the components' covariances [M][D][D]",
                          items={"type": "array", "items": _NUMBERS}),
    "fitted": _typed("object", "how the mixture was fitted (method, split, codes, seed, command ...)"),
})

LATENT_STATS = _object("statistics of the test set's codes, one value per latent dim", {
    name: _typed("array", f"the {name} of each latent dim", items={"type": "number"}) for name in
    ("mean", "std", "min", "max", "p01", "p05", "p95", "p99")})

FILE_ENTRY = _object("one file's checksum and size", {
    "sha256": _SHA256,
    "bytes": _typed("integer", "its size in bytes", minimum=0),
}, required=("sha256",))

LIKELIHOOD = _object("the decoder's likelihood p(x|z) (train/likelihoods.py); absent: bernoulli. Whatever it is, "
                     "decoder.onnx outputs its mean, pixel values in [0, 1]", {
    "name": _typed("string", "which likelihood", enum=list(LIKELIHOOD_NAMES)),
    "log_scale": _typed(["number", "array"], "discretized-logistic only: the logistic's log-scale in units of the "
                        "[0, 1] pixel range, one number or one per channel", items={"type": "number"}),
}, required=("name",))

ONNX = _object("the ONNX files' interface", {
    "opset": _typed("integer", "the ONNX opset", minimum=1),
    "encoder": _GRAPH,
    "decoder": _GRAPH,
})


@dataclass(frozen=True)
class Field:
    """One key of bundle.json."""

    key: str
    schema: dict  # the JSON Schema of its value (its description is the field's one-line description)
    required: bool = False
    metadata: bool = False  # copied, JSON-encoded, into each ONNX file's metadata_props as metadata_key
    always_written: bool = False  # written even when empty (required keys always are)
    written_with: str | None = None  # also written (as null) whenever this other key is written
    default: Any = None  # the value of an absent key; None: empty (an absent section reads as {} / () / null)

    @property
    def description(self) -> str:
        return self.schema["description"]

    @property
    def metadata_key(self) -> str | None:
        return f"{METADATA_PREFIX}{self.key}" if self.metadata else None


# bundle.json's keys in the order they are written; unknown keys follow them.
FIELDS = (
    Field("schema_version", _typed("integer", "the format's version (see Compatibility)", enum=[SCHEMA_VERSION]),
          required=True, metadata=True, default=SCHEMA_VERSION),
    Field("name", _typed("string", "the model's name"), required=True, metadata=True),
    Field("variant", _typed("string", "the numeric form of the ONNX weights", enum=list(VARIANTS)),
          required=True, metadata=True),
    Field("latent_dim", _typed("integer", "D, the size of a latent code", minimum=1), required=True, metadata=True),
    Field("image_shape", _typed("array", "an image's [channels, height, width]: 1 (grey) or 3 (RGB) channels, "
                                "sides multiples of 4 (runtime/image_shape.py)",
                                items={"type": "integer", "minimum": 1}, minItems=3, maxItems=3),
          required=True, metadata=True, default=IMAGE_SHAPE),
    Field("likelihood", LIKELIHOOD, metadata=True),
    Field("pixel_range", _typed("array", "the [low, high] of a pixel value the model reads and writes",
                                items={"type": "number"}, minItems=2, maxItems=2), metadata=True, default=(0.0, 1.0)),
    Field("dataset", DATASET, required=True, metadata=True),
    Field("training", _typed("object", "how the weights were trained: config, commands, seed, epoch, weights ..."),
          metadata=True),
    Field("latent_stats", LATENT_STATS, required=True, metadata=True),
    Field("prior", PRIOR, metadata=True),
    Field("versions", _map(_typed("string", "its version"), "the package versions that exported the bundle"),
          metadata=True),
    Field("static_batch", _typed(["integer", "null"], "null: the batch axis N is dynamic; an int: `export "
                                 "--static-batch N` fixed it and the files run only at that batch", minimum=1),
          metadata=True, written_with="runtimes"),
    Field("runtimes", _typed("array", "the runtimes these files are meant for (bundle.VARIANT_RUNTIMES of the "
                             "variant, plus the static-batch and ORT-format ones when written)",
                             items={"type": "string"}), metadata=True),
    Field("ort_optimization_style", _typed(["string", "null"], "the converter's style of the .ort files; null: none "
                                           "written", enum=[*ORT_OPTIMIZATION_STYLES, None])),
    Field("metrics", _typed("object", "test-set figures in nats per image under the likelihood: test_neg_elbo, "
                            "test_recon, test_kl, test_bits_per_dim (the -ELBO in bits per dimension), test_iw_nll, "
                            "iw_samples ..."), metadata=True),
    Field("files", _map(FILE_ENTRY, "each file's SHA-256 and size, by file name: what `read` verifies"),
          required=True),
    Field("onnx", ONNX),
    Field("export_command", _typed(["string", "null"], "the command that wrote the bundle"), always_written=True),
)
BY_KEY = {f.key: f for f in FIELDS}
KEYS = tuple(BY_KEY)
REQUIRED = tuple(f.key for f in FIELDS if f.required)
METADATA_KEYS = tuple(f.key for f in FIELDS if f.metadata)


def json_schema() -> dict:
    """bundle.json's JSON Schema, derived from FIELDS (the subset runtime/json_schema.py implements)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "latent-atlas model bundle manifest (bundle.json)",
        "description": f"schema_version {SCHEMA_VERSION}. {COMPATIBILITY}",
        "type": "object",
        "required": list(REQUIRED),
        "properties": {f.key: f.schema for f in FIELDS},
    }


SCHEMA = json_schema()


def schema_text() -> str:
    """bundle.schema.json's exact contents."""
    return json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n"


def _type_name(schema: dict) -> str:
    """A schema's type and limits in words, for the reference's tables."""
    types = schema.get("type", "any")
    name = " or ".join(types) if isinstance(types, list) else types
    if "minItems" in schema and schema.get("minItems") == schema.get("maxItems"):
        name += f" [{schema['minItems']}]"
    if "items" in schema:
        name = f"{name} of {_type_name(schema['items'])}"
    limits = [f"{sign} {schema[key]}" for key, sign in (("minimum", ">="), ("maximum", "<=")) if key in schema]
    if "pattern" in schema:
        limits.append(f"matching `{schema['pattern']}`")
    if "enum" in schema:
        limits.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"]))
    return f"{name} ({'; '.join(limits)})" if limits else name


def _rows(path: str, schema: dict, required: bool) -> list[tuple[str, str, str, str]]:
    rows = [(path, _type_name(schema), "yes" if required else "no", schema.get("description", ""))]
    inner = set(schema.get("required", ()))
    for key, sub in schema.get("properties", {}).items():
        rows += _rows(f"{path}.{key}", sub, key in inner)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        rows += _rows(f"{path}.<name>", extra, False)
    return rows


def reference_markdown() -> str:
    """The bundle format's reference (Markdown), generated from FILES and FIELDS."""
    lines = [f"# The model bundle format (schema_version {SCHEMA_VERSION})", "",
             "A bundle is a directory that `latent-atlas export` writes and every runtime and explorer loads.", "",
             "| file | required | what it holds |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {'yes' if required else 'no'} | {what} |" for name, required, what in FILES]
    lines += ["", "## bundle.json", "",
              f"Validated against [`{SCHEMA_FILE}`]({SCHEMA_FILE}) (shipped in the package and in every site). "
              f"Keys are written in this order; unknown keys follow them. Each key marked *metadata* is also "
              f"copied, JSON-encoded, into each ONNX file's metadata_props as `{METADATA_PREFIX}<key>`, so a lone "
              f"ONNX file describes itself.", "",
              "| key | type | required | description |", "| --- | --- | --- | --- |"]
    for f in FIELDS:
        for i, (path, kind, required, what) in enumerate(_rows(f.key, f.schema, f.required)):
            note = " (*metadata*)" if i == 0 and f.metadata else ""
            lines.append(f"| `{path}` | {kind} | {required} | {what}{note} |")
    lines += ["", "## Compatibility", "", COMPATIBILITY, ""]
    return "\n".join(lines)


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Writes bundle.schema.json (the checked-in copy lives beside this module; a test keeps it current)."""
    Path(path).write_text(schema_text(), encoding="utf-8")
    return Path(path)
