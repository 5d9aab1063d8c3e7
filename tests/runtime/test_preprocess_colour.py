"""Preprocessing for models of other shapes: colour kept, sizes other than 28, the aspect-keeping layouts,
the stated grey <-> colour conversions and the one-line refusals (the MNIST path is test_runtime_preprocess)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from latent_atlas.runtime.images import to_display
from latent_atlas.runtime.preprocessing import (COLOUR_LAYOUTS, default_layout, is_blank, prepare_batch, preprocess,
                                                to_float)

COLOUR = (3, 32, 32)


def _red_square_on_blue(height: int, width: int) -> np.ndarray:
    """uint8 [height, width, 3]: a blue ground with a red square in the middle third."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 2] = 200
    image[height // 3:2 * height // 3, width // 3:2 * width // 3] = (230, 10, 10)
    return image


def test_colour_is_kept_and_the_size_is_the_models():
    out = preprocess(_red_square_on_blue(64, 64), "resize", COLOUR)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    assert out[16, 16, 0] > 0.8 and out[16, 16, 2] < 0.1  # the red middle
    assert out[1, 1, 2] > 0.7 and out[1, 1, 0] < 0.1  # the blue ground


def test_pad_keeps_the_aspect_ratio_and_fills_with_the_border_colour():
    wide = _red_square_on_blue(20, 40)  # 2:1 into a square field: 16 rows of content, 8 of padding each side
    out = preprocess(wide, "pad", COLOUR)
    assert out.shape == (32, 32, 3)
    np.testing.assert_allclose(out[:8].reshape(-1, 3), np.tile([0, 0, 200 / 255], (8 * 32, 1)), atol=1e-6)
    np.testing.assert_allclose(out[24:].reshape(-1, 3), np.tile([0, 0, 200 / 255], (8 * 32, 1)), atol=1e-6)
    red = (out[..., 0] > 0.5).nonzero()
    height, width = np.ptp(red[0]) + 1, np.ptp(red[1]) + 1
    assert width > 1.5 * height  # the square's own 13:7 proportions (a third of each side), not stretched to 1:1


def test_crop_keeps_the_centre_at_the_fields_aspect_ratio():
    picture = np.zeros((32, 96, 3), np.uint8)
    picture[:, :32] = (255, 0, 0)  # left third red, middle green, right blue: only green survives a centre crop
    picture[:, 32:64] = (0, 255, 0)
    picture[:, 64:] = (0, 0, 255)
    out = preprocess(picture, "crop", COLOUR)
    np.testing.assert_allclose(out, np.broadcast_to(np.float32([0, 1, 0]), (32, 32, 3)), atol=1e-6)
    stretched = preprocess(picture, "resize", COLOUR)
    assert stretched[:, 2, 0].min() > 0.9 and stretched[:, -3, 2].min() > 0.9  # all three bands, squeezed


def test_grey_for_a_colour_model_is_repeated_and_colour_for_a_grey_model_is_its_luma():
    grey = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    repeated = preprocess(grey, "resize", COLOUR)
    np.testing.assert_array_equal(repeated, np.repeat(grey[..., None], 3, axis=-1))
    rgb = _red_square_on_blue(32, 32)
    luma = preprocess(rgb, "resize", (1, 32, 32))
    assert luma.shape == (32, 32)
    np.testing.assert_allclose(luma, rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]) / 255, atol=1e-5)


def test_a_colour_file_keeps_its_colour_and_transparency_gets_a_contrasting_ground(tmp_path):
    path = tmp_path / "sprite.png"
    Image.fromarray(_red_square_on_blue(48, 48)).save(path)
    np.testing.assert_allclose(preprocess(path, "resize", COLOUR), preprocess(_red_square_on_blue(48, 48), "resize",
                                                                              COLOUR), atol=1e-6)
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (20, 20, 200, 255)  # a dark blue square on a transparent canvas: laid over white
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    out = preprocess(buffer.getvalue(), "resize", COLOUR)
    np.testing.assert_allclose(out[0, 0], [1, 1, 1])
    np.testing.assert_allclose(out[16, 16], np.float32([20, 20, 200]) / 255, atol=1e-6)


def test_the_ink_layouts_scale_with_the_field_for_grey_models():
    digit = np.zeros((100, 60), np.float32)
    digit[10:90, 25:35] = 1.0  # a tall stroke
    out = preprocess(digit, "mnist", (1, 64, 64))
    assert out.shape == (64, 64)
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    assert abs((rows[-1] - rows[0] + 1) - round(20 * 64 / 28)) <= 2  # the 20-of-28 box, scaled
    mass = out.sum()
    assert abs((out.sum(axis=1) * np.arange(64)).sum() / mass - 32) < 1  # centre of mass at the field's centre


def test_colour_models_refuse_the_ink_layouts_in_one_line():
    with pytest.raises(ValueError, match=r"^the mnist layout finds light ink .* takes one of resize, pad, crop$"):
        preprocess(_red_square_on_blue(32, 32), "mnist", COLOUR)
    assert set(COLOUR_LAYOUTS) == {"resize", "pad", "crop"}
    assert default_layout(COLOUR) == "pad" and default_layout((1, 28, 28)) == "mnist"


@pytest.mark.parametrize("shape, message", [
    ((2, 32, 32), "2 channels; expected 1 .grey. or 3 .RGB."),
    ((3, 30, 32), "not a positive multiple of 4"),
    ((3, 32, 1024), "larger than the limit"),
])
def test_unsupported_shapes_are_refused_in_one_line(shape, message):
    with pytest.raises(ValueError, match=message) as caught:
        preprocess(np.zeros((8, 8), np.uint8), "resize", shape)
    assert "\n" not in str(caught.value)


def test_prepare_batch_for_a_colour_model():
    batch = np.stack([_red_square_on_blue(32, 32), _red_square_on_blue(32, 32)[::-1]])
    channels_last, single = prepare_batch(batch, layout="pad", image_shape=COLOUR)
    assert channels_last.shape == (2, 3, 32, 32) and not single
    np.testing.assert_array_equal(channels_last, batch.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    channels_first, _ = prepare_batch(channels_last, layout="pad", image_shape=COLOUR)
    np.testing.assert_array_equal(channels_first, channels_last)
    one, single = prepare_batch(_red_square_on_blue(64, 64), layout="pad", image_shape=COLOUR)
    assert one.shape == (1, 3, 32, 32) and single
    empty, _ = prepare_batch([], layout="pad", image_shape=COLOUR)
    assert empty.shape == (0, 3, 32, 32)
    with pytest.raises(ValueError, match="with preprocess=False images must be 32x32, got 64x64"):
        prepare_batch(_red_square_on_blue(64, 64), False, "pad", COLOUR)


def test_blank_means_no_contrast_in_any_channel():
    assert is_blank(np.full((8, 8, 3), 0.4, np.float32))
    solid_then_red = np.full((8, 8, 3), 0.4, np.float32)
    solid_then_red[2:4, 2:4, 0] = 1.0
    assert not is_blank(solid_then_red)


def test_uint8_datasets_to_model_layout_and_back():
    colour = np.random.default_rng(0).integers(0, 256, (3, 8, 12, 3), dtype=np.uint8)
    model = to_float(colour)
    assert model.shape == (3, 3, 8, 12)
    np.testing.assert_array_equal(to_display(model), colour.astype(np.float32) / 255)
    assert to_float(colour[..., 0]).shape == (3, 1, 8, 12)
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \[N, H, W\] or \[N, H, W, 3\]"):
        to_float(np.zeros((2, 4, 4, 2), np.uint8))
