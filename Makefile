# autosynk: the commands a newcomer needs.
#   make demo   set everything up and run the main job on the bundled demo municipality
#   make test   set everything up and run every quality gate (what CI runs)
#   make airflow-up / airflow-down   a local Airflow deployment on Celery (two demo municipalities)

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO := examples/demo
# pytest's workers (xdist): this machine's 2 cores; 0 runs the suite in one process
PYTEST_WORKERS ?= 2

.PHONY: setup system venv demo demo-mutate test lint typecheck pytest bench bench-national \
	constraints clean airflow-up airflow-down

setup: system venv

system:
	bash scripts/setup-system.sh

$(BIN)/python:
	$(shell command -v $(PYTHON) || command -v python3) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .

demo: setup
	@test -f $(DEMO)/register/persons.json || $(BIN)/autosynk demo generate --out $(DEMO)/register --seed 7 --scale small
	$(BIN)/autosynk run --config $(DEMO)/autosynk.yaml
	@ls -l $(DEMO)/out

demo-mutate:
	$(BIN)/autosynk demo mutate --in $(DEMO)/register --seed 8
	$(BIN)/autosynk run --config $(DEMO)/autosynk.yaml
	@ls -l $(DEMO)/out

test: setup lint typecheck pytest

airflow-up: setup
	$(BIN)/python scripts/local_airflow.py up

airflow-down:
	$(BIN)/python scripts/local_airflow.py down

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

bench: setup
	$(BIN)/python bench/run.py --scale stockholm $(if $(BENCH_WORK),--work $(BENCH_WORK)) $(BENCH_ARGS)

# national scale (10x Stockholm): ~6 GB of register, ~20 GB of disk with the runs' copies;
# each night capped at 20 GiB of address space so that it fails cleanly, not by the OOM killer
bench-national: setup
	$(BIN)/python bench/run.py --scale national --memory-limit-gb 20 $(if $(BENCH_WORK),--work $(BENCH_WORK)) $(BENCH_ARGS)

constraints:
	rm -rf /tmp/autosynk-constraints && $(PYTHON) -m venv /tmp/autosynk-constraints
	/tmp/autosynk-constraints/bin/pip install --quiet -r requirements.txt
	/tmp/autosynk-constraints/bin/pip freeze > constraints.txt

clean:
	rm -rf $(DEMO)/register $(DEMO)/state $(DEMO)/out $(DEMO)/work
	rm -rf examples/tenants/exempelby examples/tenants/provby
