"""The browser explorer: a static web app that runs a bundle with onnxruntime-web.

`latent-atlas web` assembles the site (site.py) from the app in app/, onnxruntime-web's files
(onnxruntime_web.py fetches the version pinned in package-lock.json) and model bundles, and serves
it on 127.0.0.1 (serve.py). Torch-free: it imports only latent_atlas.runtime.
"""
