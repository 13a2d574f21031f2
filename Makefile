# growdsl: two commands set everything up (see README.md).
#   make demo   creates .venv, installs everything, runs the embedded default plan on CPU
#   make test   same self-install, then the test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, alone: the CPU build; anything installed before it could pull CUDA wheels
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[backend,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m growdsl demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --timeout 900 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check growdsl tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
