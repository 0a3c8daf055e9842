# RecGym: `make demo` and `make test` each build .venv when missing, install, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build that installs offline here; set TORCH=torch to take your platform's default build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.recgym-installed

.PHONY: install check-install demo test test-fast lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,ray]"
	# MovieLens-100K ships inside recbole's wheel; RecGym reads its files and never imports it.
	$(PY) -m pip install -q --no-deps "recbole==1.2.1" || echo "recbole not installed: movielens needs a path"
	touch $(STAMP)

install: $(STAMP) check-install

# From another folder, so the names resolve as they do for an installed user (not from the checkout).
check-install: $(STAMP)
	@cd / && $(abspath $(PY)) -m simulators.core.console check || { \
	  echo "error: RecGym's packages do not resolve to this checkout in $(VENV); use a dedicated virtual environment"; exit 2; }

demo: install
	$(PY) -m agents.train ppo --env ecommerce-v0 --out runs/demo --overwrite

# Two workers (pytest-xdist), each test file on one, one thread each, the files in the order of
# tests/conftest.py's FILE_ORDER; they share the test cache. JOBS=1 runs serially.
JOBS ?= 2
XDIST := -n $(JOBS) --dist loadfile --no-loadscope-reorder
# The tests start over a hundred CLIs as subprocesses: each reads the packages' compiled bytecode,
# written first even where PYTHONDONTWRITEBYTECODE is set (about 0.3 s less per start).
COMPILE := PYTHONDONTWRITEBYTECODE= $(PY) -m compileall -q agents encoders envs simulators benchmarks
# The whole suite builds the registered envs' worlds first, split between the workers (--build-worlds).
test: install
	$(COMPILE)
	$(PY) -m pytest -q $(XDIST) --build-worlds

# The unit tier: everything not marked slow.
test-fast: install
	$(COMPILE)
	$(PY) -m pytest -q $(XDIST) -m "not slow"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
