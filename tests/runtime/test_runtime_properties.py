"""Property-based tests: random shapes, dtypes and values either work as documented or raise a
ValueError/TypeError, never anything else; the geometry holds for any endpoints and bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latent_atlas import runtime
from latent_atlas.runtime.latent import interpolation_path, manifold_axes

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.uint16,
                          np.bool_, np.complex64])


def arrays(shapes):
    return DTYPES.flatmap(lambda dtype: hnp.arrays(dtype, shapes))


@SETTINGS
@given(z=arrays(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
def test_decode_accepts_exactly_the_valid_latents(model, z):
    with np.errstate(over="ignore", invalid="ignore"):
        as_float = z.astype(np.float32) if z.dtype.kind != "c" else None
    valid = (as_float is not None and z.ndim in (1, 2) and z.shape[-1] == 2 and bool(np.isfinite(as_float).all()))
    if not valid:
        with pytest.raises((ValueError, TypeError)):
            model.decode(z)
        return
    images = model.decode(z)
    assert images.dtype == np.float32 and images.shape == z.shape[:-1] + (28, 28)
    assert np.all((images >= 0) & (images <= 1))


def valid_pixels(image: np.ndarray) -> bool:
    kind = image.dtype.kind
    if kind == "c":
        return False
    if kind == "f":
        return bool(np.isfinite(image).all()) and (image.size == 0 or (image.min() >= 0 and image.max() <= 1))
    if kind in "iu" and image.dtype != np.uint16:
        return image.size == 0 or (int(image.min()) >= 0 and int(image.max()) <= 255)
    return True


@SETTINGS
@given(image=arrays(st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_encode_accepts_exactly_the_valid_images(model, image):
    if not valid_pixels(image):
        with pytest.raises((ValueError, TypeError)):
            model.encode(image)
        return
    posterior = model.encode(image)
    assert posterior.mean.shape == posterior.logvar.shape == (2,)
    assert np.isfinite(posterior.mean).all() and np.isfinite(posterior.logvar).all()


@SETTINGS
@given(batch=hnp.arrays(np.uint8, st.tuples(st.integers(0, 5), st.just(28), st.just(28))))
def test_a_batch_encodes_like_its_images_one_by_one(model, batch):
    means = model.encode(batch).mean
    assert means.shape == (len(batch), 2)
    for image, mean in zip(batch, means):
        np.testing.assert_allclose(model.encode(image).mean, mean, atol=1e-5)


@SETTINGS
@given(image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64)),
                        elements=st.sampled_from([0, 0, 0, 40, 128, 255])))
def test_preprocessing_always_gives_an_mnist_field(image):
    out = runtime.preprocess(image)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))
    if out.any():
        assert out.max() == pytest.approx(1.0)
        rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
        assert rows[-1] - rows[0] < 20 + 1 and cols[-1] - cols[0] < 20 + 1  # inside the 20x20 box


finite = st.floats(-10, 10, allow_nan=False, width=32)


@SETTINGS
@given(data=st.data(), dim=st.integers(1, 8), steps=st.integers(2, 20), method=st.sampled_from(["linear", "slerp"]))
def test_interpolation_paths_run_from_a_to_b(data, dim, steps, method):
    a = np.array(data.draw(st.lists(finite, min_size=dim, max_size=dim)), np.float32)
    b = np.array(data.draw(st.lists(finite, min_size=dim, max_size=dim)), np.float32)
    path = interpolation_path(a, b, steps, method)
    assert path.shape == (steps, dim) and np.isfinite(path).all()
    np.testing.assert_allclose(path[0], a, atol=1e-4)
    np.testing.assert_allclose(path[-1], b, atol=1e-4)
    norms = np.linalg.norm(path, axis=1)
    if method == "linear":
        np.testing.assert_allclose(np.diff(path, 2, axis=0), 0, atol=1e-4)  # evenly spaced on a line
    else:  # lengths run between the endpoints' lengths: no overshoot, no dip through the origin
        low, high = sorted((np.linalg.norm(a), np.linalg.norm(b)))
        parallel = np.linalg.matrix_rank(np.stack([a, b]).astype(np.float64), tol=1e-3) < 2
        if not parallel:
            assert low - 1e-3 <= norms.min() and norms.max() <= high + 1e-3


@SETTINGS
@given(n=st.integers(1, 6), bounds=st.lists(finite, min_size=4, max_size=4))
def test_manifold_grids_cover_the_given_bounds(model, n, bounds):
    extent = ((bounds[0], bounds[1]), (bounds[2], bounds[3]))
    xs, ys = manifold_axes(n, extent)
    result = model.manifold(n, extent=extent)
    rows = result.z.reshape(n, n, 2)
    np.testing.assert_allclose(rows[0, :, 0], xs)
    np.testing.assert_allclose(rows[:, 0, 1], ys[::-1])
    np.testing.assert_allclose([xs[0], xs[-1], ys[0], ys[-1]], [bounds[0], bounds[1] if n > 1 else bounds[0],
                                                               bounds[2], bounds[3] if n > 1 else bounds[2]], atol=1e-5)
    assert result.images.shape == (n * n, 28, 28)
