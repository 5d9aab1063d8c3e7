# Two commands do all the set-up on a fresh machine: `make test` and `make run`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Where the MNIST / Fashion-MNIST files live; the loader downloads into it when they are missing.
LATENT_ATLAS_DATA ?= $(abspath ../shared/datasets)
export LATENT_ATLAS_DATA

.PHONY: test test-fast run venv system-deps models sprites-model bench screenshots docs clean

# torch comes from PyTorch's CPU-only index: PyPI's Linux torch is a CUDA build, gigabytes of libraries.
# CUDA users name another index: make venv TORCH_INDEX=https://pypi.org/simple ORT_EXTRA=gpu (PyPI's
# CUDA build), or PyTorch's index for their CUDA version.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(TORCH_CPU_INDEX)
# The pin has one owner, the train extra in pyproject.toml.
TORCH_PIN := $(shell grep -m1 -o 'torch==[0-9][0-9.]*' pyproject.toml)
# ONNX Runtime's extra: cpu, or gpu (onnxruntime-gpu) for CUDA; never both.
ORT_EXTRA ?= cpu
# A CPU wheel already on this machine (pip's find-links) comes first, without asking any index: pip
# waits minutes on an index it cannot reach, and CI reaches only the package registries. Its
# dependencies come from PyPI with the project's install below.
ifeq ($(TORCH_INDEX),$(TORCH_CPU_INDEX))
TORCH_LOCAL := $(PY) -m pip install -q --no-index --no-deps '$(TORCH_PIN)' 2>/dev/null ||
endif

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(TORCH_LOCAL) $(PY) -m pip install -q --index-url $(TORCH_INDEX) '$(TORCH_PIN)'
	$(PY) -m pip install -q -e '.[$(ORT_EXTRA),train,app,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Xvfb and the libraries Qt's xcb platform needs, for the explorer's real-window test.
system-deps:
	@bash scripts/install-system-deps.sh

# The import contracts (pyproject.toml, [tool.importlinter]) first; then the browser explorer's rules under
# Node's own test runner (no browser, no npm packages); then the runtime's tests, in a process where
# `import torch` fails: proof that it is torch-free; then the documentation, built strictly.
# PYTEST_ARGS goes to both pytest runs.
PYTEST_ARGS ?=
test: venv system-deps
	$(VENV)/bin/lint-imports
	node --test web/tests/
	LATENT_ATLAS_BLOCK_TORCH=1 $(PY) -m pytest tests/runtime $(PYTEST_ARGS)
	$(PY) -m pytest --ignore=tests/runtime $(PYTEST_ARGS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The same, less every tier that is slow by construction (tests/conftest.py's --fast): the edit-test loop.
test-fast:
	@$(MAKE) --no-print-directory test PYTEST_ARGS=--fast

run: venv
	$(VENV)/bin/latent-atlas explore

# Refreshes the README's pictures: the real-window test and the browser one (headless Chromium), writing into docs/screenshots/.
screenshots: venv system-deps
	LATENT_ATLAS_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/desktop/test_desktop_xvfb.py tests/web/test_web_screenshot.py

# The documentation site (mkdocs.yml), built offline into build/site/: open build/site/index.html from disk,
# or `$(VENV)/bin/mkdocs serve`. Its reference pages are generated from the code (scripts/docs_hooks.py).
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

models: venv
	bash scripts/make-models.sh

# The colour demo (issue 49): procedural sprites, a 64 x 64 x 3 model with a 2-D latent, exported to
# runtime/models/sprites.
sprites-model: venv
	bash scripts/make-models.sh sprites

# train_quality.py and export_variants.py read the run that `make models` trains (runs/bundled-mnist).
bench: venv system-deps
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/ddp_scaling.py
	$(PY) benchmarks/evaluation_speed.py
	$(PY) benchmarks/runtime_latency.py
	$(PY) benchmarks/explorer_frame.py
	$(PY) benchmarks/mobile_usability.py
	$(PY) benchmarks/web_explorer.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
