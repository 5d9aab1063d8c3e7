"""The runtime's subcommands: info, decode, grid, sample, encode, interpolate, bench, doctor.

They need only numpy, onnxruntime and pillow. This module is imported for every `latent-atlas`
command, so the runtime itself is imported inside the handlers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .files import check_output_file
from .limits import MAX_GRID_SIDE, MAX_POINTS, MAX_REPEATS, MAX_SCALE, MAX_THREADS, MIN_REPEATS
from .options import INTERPOLATION_METHODS, add_model_option, add_provider_option


def register(subparsers) -> None:
    p = _add(subparsers, "info", "describe a model bundle", "What the bundle holds, how it was made, where it runs.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_info)

    p = _add(subparsers, "decode", "decode latent points into images",
             "Decode one or more latent points. Negative first values need '=': --z=-1,0.5")
    p.add_argument("--z", action="append", required=True, metavar="Z1,Z2,...",
                   help="a latent point, comma-separated; repeat for several (tiled into one image)")
    _add_output(p)
    p.set_defaults(handler=run_decode)

    p = _add(subparsers, "grid", "draw the latent manifold as an n x n grid",
             "Decode an n x n grid over two latent dims (top row = largest y).")
    p.add_argument("-n", type=int, default=20, help=f"points per side (at most {MAX_GRID_SIDE}; default 20)")
    p.add_argument("--extent", default="prior", metavar="prior|percentiles|XMIN,XMAX,YMIN,YMAX",
                   help="prior: the 0.05..0.95 quantiles of N(0, 1) (default); percentiles: the test set's "
                        "p05..p95 per dim; or explicit bounds (with '=' when XMIN is negative: --extent=-2,2,-2,2)")
    p.add_argument("--dims", default="0,1", metavar="X,Y", help="the two latent dims spanned (default 0,1)")
    _add_output(p)
    p.set_defaults(handler=run_grid)

    p = _add(subparsers, "sample", "draw random samples from the prior",
             "Decode n points drawn from the model's prior: N(0, I), or the Gaussian mixture its export fitted "
             "(export --prior-components).")
    p.add_argument("-n", type=int, default=64, help=f"how many (at most {MAX_POINTS:,}; default 64)")
    p.add_argument("--seed", type=int, default=None, help="makes the draw reproducible")
    _add_output(p)
    p.set_defaults(handler=run_sample)

    p = _add(subparsers, "encode", "encode images into latent points",
             "Encode image files (any size or mode; preprocessed to the model's image shape and layout, "
             "MNIST-style for MNIST models) to their posterior.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--no-preprocess", action="store_true",
                   help="use files of the model's size (28x28 for MNIST models) as they are")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_encode)

    p = _add(subparsers, "interpolate", "morph between two images or latent points",
             "Decode the path between two endpoints, each an image file or a latent point (Z1,Z2,...).")
    p.add_argument("--from", dest="start", required=True, metavar="IMAGE|Z", help="start: image file or latent point")
    p.add_argument("--to", dest="end", required=True, metavar="IMAGE|Z", help="end: image file or latent point")
    p.add_argument("--steps", type=int, default=10, help="frames, both ends included (default 10)")
    p.add_argument("--method", choices=INTERPOLATION_METHODS, default="linear")
    p.add_argument("--frame-ms", type=int, default=100, help="GIF frame duration (default 100)")
    _add_output(p, "a .gif animates the frames; other formats tile them in a row")
    p.set_defaults(handler=run_interpolate)

    p = _add(subparsers, "bench", "measure latency and throughput on this machine",
             "Time single-point decode, a 30x30 grid, batch throughput and single-image encode.")
    p.add_argument("--repeats", type=int, default=2000,
                   help=f"single-point decodes timed ({MIN_REPEATS} to {MAX_REPEATS:,}; default 2000)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"CPU threads per session (1 to {MAX_THREADS}; default: one per core)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_bench)

    p = subparsers.add_parser("doctor", help="check the onnxruntime install, providers and bundled models",
                              description="Report installed onnxruntime packages, available and active "
                                          "providers, and the bundled models; exit 1 if something is broken.")
    p.set_defaults(handler=run_doctor)


def _add(subparsers, name: str, help_text: str, description: str):
    p = subparsers.add_parser(name, help=help_text, description=description)
    add_model_option(p, "a bundled model's name or a bundle directory (default mnist)", default="mnist")
    add_provider_option(p, "execution provider: auto (default), cpu, cuda, tensorrt, directml, coreml", default="auto",
                        deprecated=("--providers",))
    p.add_argument("--strict", action="store_true", help="fail unless the asked provider is the one running")
    add_verify_option(p)
    return p


def add_verify_option(p) -> None:
    """--no-verify-checksums, for every command that loads a bundle (the explorer's too)."""
    p.add_argument("--no-verify-checksums", dest="verify_checksums", action="store_false",
                   help="load a bundle whose files you changed on purpose (by default every file must match "
                        "the SHA-256 in its bundle.json)")


def _add_output(p, extra: str = "") -> None:
    p.add_argument("-o", "--out", required=True, help="output image file (.png, .jpg, .gif, ...)" +
                   (f"; {extra}" if extra else ""))
    p.add_argument("--scale", type=int, default=1, help=f"enlarge each pixel this many times (1 to {MAX_SCALE}; default 1)")


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers such as 0.5,-1, got {text!r}") from None


def _load(args):
    """The model, after the output path and the scale are checked: a bad one fails before any work."""
    import warnings

    from . import load

    if getattr(args, "out", None) is not None:
        check_output_file(args.out)
        _image_format(Path(args.out))
    if getattr(args, "scale", None) is not None:
        from .images import check_scale
        check_scale(args.scale)

    # Provider fallbacks are warnings in the library; here each becomes one line on stderr.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load(args.model, providers=args.provider, strict=args.strict, threads=getattr(args, "threads", None),
                     verify=args.verify_checksums)
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"latent-atlas {args.command}: warning: {message}", file=sys.stderr)
    return model


