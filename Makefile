# Quick start: `make demo` then `make test`. Everything runs from a local virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint audit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pouracquit demo --out out

lint: $(STAMP)
	$(BIN)/ruff check .
	# security lint: high-severity findings fail; medium ones are reviewed in docs/security.md
	$(BIN)/bandit -q -r core connectors state sandbox mappings --severity-level high

# needs the vulnerability database of PyPI's JSON API; see docs/security.md
audit: $(STAMP)
	$(BIN)/pip-audit --progress-spinner off

test: $(STAMP) lint
	$(BIN)/pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_sync.py

clean:
	rm -rf out build *.egg-info .pytest_cache .ruff_cache
