# Two commands do all the set-up on a fresh machine: `make test` and `make run`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Where the MNIST / Fashion-MNIST files live; the loader downloads into it when they are missing.
LATENT_ATLAS_DATA ?= $(abspath ../shared/datasets)
export LATENT_ATLAS_DATA

.PHONY: test test-fast run venv system-deps models bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch, pinned: an unpinned torch pulls gigabytes of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,app,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Xvfb and the libraries Qt's xcb platform needs, for the explorer's real-window test.
system-deps:
	@bash scripts/install-system-deps.sh

# The import contracts (pyproject.toml, [tool.importlinter]) first; then the runtime's tests, in a process
# where `import torch` fails: proof that it is torch-free. PYTEST_ARGS goes to both pytest runs.
PYTEST_ARGS ?=
test: venv system-deps
	$(VENV)/bin/lint-imports
	LATENT_ATLAS_BLOCK_TORCH=1 $(PY) -m pytest tests/runtime $(PYTEST_ARGS)
	$(PY) -m pytest --ignore=tests/runtime $(PYTEST_ARGS)

# The same, less every tier that is slow by construction (tests/conftest.py's --fast): the edit-test loop.
test-fast:
	@$(MAKE) --no-print-directory test PYTEST_ARGS=--fast

run: venv
	$(VENV)/bin/latent-atlas explore

# Refreshes the README's pictures: the real-window test and the browser one (headless Chromium), writing into docs/screenshots/.
screenshots: venv system-deps
	LATENT_ATLAS_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/desktop/test_desktop_xvfb.py tests/web/test_web_screenshot.py

models: venv
	bash scripts/make-models.sh

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