def _image_format(out: Path) -> str:
    from PIL import Image

    format = Image.registered_extensions().get(out.suffix.lower())
    if format is None:
        raise ValueError(f"unknown file extension {out.suffix!r} for {out}: expected .png, .gif, .jpg, .webp, "
                         "or another image type Pillow writes")
    return format


def _save(image, args) -> int:
    from .images import write_picture

    out = Path(args.out)
    write_picture(out, image, _image_format(out))
    print(f"{out}: {image.width}x{image.height}")
    return 0


def _report(args, data, lines) -> int:
    """Prints `data` as JSON with --json, else the human-readable `lines`."""
    print(json.dumps(data, indent=2) if args.json else "\n".join(lines))
    return 0


def run_info(args) -> int:
    from .image_shape import shape_text
    from .prior import STANDARD_NORMAL

    model = _load(args)
    manifest = model.bundle.manifest
    dataset = manifest.dataset
    source = dataset.extra.get("source")
    info = {"name": model.name, "path": str(model.bundle.path), "dataset": dataset.name,
            "variant": model.bundle.variant, "latent_dim": model.latent_dim, "image_shape": list(model.image_shape),
            "likelihood": model.likelihood, "classes": model.class_names,
            "layout": model.layout, "source": source, "providers": model.providers, "metrics": manifest.metrics,
            "latent_stats": model.latent_stats, "prior": manifest.prior or model.prior.to_json(), "files": manifest.files,
            "export_command": manifest.export_command}
    stats = info["latent_stats"]
    classes = f"{len(info['classes'])} classes: {', '.join(info['classes'])}" if info["classes"] else "unlabelled"
    rows = [("dataset", f"{info['dataset']}, {classes}"), ("layout", f"{info['layout']} (how encode preprocesses)")]
    if source:
        counts = ", ".join(f"{split} {count:,}" for split, count in source.get("counts", {}).items())
        rows.append(("source", f"{source.get('kind')} {source.get('path')}  checksum {str(source.get('checksum'))[:16]}"
                               + (f"  split seed {source['split_seed']}" if source.get("split_seed") is not None else "")
                               + (f"  ({counts})" if counts else "")))
    rows.append(("images", f"{shape_text(model.image_shape)} ({'grey' if model.image_shape[0] == 1 else 'RGB'}), "
                           f"{info['likelihood']} likelihood"))
    rows.append(("latent", f"{info['latent_dim']}-D, variant {info['variant']}, runs on {model.provider}"))
    prior = model.prior
    rows.append(("prior", "N(0, I)" if prior.kind == STANDARD_NORMAL else
                 f"a {prior.components}-component Gaussian mixture fitted to {prior.fitted.get('codes', 0):,} training "
                 f"codes" if prior.fitted else f"a {prior.components}-component Gaussian mixture"))
    rows += [(key, value) for key, value in info["metrics"].items()]
    rows += [(f"z[{d}]", f"mean {stats['mean'][d]:+.3f}  std {stats['std'][d]:.3f}  "
              f"p05..p95 {stats['p05'][d]:+.3f}..{stats['p95'][d]:+.3f}") for d in range(model.latent_dim)]
    rows += [(filename, f"{entry['bytes']:,} bytes  sha256 {entry['sha256'][:16]}")
             for filename, entry in info["files"].items()]
    if info["export_command"]:
        rows.append(("made by", info["export_command"]))
    width = max(len(key) for key, _ in rows)
    lines = [f"{info['name']}  ({info['path']})", *(f"  {key:<{width}}  {value}" for key, value in rows)]
    return _report(args, info, lines)


