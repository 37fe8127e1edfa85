# The whole set-up on a fresh machine that has only python3 (with venv) and make:
#
#   make book    build the site into _build/html
#   make test    lint, unit tests + doctests, notebook validation, book build, site tests
#
# Both create .venv on first use and install the project with the pinned versions of
# constraints.txt; the install re-runs only when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Reproducible runs: fixed hash seed, headless matplotlib, torch's default thread count.
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
# Silences debugpy's "frozen modules" warning printed by every kernel nbval starts.
export PYDEVD_DISABLE_FILE_VALIDATION := 1
unexport OMP_NUM_THREADS

# `make test` runs its steps in the order written, never in parallel.
.NOTPARALLEL:

.PHONY: help install book check-notebooks site test lint unit quick lab nbval execute bench test-gpu clean distclean

help:
	@echo "make book       build the book into _build/html (notebook gate, then jupyter-book)"
	@echo "make test       ruff + mypy, pytest + doctests, nbval on chapters/, then make site"
	@echo "make quick      the fast tests for development: pytest + doctests without slow/site tests"
	@echo "make lab        open the chapters in JupyterLab (installed into $(VENV) by make install)"
	@echo "make site       make book, then check the site in Chromium (tests marked site)"
	@echo "make install    create $(VENV) and install the pinned environment (done by both)"
	@echo "make execute    re-execute notebooks in place, as nbval does (NOTEBOOKS=... to pick)"
	@echo "make bench      benchmark exact masking vs nn.LSTM (JSON + PNG in benchmarks/results)"
	@echo "                (BENCH_ARGS=--quick: a short smoke run, its files not committed)"
	@echo "make test-gpu   CUDA tests and every notebook with --nbval-lax on the GPU"
	@echo "make clean      remove _build and caches (keeps $(VENV))"
	@echo "make distclean  clean, and remove $(VENV)"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt -e '.[test,book,docs,lab]'
	touch $@

# ---------------------------------------------------------------------------- book
# The build does not execute notebooks (execute_notebooks: "off" in _config.yml): the
# site shows the committed outputs, which nbval checks in `make test`. So first make
# sure they are complete. Each build starts from an empty _build/html and Sphinx
# environment (.doctrees): no warning hides in a cache and no stale page or link
# survives (a few seconds: nothing is executed). -W --keep-going turns every warning
# into a failure after reporting all of them.
book: check-notebooks
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going

check-notebooks: $(STAMP)
	$(BIN)/python tools/check_notebooks.py chapters

# The built site in a real browser (tests/test_site.py, marker `site`): Debian's chromium
# driven by Playwright. Locally they skip without a browser; with CI set they fail.
site: book
	$(BIN)/pytest tests -m site -p no:cacheprovider

# ---------------------------------------------------------------------------- test
test: lint unit nbval site

# ruff, then mypy (configured in pyproject.toml: strict on the core, checked on the book layer)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Library tests, doctests (the bench script's too); the site tests need the built book
# and run in `make site`.
# This includes the slow tests: torch.compile, the wheel in a fresh venv
# (tests/test_wheel.py) and the chapters in JupyterLab (tests/test_lab.py).
unit: $(STAMP)
	$(BIN)/pytest tests lstm_zero_lib benchmarks --doctest-modules -m "not site" -p no:cacheprovider

# The same without the tests marked slow (or site): what a developer runs after each edit.
quick: $(STAMP)
	$(BIN)/pytest tests lstm_zero_lib benchmarks --doctest-modules -m "not slow and not site" -p no:cacheprovider

# ------------------------------------------------------------------------------ lab
# JupyterLab (the `lab` extra, pinned in constraints.txt) opened on the chapters, with the
# inline matplotlib backend (not the Agg exported above: with Agg no figure would show).
# As root (a container), JupyterLab refuses to start without --allow-root.
lab: $(STAMP)
	$(NBKERNEL_ENV) $(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) chapters/

# Re-executes every notebook and compares each cell's output with the committed one,
# after tests/nbval_sanitize.cfg has masked volatile text. The kernels get Jupyter's own
# inline matplotlib backend, not the Agg exported above: with Agg, plt.show() displays
# nothing and every committed figure would be reported missing. pytest exits 5 when it
# collects nothing, so an empty chapters/ is skipped instead.
NOTEBOOKS = $(sort $(shell find chapters -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null))
NBKERNEL_ENV = MPLBACKEND=module://matplotlib_inline.backend_inline

nbval: $(STAMP)
ifeq ($(strip $(NOTEBOOKS)),)
	@echo "nbval: no notebooks under chapters/, nothing to validate"
else
	$(NBKERNEL_ENV) $(BIN)/pytest --nbval chapters --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider
endif

# Re-executes notebooks in place, top to bottom, in the environment nbval checks them in
# (same hash seed, inline figures). `make execute NOTEBOOKS=chapters/one.ipynb` for one.
execute: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
	    echo "executing $$nb"; \
	    $(NBKERNEL_ENV) $(BIN)/jupyter execute --inplace "$$nb" || exit 1; \
	done

# ----------------------------------------------------------------------- bench, gpu
# Speed of MaskedLSTM against nn.LSTM, pack_padded_sequence and a step loop, measured
# side by side in one process (BENCH_ARGS="--device cuda" on a GPU machine).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_masked_lstm.py $(BENCH_ARGS)

# The GPU path: the CUDA tests (skipped elsewhere) must run, not skip, and the chapters
# re-run with --nbval-lax (outputs may differ on a GPU; the asserts still guard every claim).
test-gpu: $(STAMP)
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
	$(BIN)/pytest tests -m cuda -p no:cacheprovider
	LSTM_ZERO_DEVICE=cuda $(NBKERNEL_ENV) $(BIN)/pytest --nbval-lax chapters --nbval-current-env -p no:cacheprovider

# --------------------------------------------------------------------------- clean
clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o \
	    \( -name __pycache__ -o -name .ipynb_checkpoints -o -name '*.egg-info' \) \
	    -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
