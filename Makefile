# growdsl: two commands set everything up (see README.md).
#   make demo   creates .venv, installs everything, runs the embedded default plan on CPU
#   make test   same self-install, then the test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test lint typecheck bench clean editors gpu-check parser-tables

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

# The VS Code extension's test engine (vscode-textmate, vscode-oniguruma) from the npm
# registry, pinned by editors/vscode/package-lock.json; without node/npm the grammar test
# skips with a message.
VSCODE := editors/vscode
$(VSCODE)/node_modules/.package-lock.json: $(VSCODE)/package-lock.json
	-command -v npm >/dev/null && cd $(VSCODE) && npm ci --no-audit --no-fund --loglevel=error

editors: $(VSCODE)/node_modules/.package-lock.json

test: $(STAMP) editors
	$(PY) -m pytest -n 2 --timeout 900 $(PYTEST_ARGS)

# the LALR tables shipped next to the grammar (growdsl/parser_tables.py): after editing
# grammars/grow.lark; tests/test_parser_tables.py fails while they are stale
parser-tables: $(STAMP)
	PYTHONHASHSEED=0 $(PY) -c "from growdsl.parser_tables import main; main()"

lint: $(STAMP)
	$(VENV)/bin/ruff check growdsl tests bench examples
	$(VENV)/bin/mypy

# mergekit (growth_cost's comparison row) goes into its own virtualenv, which sees this one's
# packages (torch, transformers) through a .pth file; if it cannot be installed, the row is
# skipped with a message.
MERGEKIT_VENV ?= /tmp/mergekit-venv

# every CUDA code path on one GPU in under 8 minutes (bench/gpu_check.py); without a GPU it
# says so and exits 0. Its CPU dry mode runs in `make test` (tests/test_bench_smoke.py).
GPU_CHECK_OUT ?= runs/gpu-check

gpu-check: $(STAMP)
	$(PY) -m bench.gpu_check $(GPU_CHECK_OUT)

bench: $(STAMP)
	-test -x $(MERGEKIT_VENV)/bin/mergekit-yaml || ( $(PY) -m venv $(MERGEKIT_VENV) && \
	  $(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
	    "$$($(MERGEKIT_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/growdsl-venv.pth" && \
	  $(MERGEKIT_VENV)/bin/python -m pip install -q mergekit )
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(VSCODE)/node_modules
