# Two commands on a fresh machine: `make demo`, `make test`. Everything installs into .venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
export MLTRADE_HOME ?= $(CURDIR)/.mltrade
export AIRFLOW_HOME ?= $(MLTRADE_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS ?= True

.PHONY: install demo test test-fast lint airflow mlflow-ui stop clean lock

install: $(VENV)/.installed

# uv (from PyPI) installs the locked set in seconds; pip would take minutes.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==0.13.9"
	$(BIN)/uv pip install --quiet -p $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet -p $(BIN)/python --no-deps -e .
	touch $@

lock:  ## re-resolve requirements.lock after editing pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev -p 3.11 -o requirements.lock

demo: install
	$(BIN)/mltrade demo

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check pipelines dags plugins tests benchmarks
	$(BIN)/mypy pipelines

AIRFLOW_PORT ?= 8080
airflow: install  ## the Airflow UI and scheduler on http://localhost:$(AIRFLOW_PORT)
	$(BIN)/mltrade db upgrade
	$(BIN)/airflow db migrate > /dev/null
	$(BIN)/airflow pools set broker 1 "premarket_rebalance: one broker call at a time"
	PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$(AIRFLOW_PORT)/execution/ \
	$(BIN)/airflow standalone

MLFLOW_PORT ?= 5000
mlflow-ui: install  ## the MLflow UI on the local store, http://localhost:$(MLFLOW_PORT)
	mkdir -p $(MLTRADE_HOME)/mlflow
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(MLTRADE_HOME)/mlflow/mlflow.db --port $(MLFLOW_PORT)

stop:
	-$(BIN)/mltrade db stop

clean: stop
	rm -rf $(MLTRADE_HOME)
