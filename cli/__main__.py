"""`python -m latent_atlas.cli`: the same as `latent-atlas`, for launchers that take a module (torchrun -m)."""

import sys

from .main import main

sys.exit(main())
