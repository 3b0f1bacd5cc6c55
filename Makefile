# plait — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# torch is pinned in constraints.txt (2.13.0 CPU build); never let pip pick an open range.
INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: help install install-dev demo test check bench clean

help:
	@echo "make demo     install if needed, then run 'plait demo' on built-in data"
	@echo "make test     install with dev extras, then scripts/check (format, lint, types, tests)"
	@echo "make install  create $(VENV) and install plait"
	@echo "make bench    run the benchmarks in bench/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(INSTALL) torch==2.13.0
	$(INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(INSTALL) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/plait demo --out demo-out

test: install-dev
	VENV=$(VENV) scripts/check

check: test

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(INSTALL) -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/train_overhead.py
	$(BIN)/python bench/align.py
	$(BIN)/python bench/balance.py --threads 1
	$(BIN)/python bench/avdigits.py --out avdigits-out

clean:
	rm -rf $(VENV) demo-out avdigits-out compare-out .mypy_cache .ruff_cache .pytest_cache
