"""The rules both explorers follow, defined once: the desktop app (Python) imports them, and
`latent-atlas web` writes `site_config()` into the site's config.json (key "explorer"), from which the
browser explorer (JavaScript) takes them at start-up. Neither explorer retypes a range, a colour or a
margin. Plain Python, no Qt, no torch: the runtime's import contracts hold here too.
"""

from __future__ import annotations

import math

import numpy as np

from .latent import PERCENTILE_EXTENT
from .options import INTERPOLATION_METHODS

# Tiles per side of a grid. 2 is the smallest grid that still spans its extent end to end (one tile is
# a single point); at 40 a tile of the grid panel is about 7 screen pixels, and smaller tiles show nothing.
GRID_SIZES: tuple[int, int] = (2, 40)
# What a grid spans: the map's visible region, or the bundle's PERCENTILE_EXTENT box.
GRID_SOURCE_NAMES: dict[str, str] = {"view": "visible region", "percentiles": "percentile extent"}
GRID_SOURCES: tuple[str, ...] = tuple(GRID_SOURCE_NAMES)
# Frames of an interpolation, ends included: at least A and B themselves.
INTERPOLATION_STEPS: tuple[int, int] = (2, 64)
# The map's initial view: the test set's p01..p99 box, which shows nearly every point without letting a
# few outliers shrink the cloud, plus this much room on each side (a fraction of the box).
VIEW_PERCENTILES: tuple[str, str] = ("p01", "p99")
HOME_MARGIN = 0.06
# Zoom factor per wheel notch or +/- key.
ZOOM_STEP = 1.25
# A slider of a latent dim the map does not show spans the test set's min..max plus this fraction of it
# on each side; a dim the test set never moves gets +-SLIDER_PRIOR_RANGE (the prior's bulk) instead.
SLIDER_MARGIN = 0.1
SLIDER_PRIOR_RANGE = 3.0
# bundle.json metrics a comparison of two models lists: (key, label, unit, decimals shown).
HEADLINE_METRICS: tuple[tuple[str, str, str, int], ...] = (
    ("test_neg_elbo", "test −ELBO", "nats", 2), ("test_iw_nll", "test IW NLL", "nats", 2),
    ("test_bits_per_dim", "test bits/dim", "bits/dim", 3))
# More classes than this and the legend is left out rather than covering the map.
MAX_LEGEND_ROWS = 12
# Tableau-10: distinguishable on the desktop's dark map and on the browser's white one, and the usual
# colours of MNIST scatter plots. Label i takes colour i modulo their number.
CLASS_COLOURS: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
# A bundle without class names (your own unlabelled pictures): one grey cloud, no legend.
UNLABELLED_COLOUR = "#9aa3b2"

# --- explaining the model (issue 47; the computations are runtime/explain.py) ---
# Real neighbours listed under the cursor, by default and at most/least (a row of thumbnails).
DEFAULT_NEIGHBOURS = 8
NEIGHBOUR_COUNTS: tuple[int, int] = (1, 32)
# The posterior's ellipses (in standard deviations) and how many posterior samples are decoded beside the mean.
POSTERIOR_SIGMAS: tuple[int, ...] = (1, 2)
POSTERIOR_SAMPLES = 8
# Background layers of the map: name -> what the legend calls it. "none" first: the default.
LAYER_NAMES: dict[str, str] = {"none": "no layer", "prior": "prior log-density (nats)",
                               "aggregate": "aggregate posterior log-density (nats)",
                               "entropy": "decoder entropy (nats per pixel)"}
LAYERS: tuple[str, ...] = tuple(LAYER_NAMES)
# Screen pixels per layer cell: the densities are cheap, the entropy layer decodes one image per cell.
LAYER_CELL_PIXELS: dict[str, int] = {"prior": 4, "aggregate": 4, "entropy": 12}
# Cells of a layer at most, whatever the map's size: 160 x 120 (a 640 x 480 map at 4 pixels a cell) keeps a
# layer's computation well under a second on one core; a larger map gets proportionally larger cells.
MAX_LAYER_CELLS = 19_200
# A log-density layer shows this many nats below its visible maximum; anything lower takes the bottom
# colour (e^-12 of the peak is already invisible on a linear scale, and -inf must not squash the rest).
LOG_DENSITY_SPAN = 12.0
# How the atlas points are coloured: by class, by reconstruction error, or by a known factor ("factor:NAME",
# one of the bundle's dataset.factor_names).
POINT_COLOURINGS: tuple[str, ...] = ("class", "error")
FACTOR_PREFIX = "factor:"
# The error colouring spans these percentiles of the atlas' errors, so a few failures do not grey the rest.
ERROR_PERCENTILES: tuple[float, float] = (1.0, 99.0)
# The difference image of two decodes spans a - b in this range, white at 0.
DIFFERENCE_RANGE: tuple[float, float] = (-1.0, 1.0)
# Colour maps as evenly spaced stops, interpolated linearly in RGB. Sequential: viridis (perceptually
# uniform, readable in grey and by colour-blind readers) for densities, entropy, error and factors.
# Diverging: ColorBrewer RdBu, blue for negative, white at the centre, red for positive.
COLOUR_MAPS: dict[str, tuple[str, ...]] = {
    "sequential": ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30",
                   "#fde725"),
    "diverging": ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d",
                  "#b2182b"),
}
LAYER_COLOUR_MAPS: dict[str, str] = {"prior": "sequential", "aggregate": "sequential", "entropy": "sequential",
                                     "error": "sequential", "factor": "sequential", "difference": "diverging"}
# Ticks a legend aims at along its scale (legend_ticks picks round numbers near this count).
LEGEND_TICKS = 5


