"""The image-shape rule (runtime/image_shape.py): which shapes there are and how a size is typed."""

import re

import pytest

from latent_atlas.runtime.image_shape import check_image_shape, parse_image_size
from latent_atlas.runtime.limits import MAX_IMAGE_SIDE


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64), [3, 32, 48], (1, 4, MAX_IMAGE_SIDE)])
def test_supported_shapes_come_back_as_int_tuples(shape):
    assert check_image_shape(shape) == tuple(shape)


@pytest.mark.parametrize("shape, words", [
    ((2, 28, 28), "expected 1 (grey) or 3 (RGB)"),
    ((1, 30, 28), "height 30 is not a positive multiple of 4"),
    ((3, 64, 0), "width 0 is not a positive multiple of 4"),
    ((1, 28, MAX_IMAGE_SIDE + 4), "larger than the limit"),
    ((1, 28), "expected three integers"),
    ((1, 28.0, 28), "expected three integers"),
    ("1x28x28", "expected three integers"),
])
def test_unsupported_shapes_are_one_line_errors(shape, words):
    with pytest.raises(ValueError, match=re.escape(words)) as raised:
        check_image_shape(shape)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("text, size", [("64", (64, 64)), ("48x64", (48, 64)), (" 32 X 32 ", (32, 32)), ("28×28", (28, 28))])
def test_image_sizes_parse_as_height_by_width(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text, words", [("", "expected H or HxW"), ("64x", "expected H or HxW"), ("-4", "expected H or HxW"),
                                         ("30", "height 30 is not"), ("64x1000", "width 1000 is larger")])
def test_bad_image_sizes_say_what_was_expected(text, words):
    with pytest.raises(ValueError, match=words):
        parse_image_size(text)
