"""The largest sizes a user can ask for, each with the reason for its bound (no imports: the CLI's
parsers read these for every command)."""

# Decoded images take 3 kB each as float32: 40,000 of them (a 200 x 200 grid) are about 125 MB.
MAX_POINTS = 40_000
MAX_GRID_SIDE = 200  # a grid of MAX_GRID_SIDE x MAX_GRID_SIDE is MAX_POINTS decodes
# The largest picture written, in pixels (all frames together for an animation): 64 megapixels is
# 64 MB as 8-bit grey, far beyond any screen, so a mistyped scale or count fails at once with this
# limit instead of exhausting memory.
MAX_PICTURE_PIXELS = 1 << 26
# Upscaling beyond this is never useful: one 28-pixel image is already 7168 pixels wide.
MAX_SCALE = 256
# A time budget, not a memory one: a single decode takes about 0.1 ms, so this is a couple of minutes.
MAX_REPEATS = 1_000_000
MIN_REPEATS = 10
# More intra-op threads than any machine has cores only makes ONNX Runtime wait on itself.
MAX_THREADS = 1024
# Importance samples per image: the IW bound decodes K images per test image, and beyond this it
# takes hours on a CPU while the bound has long stopped moving.
MAX_IW_SAMPLES = 10_000
# Latent points of the quadrature `evaluation.grid_log_likelihood` decodes (each once, shared by every
# image): the default 2-D grid, 251,001 points, takes about a minute for 10,000 images on 2 cores, so
# this bound about a quarter of an hour.
MAX_QUADRATURE_POINTS = 4_000_000

# Image shapes of the model family (train/family.py). A 256 x 256 side is already 84 times MNIST's pixels
# per channel: beyond it a 2-D latent cannot organise the detail, and training on a CPU becomes impractical.
MAX_IMAGE_SIDE = 256
# The encoder's Dense layer reads the last feature map whole: a side that halves evenly too seldom (100 ends
# at 25 x 25) would leave it millions of weights, more than the rest of the model, so such a side is refused.
MAX_HIDDEN_VALUES = 65_536
# `latent-atlas make-dataset` builds its images in memory before writing them: 2 GiB of uint8 pixels.
MAX_GENERATED_BYTES = 1 << 31
