# Two commands for a fresh clone (see README.md):
#   make reports   create .venv if absent, install, render every experiment at the cpu profile
#   make test      create .venv if absent, install, run the whole test suite
#   make grid      rerun EXPERIMENTS once per seed (SEEDS) at PROFILE on the local cores, then the aggregate report
# Both are idempotent: the install step reruns only when a requirements file changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.medgan-installed
PROFILE ?= cpu
# The data folder: ../shared/data when it exists beside the clone, else ./data (override: make test MEDGAN_DATA=...).
MEDGAN_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))
export MEDGAN_DATA
PYTEST_ARGS ?=
EXPERIMENTS ?= 01_bagan_blood_cells
SEEDS ?= 0 1 2

.PHONY: install test reports smoke grid data-check clean-venv

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

reports: $(STAMP)
	$(VENV)/bin/medgan run all --profile $(PROFILE)

smoke: $(STAMP)
	$(VENV)/bin/medgan run all --profile smoke --out build/smoke-reports

grid: $(STAMP)
	$(VENV)/bin/medgan grid $(EXPERIMENTS) --profile $(PROFILE) --seeds $(SEEDS)

data-check: $(STAMP)
	$(VENV)/bin/medgan data check

clean-venv:
	rm -rf $(VENV)
