"""MNIST-style preprocessing: real digits stay put, photos and drawings land where the digits are,
every image mode is read right, and bad or hostile files get clear errors."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from latent_atlas import runtime
from latent_atlas.runtime import preprocessing as prep

N_DIGITS = 60


def digits(mnist_test, n=N_DIGITS):
    images, labels = mnist_test
    return images[:n], labels[:n]


def save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


def on_paper(digit: np.ndarray, scale: int, canvas=(200, 160), at=(30, 12)) -> Image.Image:
    """A digit enlarged, drawn dark on light grey paper, off-centre on a bigger canvas: like a scan."""
    ink = Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    paper = Image.new("L", canvas, 0)
    paper.paste(ink, at)
    return Image.fromarray((235 - np.asarray(paper, np.float32) * (200 / 255)).astype(np.uint8))


def test_real_mnist_digits_come_back_unchanged(mnist_test):
    images, _ = digits(mnist_test, 200)
    out = np.stack([runtime.preprocess(image) for image in images])
    x = images / 255.0
    assert out.shape == (200, 28, 28) and out.dtype == np.float32
    # The crop, 20x20 box and centre of mass reproduce MNIST's own layout: most digits exactly,
    # the rest within a faint edge pixel or a one-pixel shift.
    assert np.mean(np.abs(out - x).max(axis=(1, 2)) < 1e-5) > 0.5
    assert np.abs(out - x).mean() < 0.005


def test_layout_is_mnists(mnist_test):
    for image in digits(mnist_test, 20)[0]:
        out = runtime.preprocess(on_paper(image, scale=5, canvas=(300, 260), at=(150, 100)))
        rows, cols = np.flatnonzero(out.max(axis=1) > 0.1), np.flatnonzero(out.max(axis=0) > 0.1)
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (19, 20)  # fits the 20x20 box
        mass = out.sum()
        com = (out.sum(axis=1) @ np.arange(28) / mass, out.sum(axis=0) @ np.arange(28) / mass)
        np.testing.assert_allclose(com, (14, 14), atol=0.75)
        assert out.max() == pytest.approx(1.0) and out[0].max() == out[-1].max() == 0.0


def photographed(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """The digit on paper, shot under uneven light with a noisy sensor (saved as a JPEG by the caller)."""
    paper = np.asarray(on_paper(digit, scale=6, canvas=(320, 260), at=(60, 40)), np.float32)
    height, width = paper.shape
    light = np.linspace(-25, 15, width)[None, :] + np.linspace(-10, 10, height)[:, None]
    noisy = np.clip(paper + light + rng.normal(0, 6, paper.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy).convert("RGB")


def test_digit_files_encode_where_the_arrays_do(model, mnist_test, tmp_path):
    images, labels = digits(mnist_test)
    reference = model.encode(images).mean
    spread = float(np.mean(model.latent_stats["std"]))
    rng = np.random.default_rng(0)
    variants = {  # name: (picture of a digit, file type, nearest-class agreement with the original)
        "png": (lambda d: Image.fromarray(d), "png", 0.95),
        "inverted": (lambda d: Image.fromarray(255 - d), "png", 0.95),
        "scaled on paper": (lambda d: on_paper(d, scale=4), "png", 0.8),
        "photographed": (lambda d: photographed(d, rng), "jpg", 0.75),
    }
    for name, (make, suffix, agreement) in variants.items():
        paths = [save(make(d), tmp_path / f"{name}-{i}.{suffix}") for i, d in enumerate(images)]
        means = model.encode(paths).mean
        distance = np.linalg.norm(means - reference, axis=1)
        assert np.median(distance) < 0.25 * spread, name
        assert np.mean(model.nearest_class(means) == model.nearest_class(reference)) >= agreement, name
        assert np.mean(model.nearest_class(means) == labels) > 0.5, name


def test_preprocess_false_reads_a_png_exactly(model, mnist_test, tmp_path):
    image = digits(mnist_test, 1)[0][0]
    path = save(Image.fromarray(image), tmp_path / "digit.png")
    np.testing.assert_array_equal(model.encode(path, preprocess=False).mean, model.encode(image).mean)
    with pytest.raises(ValueError, match="must be 28x28, got 56x56"):
        model.encode(Image.fromarray(image).resize((56, 56)), preprocess=False)
    with pytest.raises(ValueError, match="preprocess must be"):
        model.encode(image, preprocess="yes")


def hand_drawn(digit: str) -> Image.Image:
    """Thick black marker strokes on white paper, 320x400, drawn off-centre like a quick sketch."""
    image = Image.new("RGB", (320, 400), "white")
    pen = ImageDraw.Draw(image)
    if digit == "0":
        pen.ellipse((70, 60, 230, 330), outline="black", width=26)
    elif digit == "1":
        pen.line((170, 50, 160, 340), fill="black", width=28)
    elif digit == "7":
        pen.line((60, 70, 250, 70), fill="black", width=26)
        pen.line((250, 70, 120, 350), fill="black", width=26)
    return image


@pytest.mark.parametrize("digit", ["0", "1", "7"])
def test_hand_drawn_digits_land_in_their_cluster(model, digit, tmp_path):
    path = save(hand_drawn(digit), tmp_path / f"drawn-{digit}.jpg", quality=85)
    pixels = runtime.preprocess(path)
    assert pixels[:3].max() == 0 and pixels[:, :3].max() == 0  # white paper became black background
    assert model.class_names[int(model.nearest_class(model.encode(path).mean))] == digit


def mode_variants(digit: np.ndarray) -> dict[str, Image.Image]:
    """One digit (uint8, white on black) in every common image mode, drawn as dark ink on paper."""
    dark = 255 - digit
    ink = digit.astype(np.float32) / 255
    rgb = np.stack([dark, dark, np.full_like(dark, 255)], axis=-1)  # blue ink on white
    transparent_dark = np.stack([np.zeros_like(digit)] * 3 + [digit], axis=-1)  # black strokes, clear canvas
    transparent_light = np.stack([np.full_like(digit, 255)] * 3 + [digit], axis=-1)  # white strokes
    palette = Image.fromarray(dark).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    with_transparency = palette.copy()
    with_transparency.info["transparency"] = int(np.asarray(palette)[0, 0])
    return {
        "L": Image.fromarray(dark),
        "RGB": Image.fromarray(rgb),
        "RGBA dark on clear": Image.fromarray(transparent_dark),
        "RGBA light on clear": Image.fromarray(transparent_light),
        "LA": Image.fromarray(np.stack([np.zeros_like(digit), digit], axis=-1)),
        "P": palette,
        "P with transparency": with_transparency,
        "I;16": Image.fromarray((dark.astype(np.uint16) * 257)),
        "I": Image.fromarray((dark.astype(np.int32) * 257)),
        "F": Image.fromarray(1.0 - ink),
        "1": Image.fromarray(dark).convert("1", dither=Image.Dither.NONE),
        "CMYK": Image.fromarray(rgb).convert("CMYK"),
    }


def test_every_image_mode_reads_as_the_same_digit(mnist_test, tmp_path):
    digit = np.asarray(Image.fromarray(digits(mnist_test, 1)[0][0]).resize((56, 56), Image.Resampling.BICUBIC))
    reference = runtime.preprocess(digit)
    for mode, image in mode_variants(digit).items():
        tolerance = 0.06 if mode in ("1", "P", "P with transparency") else 0.01  # quantised modes lose grey levels
        assert np.abs(runtime.preprocess(image) - reference).mean() < tolerance, mode
        if mode in ("I;16", "RGBA dark on clear", "P with transparency", "LA"):
            path = save(image, tmp_path / f"{mode.replace(' ', '-')}.png")
            with Image.open(path) as reopened:
                assert reopened.mode == image.mode, mode
            assert np.abs(runtime.preprocess(path) - reference).mean() < tolerance, mode


def test_arrays_of_every_layout_and_dtype(mnist_test):
    digit = digits(mnist_test, 1)[0][0]
    reference = runtime.preprocess(digit)
    rgb = np.repeat(digit[..., None], 3, axis=-1)
    rgba = np.concatenate([rgb, np.full_like(digit, 255)[..., None]], axis=-1)
    for name, array in {"uint16": digit.astype(np.uint16) * 257, "float": digit / 255.0,
                        "RGB": rgb, "RGBA float": rgba / 255.0, "HxWx1": digit[..., None],
                        "int64": digit.astype(np.int64)}.items():
        np.testing.assert_allclose(runtime.preprocess(array), reference, atol=1e-5, err_msg=name)
    binary = runtime.preprocess(digit > 127)
    assert np.abs(binary - reference).mean() < 0.06


def test_batches_and_lists(model, mnist_test, tmp_path):
    images = digits(mnist_test, 4)[0]
    path = save(Image.fromarray(images[1]), tmp_path / "one.png")
    batch = model.encode(images).mean
    np.testing.assert_array_equal(model.encode(images[:, None]).mean, batch)  # [N, 1, 28, 28]
    np.testing.assert_array_equal(model.encode(images[..., None]).mean, batch)  # [N, 28, 28, 1]
    mixed = model.encode([images[0], path, Image.fromarray(images[2])]).mean
    assert mixed.shape == (3, 2)
    np.testing.assert_allclose(mixed[0], batch[0], atol=1e-6)
    assert model.encode([]).mean.shape == (0, 2)


def test_exif_orientation_is_applied(mnist_test, tmp_path):
    digit = Image.fromarray(255 - digits(mnist_test, 1)[0][0]).resize((112, 112))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the camera held sideways
    stored = digit.transpose(Image.Transpose.ROTATE_90)
    path = save(stored, tmp_path / "sideways.jpg", exif=exif, quality=95)
    assert np.abs(runtime.preprocess(path) - runtime.preprocess(digit)).mean() < 0.02


def test_blank_images_give_a_black_field():
    for blank in (Image.new("L", (50, 40), 255), np.zeros((28, 28), np.uint8), np.full((10, 90), 0.5)):
        np.testing.assert_array_equal(runtime.preprocess(blank), np.zeros((28, 28), np.float32))


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG file that claims width x height pixels: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [8_000, 100_000])  # over our limit; over PIL's own bomb limit too
def test_decompression_bombs_are_refused_before_decoding(model, tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(side, side))
    assert path.stat().st_size < 200
    with pytest.raises(ValueError, match="refused.*(over the limit|too large)"):
        model.encode(path)
    with pytest.raises(ValueError, match="refused"):
        runtime.preprocess(path.read_bytes())


def test_files_that_are_not_images(model, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(ValueError, match="notes.png: not an image file"):
        model.encode(text)
    with pytest.raises(FileNotFoundError, match="no such file"):
        model.encode(tmp_path / "missing.png")
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buffer, "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ValueError, match="cannot decode"):
        model.encode(truncated)


@pytest.mark.parametrize("bad, error, message", [
    (np.full((28, 28), 255.0), ValueError, r"float pixels in \[0, 1\].*divide"),
    (np.full((28, 28), np.nan), ValueError, "non-finite"),
    (np.full((28, 28), -3, np.int32), ValueError, "integer pixels in 0..255"),
    (np.zeros((2, 3, 28, 28)), ValueError, "expected an image"),
    (np.zeros((1, 1, 1, 1, 1)), ValueError, "expected an image"),
    (np.zeros((28, 28), np.complex64), TypeError, "dtype complex64"),
    (np.array([["a"] * 28] * 28), TypeError, "dtype <U1"),
    (np.array([[object()] * 28] * 28), TypeError, "not numeric"),
    ([[0.0, 1.0], [0.0]], ValueError, "ragged"),
    (np.zeros((4, 0, 28)), ValueError, "at least 1x1"),
])
def test_encode_rejects_bad_arrays(model, bad, error, message):
    with pytest.raises(error, match=message):
        model.encode(bad)


def test_over_limit_arrays_are_refused(monkeypatch):
    monkeypatch.setattr(prep, "MAX_PIXELS", 100)
    with pytest.raises(ValueError, match="refused, 11x10 = 110 pixels"):
        runtime.preprocess(np.zeros((10, 11), np.uint8))


def test_fashion_images_keep_their_own_layout(data_dir):
    from latent_atlas.train.data import SPLIT_FILES, load_split

    if not (data_dir / "fashion-mnist" / SPLIT_FILES["test"][0]).is_file():
        pytest.skip(f"the fashion-mnist files are not in {data_dir / 'fashion-mnist'}")
    images = load_split("fashion-mnist", "test", data_dir=data_dir, download=False)[0][:100]
    x = images / 255.0
    own = np.stack([runtime.preprocess(image, layout="fashion-mnist") for image in images])
    as_digits = np.stack([runtime.preprocess(image) for image in images])
    # Products fill the field (longer side 28, box centred); the digit layout would shrink them to 20.
    assert np.median(np.abs(own - x).mean(axis=(1, 2))) < 1e-3
    assert np.median(np.abs(as_digits - x).mean(axis=(1, 2))) > 0.05
    assert runtime.load("fashion-mnist").encoder.layout == "fashion-mnist"
    with pytest.raises(ValueError, match="unknown layout"):
        runtime.preprocess(images[0], layout="cifar")