def run_decode(args) -> int:
    from .images import grid_image, to_pil
    from .latent import check_count

    if len(args.z) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS:,} --z points per call, got {len(args.z):,}")
    model = _load(args)
    check_count(len(args.z), "--z points", image_values=model.decoder.image_values)
    images = model.decode([_floats(z) for z in args.z])
    return _save(to_pil(images[0], args.scale) if len(images) == 1 else grid_image(images, scale=args.scale), args)


def run_grid(args) -> int:
    model = _load(args)
    dims = tuple(int(v) for v in _floats(args.dims))
    if args.extent in ("prior", "percentiles"):
        extent = None if args.extent == "prior" else "percentiles"
    else:
        bounds = _floats(args.extent)
        if len(bounds) != 4:
            raise ValueError(f"--extent takes prior, percentiles or XMIN,XMAX,YMIN,YMAX; got {args.extent!r}")
        extent = (tuple(bounds[:2]), tuple(bounds[2:]))
    return _save(model.manifold(args.n, extent=extent, dims=dims).grid(scale=args.scale), args)


def run_sample(args) -> int:
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    model = _load(args)
    return _save(model.sample(args.n, seed=args.seed).grid(scale=args.scale), args)


def run_encode(args) -> int:
    model = _load(args)
    preprocess = False if args.no_preprocess else "auto"
    rows = []
    for path in args.images:
        posterior = model.encode(Path(path), preprocess=preprocess)
        labelled = model.class_names and model.bundle.atlas_path.is_file()
        nearest = model.class_names[int(model.nearest_class(posterior.mean))] if labelled else None
        rows.append({"image": path, "mean": posterior.mean.tolist(), "logvar": posterior.logvar.tolist(),
                     "std": posterior.std.tolist(), "nearest_class": nearest})
    lines = []
    for row in rows:
        mean = ", ".join(f"{v:+.3f}" for v in row["mean"])
        std = ", ".join(f"{v:.3f}" for v in row["std"])
        nearest = f"  nearest class {row['nearest_class']}" if row["nearest_class"] is not None else ""
        lines.append(f"{row['image']}: z = [{mean}]  std = [{std}]{nearest}")
    return _report(args, rows if len(rows) > 1 else rows[0], lines)


def run_interpolate(args) -> int:
    from .images import write_gif

    model = _load(args)
    result = model.interpolate(_endpoint(args.start), _endpoint(args.end), args.steps, method=args.method)
    out = Path(args.out)
    if out.suffix.lower() != ".gif":
        return _save(result.grid(ncols=len(result), scale=args.scale), args)
    frames = write_gif(out, result.images, scale=args.scale, frame_ms=args.frame_ms)
    height, width = (side * args.scale for side in result.images.shape[1:3])
    print(f"{out}: {frames} frames, {width}x{height}")
    return 0


def _endpoint(text: str):
    """An image file's path, or a latent point written as Z1,Z2,..."""
    if Path(text).exists():
        return Path(text)
    try:
        return _floats(text)
    except ValueError:
        raise FileNotFoundError(f"{text}: neither an image file nor a latent point such as 0.5,-1") from None


def run_bench(args) -> int:
    import time

    from .bench import measure

    if not MIN_REPEATS <= args.repeats <= MAX_REPEATS:
        raise ValueError(f"--repeats must be from {MIN_REPEATS} to {MAX_REPEATS:,} (the upper limit keeps a typo "
                         f"from running for hours), got {args.repeats:,}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise ValueError(f"--threads must be from 1 to {MAX_THREADS}, got {args.threads:,}")
    start = time.perf_counter()
    model = _load(args)
    load_ms = (time.perf_counter() - start) * 1e3
    result = {"model": model.name, "provider": model.provider, "load_ms": load_ms, **measure(model, args.repeats)}
    return _report(args, result, [
        f"{model.name} on {model.provider}",
        f"  load                  {result['load_ms']:8.1f} ms",
        f"  decode, one point     {result['decode_p50_us']:8.1f} us p50, {result['decode_p99_us']:.1f} us p99",
        f"  decode, 30x30 grid    {result['grid_30x30_ms']:8.1f} ms",
        f"  decode, batches       {result['decode_images_per_s']:8.0f} images/s",
        f"  encode, one image     {result['encode_p50_us']:8.1f} us p50"])


def run_doctor(args) -> int:
    from .doctor import diagnose, format_report

    report = diagnose()
    print(format_report(report))
    if report.errors:
        print(f"latent-atlas doctor: {len(report.errors)} problem(s) found", file=sys.stderr)
        return 1
    return 0
