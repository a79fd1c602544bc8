# syntax=docker/dockerfile:1
# The mltrade image: Airflow 3 with the pipelines package and its locked dependencies.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv && /opt/venv/bin/pip install "uv==0.13.9"
# The runtime set only: test, lint and deployment-check tools stay out of the image.
COPY requirements-runtime.lock /tmp/requirements.lock
RUN /opt/venv/bin/uv pip install -p /opt/venv/bin/python -r /tmp/requirements.lock

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 50000 airflow
COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/mltrade
COPY pyproject.toml README.md ./
COPY pipelines ./pipelines
COPY sql ./sql
COPY dags ./dags
COPY plugins ./plugins
# The folders compose mounts volumes on (and MLTRADE_HOME's parent) exist and belong to
# airflow: a named volume takes the image folder's owner; a missing one is made for root,
# and the airflow user could write neither task logs, GX Data Docs nor MLflow artifacts.
RUN /opt/venv/bin/uv pip install -p /opt/venv/bin/python --no-deps . \
    && mkdir -p /opt/airflow/logs /opt/airflow/mltrade /mlflow \
    && chown -R airflow /opt/mltrade /opt/airflow /mlflow
ENV PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/mltrade/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/mltrade/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    MLTRADE_HOME=/opt/airflow/mltrade
USER airflow
