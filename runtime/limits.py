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
# Images are refused above this many pixels before anything is decoded, so a small file that
# unpacks to gigabytes (a decompression bomb) costs nothing. 50 MP covers any phone photo.
MAX_PIXELS = 50_000_000
# The trainer's sizes. A 2-D latent is the point of the project; 512 dims already make the decoder's
# first layer 6.4 M weights, and beyond that one mistyped number exhausts memory.
MAX_LATENT_DIM = 512
# A batch larger than the 60,000 training images is never a whole batch.
MAX_BATCH_SIZE = 65_536
MAX_EPOCHS = 100_000
# Importance samples per image of the IWAE objective: each is one decode per image per step.
MAX_IWAE_SAMPLES = 1_000
# Components of a fitted Gaussian-mixture prior: EM holds float64 arrays of codes x components x latent
# dims, at this bound, for MNIST's 110,000 2-D codes, about 0.9 GB each (the models here need far fewer).
MAX_PRIOR_COMPONENTS = 500
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
