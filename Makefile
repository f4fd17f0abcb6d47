# Quick start: `make demo` then `make test`. Everything runs from a local virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint audit bench clean lock

# requirements.lock pins every package the suite ran green with (`make lock` rewrites it);
# installs take their versions from it, so CI, a user's clone and the image agree.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -c requirements.lock
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

# not part of `make test`: about 20 minutes; writes docs/benchmarks.md and docs/img/bench-*.svg
bench: $(STAMP)
	$(BIN)/python bench/run.py

lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^pouracquit' > requirements.lock

clean:
	rm -rf out build *.egg-info .pytest_cache .ruff_cache
