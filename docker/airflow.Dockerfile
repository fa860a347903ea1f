# syntax=docker/dockerfile:1.7
# Airflow 3.3.2 (Python 3.11) + banet-ops with the pinned dependency set, DAGs and plugins baked in.
# Build from the repository root:
#   docker build -f docker/airflow.Dockerfile -t REGISTRY/banet-ops/airflow:VERSION .
# Reproducible from requirements.lock: every Python package is installed under that lock as a
# constraint file; torch is the CPU build (the workers never use CUDA: GPU inference runs in
# the pods of docker/inference.Dockerfile).
FROM apache/airflow:3.3.2-python3.11

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BANET_REGIONS_DIR=/etc/banet/regions

# The official image installs Python packages as the airflow user (uid 50000), never as root.
USER airflow
WORKDIR /opt/airflow

COPY --chown=airflow:root requirements.lock /opt/banet/requirements.lock

# torch first, from the CPU wheel index: PyPI's torch==2.13.0 for Linux is the CUDA build and
# would pull ~3 GB of nvidia-* wheels. --no-deps: its dependencies (filelock, sympy, networkx,
# jinja2, fsspec, ...) come from the lock in the next step, at the locked versions.
RUN pip install --no-deps --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

# banet-ops and its dependencies at the locked versions. apache-airflow is named explicitly so
# that pip can never move the Airflow of the base image (the lock pins the same 3.3.2).
COPY --chown=airflow:root pyproject.toml README.md /opt/banet/src/
COPY --chown=airflow:root banet_ops /opt/banet/src/banet_ops
RUN pip install --constraint /opt/banet/requirements.lock \
        "apache-airflow==3.3.2" \
        apache-airflow-providers-cncf-kubernetes \
        apache-airflow-providers-standard \
        apache-airflow-providers-postgres \
        apache-airflow-providers-amazon \
        /opt/banet/src \
    && python -c "import torch, banet_ops; assert torch.version.cuda is None, torch.__version__" \
    && banet-ops --version

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/

USER airflow