def clamp(value: float, bounds: tuple[int, int]) -> int:
    """value rounded and held within bounds (low, high): what a spin box or number field accepts."""
    low, high = bounds
    return int(min(high, max(low, round(value))))


def legend_rows(class_names) -> list[tuple[str, str]]:
    """(name, colour) for each class, or no rows: an unlabelled bundle, or more classes than fit."""
    names = list(class_names or ())
    if len(names) > MAX_LEGEND_ROWS:
        return []
    return [(name, CLASS_COLOURS[i % len(CLASS_COLOURS)]) for i, name in enumerate(names)]


def layer_shape(layer: str, width: float, height: float) -> tuple[int, int]:
    """(cols, rows) of a layer over a map of width x height screen pixels: LAYER_CELL_PIXELS[layer] pixels a
    cell, scaled up together (aspect kept) when that would exceed MAX_LAYER_CELLS; at least 1 x 1."""
    pixels = LAYER_CELL_PIXELS[layer]
    cols, rows = max(1, math.floor(width / pixels)), max(1, math.floor(height / pixels))
    if cols * rows > MAX_LAYER_CELLS:
        shrink = math.sqrt(MAX_LAYER_CELLS / (cols * rows))
        cols, rows = max(1, math.floor(cols * shrink)), max(1, math.floor(rows * shrink))
    return cols, rows


def rgb(colour: str) -> tuple[int, int, int]:
    """'#4e79a7' -> (78, 121, 167): the rules' colours as 8-bit RGB."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def map_colours(values, low: float, high: float, colour_map: str) -> np.ndarray:
    """uint8 RGB [..., 3] of `values` on COLOUR_MAPS[colour_map] spanning low..high: below low (and NaN) the
    first stop, above high the last; between stops linear in RGB, rounded half up."""
    stops = np.array([rgb(c) for c in COLOUR_MAPS[colour_map]], np.float64)
    values = np.asarray(values, np.float64)
    t = np.nan_to_num((values - low) / (high - low) if high > low else np.zeros_like(values), nan=0.0)
    position = np.clip(t, 0.0, 1.0) * (len(stops) - 1)
    index = np.minimum(np.floor(position).astype(np.int64), len(stops) - 2)
    frac = (position - index)[..., None]
    return np.floor(stops[index] * (1 - frac) + stops[index + 1] * frac + 0.5).astype(np.uint8)


def layer_range(layer: str, values) -> tuple[float, float]:
    """(low, high) a layer's colours span over its visible cells: the top LOG_DENSITY_SPAN nats of a
    density, the whole range of the entropy; (0, 1) when no cell is finite, and never a zero width."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    high = float(finite.max())
    low = high - LOG_DENSITY_SPAN if layer in ("prior", "aggregate") else float(finite.min())
    return (low, high) if high > low else (low, low + 1.0)


def error_range(errors) -> tuple[float, float]:
    """(low, high) of the error colouring: the atlas errors' ERROR_PERCENTILES (linear interpolation,
    numpy's default), never a zero width."""
    low, high = (float(v) for v in np.percentile(np.asarray(errors, np.float64), ERROR_PERCENTILES))
    return (low, high) if high > low else (low, low + 1.0)


def legend_ticks(low: float, high: float, count: int = LEGEND_TICKS) -> list[tuple[float, str]]:
    """(value, label) of round ticks within [low, high]: the multiples of the step 1, 2 or 5 x 10^k nearest
    (by ratio) to (high - low) / count, labelled with the step's decimals."""
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        return []
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda step: abs(math.log(step / raw)))
    decimals = max(0, -math.floor(math.log10(step) + 1e-12))
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    ticks = [float(f"{k * step:.12g}") + 0.0 for k in range(first, last + 1)]  # + 0.0: no "-0"
    return [(value, f"{value:.{decimals}f}") for value in ticks]


def site_config() -> dict:
    """The rules as the site's config.json carries them to the browser explorer (web/app/js/state.js)."""
    return {
        "grid_sizes": list(GRID_SIZES),
        "grid_sources": dict(GRID_SOURCE_NAMES),
        "grid_percentiles": list(PERCENTILE_EXTENT),
        "interpolation_methods": list(INTERPOLATION_METHODS),
        "interpolation_steps": list(INTERPOLATION_STEPS),
        "view_percentiles": list(VIEW_PERCENTILES),
        "home_margin": HOME_MARGIN,
        "zoom_step": ZOOM_STEP,
        "max_legend_rows": MAX_LEGEND_ROWS,
        "class_colours": list(CLASS_COLOURS),
        "unlabelled_colour": UNLABELLED_COLOUR,
        "default_neighbours": DEFAULT_NEIGHBOURS,
        "neighbour_counts": list(NEIGHBOUR_COUNTS),
        "posterior_sigmas": list(POSTERIOR_SIGMAS),
        "posterior_samples": POSTERIOR_SAMPLES,
        "layers": dict(LAYER_NAMES),
        "layer_cell_pixels": dict(LAYER_CELL_PIXELS),
        "max_layer_cells": MAX_LAYER_CELLS,
        "log_density_span": LOG_DENSITY_SPAN,
        "point_colourings": list(POINT_COLOURINGS),
        "factor_prefix": FACTOR_PREFIX,
        "error_percentiles": list(ERROR_PERCENTILES),
        "difference_range": list(DIFFERENCE_RANGE),
        "colour_maps": {name: list(stops) for name, stops in COLOUR_MAPS.items()},
        "layer_colour_maps": dict(LAYER_COLOUR_MAPS),
        "legend_ticks": LEGEND_TICKS,
        "dim_slider": {"margin": SLIDER_MARGIN, "prior_range": SLIDER_PRIOR_RANGE},
        "headline_metrics": [list(metric) for metric in HEADLINE_METRICS],
    }
