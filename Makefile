# plait — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# torch is pinned in constraints.txt (2.13.0 CPU build); never let pip pick an open range.
INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: help install install-dev browser demo test check bench clean

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

# Debian's Chromium for tests/test_report_browser.py (Playwright drives it; never `playwright install`).
# Installed only when missing and only as root; otherwise the browser test skips and says why.
CHROMIUM := /usr/bin/chromium

browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: $(CHROMIUM) missing; the browser test will skip (as root: apt-get install -y chromium)"; fi

test: install-dev browser
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
	$(BIN)/python bench/evaluate.py --out bench-evaluate-out
	$(BIN)/python bench/serve_load.py --out bench-evaluate-out
	$(BIN)/python bench/offset.py
	$(BIN)/python bench/serve_fairness.py

clean:
	rm -rf $(VENV) demo-out avdigits-out compare-out bench-evaluate-out artifacts .mypy_cache .ruff_cache .pytest_cache
