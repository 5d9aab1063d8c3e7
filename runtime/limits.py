"""The largest sizes a user can ask for, each with the reason for its bound (no imports: the CLI's
parsers read these for every command)."""

# Decoded images take 3 kB each as float32 at the seed's 1 x 28 x 28: 40,000 of them (a 200 x 200 grid) are
# about 125 MB. A larger image shape gets as many points as fit in the same memory (`max_points`).
MAX_POINTS = 40_000
MAX_GRID_SIDE = 200  # a grid of MAX_GRID_SIDE x MAX_GRID_SIDE is MAX_POINTS decodes
SEED_IMAGE_VALUES = 28 * 28  # values per image (channels x height x width) that MAX_POINTS is set for
MAX_DECODED_VALUES = MAX_POINTS * SEED_IMAGE_VALUES
# The largest picture written, in 8-bit values (pixels times channels, all frames together for an
# animation): 64 M values is 64 MB, a 64-megapixel grey picture or a 21-megapixel colour one, far beyond
# any screen, so a mistyped scale or count fails at once with this limit instead of exhausting memory.
MAX_PICTURE_PIXELS = 1 << 26


def max_points(image_values: int = SEED_IMAGE_VALUES) -> int:
    """The most latent points decoded at once for images of `image_values` values each: MAX_POINTS for the
    seed's shape, fewer for larger images (the same memory), never fewer than one."""
    return max(1, min(MAX_POINTS, MAX_DECODED_VALUES // max(1, int(image_values))))


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
# A bound on how long the timing runs, not on memory.
MAX_REPEATS = 1_000_000
MIN_REPEATS = 10
# More intra-op threads than any machine has cores only makes ONNX Runtime wait on itself.
MAX_THREADS = 1024
# Importance samples per image: the IW bound decodes K images per test image, and beyond this it
# takes hours on a CPU while the bound has long stopped moving.
MAX_IW_SAMPLES = 10_000
# Latent points of the quadrature `evaluation.grid_log_likelihood` decodes (each once, shared by every
# image): the default 2-D grid has 251,001 points, so this bound is about 16 times its work.
MAX_QUADRATURE_POINTS = 4_000_000

# --- untrusted bundle files (runtime/untrusted.py; the browser reads the same numbers from config.json) ---
# A bundle.json is read whole only below this size: real manifests, fitted priors included, are tens of
# kilobytes, so this leaves two orders of magnitude and keeps a hostile file's parse far below 200 MB.
MAX_JSON_BYTES = 4 << 20
# Nesting depth of bundle.json: the deepest real key (training.config.*) is a few levels down; this stays
# far below Python's recursion limit and V8's stack, so both parsers refuse a deep file in the same words.
MAX_JSON_DEPTH = 64
# The largest integer a bundle.json may hold: JavaScript numbers are exact only up to 2**53 - 1, so a
# larger one would read as one number in Python and another in the browser.
MAX_JSON_INTEGER = (1 << 53) - 1
# Arrays in an .npz: an atlas holds two; a few more leave room for new ones without reading a zip of
# thousands of members.
MAX_NPZ_MEMBERS = 16
# One decompressed .npz array: a million-point atlas of 16 latent dims as float32 is 64 MiB; checked
# against the array's header before a byte of it is decompressed.
MAX_NPZ_ARRAY_BYTES = 64 << 20
# Points in an atlas: a million is more than any map shows (MNIST's test set is 10,000).
MAX_ATLAS_ROWS = 1_000_000
# `latent-atlas web --serve` (web/serve.py): a connection that sends nothing for this long is dropped,
# so stalled clients cannot hold the server's threads; a page's requests each take milliseconds.
SERVER_IDLE_TIMEOUT_S = 10.0
# Connections served at once (a thread each): a page opens a handful; beyond this one is answered 503 at
# once instead of another thread being started.
SERVER_MAX_CONNECTIONS = 512
# Connections the kernel queues before accept (the standard library's default is 5): a burst of a page's
# parallel fetches is queued instead of waiting a retransmission second.
SERVER_LISTEN_BACKLOG = 1024
# An .npy header (a short Python dict literal, about 100 bytes): numpy's own default bound, applied by
# the browser too, so a header cannot make either side parse megabytes.
MAX_NPY_HEADER_BYTES = 10_000

# --- the model family's image shapes and generated data sets ---
# Image shapes of the model family (train/family.py). A 256 x 256 side is already 84 times MNIST's pixels
# per channel: beyond it a 2-D latent cannot organise the detail, and training on a CPU becomes impractical.
MAX_IMAGE_SIDE = 256
# The encoder's Dense layer reads the last feature map whole: a side that halves evenly too seldom (100 ends
# at 25 x 25) would leave it millions of weights, more than the rest of the model, so such a side is refused.
MAX_HIDDEN_VALUES = 65_536
# `latent-atlas make-dataset` builds its images in memory before writing them: 2 GiB of uint8 pixels.
MAX_GENERATED_BYTES = 1 << 31
