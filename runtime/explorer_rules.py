"""The rules both explorers follow, defined once: the desktop app (Python) imports them, and
`latent-atlas web` writes `site_config()` into the site's config.json (key "explorer"), from which the
browser explorer (JavaScript) takes them at start-up. Neither explorer retypes a range, a colour or a
margin. Plain Python, no Qt, no torch: the runtime's import contracts hold here too.
"""

from __future__ import annotations

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
# More classes than this and the legend is left out rather than covering the map.
MAX_LEGEND_ROWS = 12
# Tableau-10: distinguishable on the desktop's dark map and on the browser's white one, and the usual
# colours of MNIST scatter plots. Label i takes colour i modulo their number.
CLASS_COLOURS: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
# A bundle without class names (your own unlabelled pictures): one grey cloud, no legend.
UNLABELLED_COLOUR = "#9aa3b2"


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
        "dim_slider": {"margin": SLIDER_MARGIN, "prior_range": SLIDER_PRIOR_RANGE},
    }
