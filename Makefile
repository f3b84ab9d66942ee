# Two commands a new machine needs: `make up` and `make test`. Each sets up .venv itself when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint demo bench browser clean-var

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@# bench/ is no part of the package, and its scripts import bench.* when run as documented
	@# (`.venv/bin/python bench/x.py`): the development venv puts the checkout on its path
	@$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'skintrouble-checkout.pth').write_text(str(pathlib.Path.cwd()) + '\n')"
	@touch $(STAMP)

up: $(STAMP)
	$(BIN)/skintrouble up

# Debian's Chromium for the review-page browser test (no browser download at run time).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium missing: install Debian's chromium for the browser test"; }

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

demo: $(STAMP)
	$(BIN)/skintrouble demo

bench: $(STAMP)
	$(BIN)/python bench/quality_gate_bench.py
	$(BIN)/python bench/detector_bench.py
