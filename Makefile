# Palimpsest entry points. `make repro` (main job) and `make test` (test suite) each set up the
# virtual environment first, so either works on a fresh clone.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# The local CPU wheel on the reference machine; with a GPU: make setup TORCH_SPEC=torch (your CUDA build)
TORCH_SPEC ?= torch==2.13.0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
# OpenMP threads sleep instead of spinning while waiting: two torch processes on 2 shared cores
# otherwise slow down ~17x (measured on a training step: 7.0 s vs 0.39 s)
export OMP_WAIT_POLICY := PASSIVE
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup repro test quality format

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro --all-pipelines

quality: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	git ls-files '*.ipynb' | grep -v '/_executed/' | xargs -r $(BIN)/nbstripout --verify

test: quality
	$(BIN)/pytest -q --durations=15 tests
	$(BIN)/pytest -q --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg papers

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
