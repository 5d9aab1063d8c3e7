"""`latent-atlas web`: write the browser explorer as a static site, and/or serve it on 127.0.0.1."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from latent_atlas.runtime.options import add_model_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "web", help="the browser explorer: write it as a static site and/or serve it locally",
        description="Write the browser explorer (the app, onnxruntime-web and model bundles) as a static site "
                    "that any static host serves as it is, and/or serve it on 127.0.0.1 with the headers that "
                    "let onnxruntime-web use WASM threads. Needs no Node or npm: the pinned onnxruntime-web is "
                    "fetched once from the npm registry and cached.")
    add_model_option(p, "a bundled model name or a bundle directory; repeat for several (default: the bundled "
                        "models)", append=True, deprecated_positional=True)
    p.add_argument("--out", type=Path, metavar="DIR", help="write the site here (a new or empty folder, or an earlier site)")
    p.add_argument("--serve", action="store_true", help="serve the site on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000; 0 picks a free one)")
    p.add_argument("--quiet", action="store_true", help="print only the URL")
    p.set_defaults(handler=run_web)


def run_web(args) -> int:
    from latent_atlas.runtime.bundle import bundled_names

    from .site import build_site
    from .serve import ISOLATION_HEADERS, make_server, url_of

    if not args.out and not args.serve:
        raise ValueError("say what to do: --out DIR (write the site), --serve (serve it), or both")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    # MNIST first: the page opens on the first model.
    bundles = args.model or sorted(bundled_names(), key=lambda name: name != "mnist")
    if not bundles:
        raise ValueError("no bundles given and no bundled models installed; name a bundle directory")
    with tempfile.TemporaryDirectory(prefix="latent-atlas-web-") as scratch:
        site = build_site(bundles, args.out or Path(scratch) / "site", quiet=args.quiet)
        if args.out and not args.quiet:
            print(f"wrote the site to {site} (serve it with any static web server)", flush=True)
        if not args.serve:
            return 0
        server = make_server(site, "127.0.0.1", args.port)
        if not args.quiet:
            print(f"serving {site} with {', '.join(ISOLATION_HEADERS)} headers: cross-origin isolated, so "
                  f"onnxruntime-web can run WASM on several threads. Ctrl-C stops.", flush=True)
        print(f"open {url_of(server)}", flush=True)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
        finally:
            server.server_close()
    return 0
