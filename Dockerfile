# The autosynk Airflow image: the official Airflow 3.3.2 image plus the project's pinned
# dependencies and the autosynk package. Build: docker compose build (see docs/deployment.md).
#
# Never put key material, .env or config/ into this image: credentials reach containers at
# run time (AIRFLOW_CONN_* from .env, key files as read-only compose secrets).
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

ARG AIRFLOW_VERSION=3.3.2

# gpg is needed for zip+pgp packaging; the official image is Debian-based.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

# Dependencies first, so a code change does not reinstall them. Airflow itself is named in
# the command so a requirement can never silently up- or downgrade it. The FAB provider
# the official image ships needs SQLAlchemy < 2 and cannot coexist with our pin
# (SQLAlchemy 2.1), so it goes; the deployment uses Airflow's core auth manager instead.
COPY --chown=airflow:root requirements.txt constraints.txt /opt/airflow/project/
RUN pip uninstall -y apache-airflow-providers-fab \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/airflow/project/requirements.txt -c /opt/airflow/project/constraints.txt \
    && pip check

# The package is installed editable from /opt/airflow/project/include, the folder
# docker-compose.yml mounts read-only, so DAGs and domain code are deployed together;
# the copy here makes the image usable on its own (and gives the `autosynk` CLI).
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow/project/
COPY --chown=airflow:root include/ /opt/airflow/project/include/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow/project

ENV AUTOSYNK_CONFIG=/opt/airflow/config/autosynk.yaml
