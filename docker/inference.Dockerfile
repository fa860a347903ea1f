# syntax=docker/dockerfile:1.7
# The GPU image of `banet-ops infer` (and train): CUDA 13.0 runtime + Python 3.11 + banet-ops.
# Build from the repository root:
#   docker build -f docker/inference.Dockerfile -t REGISTRY/banet-ops/inference:VERSION .
#
# torch 2.13.0 on PyPI (Linux x86_64) is the CUDA 13.0 build; it pins its CUDA libraries
# (nvidia-cublas, nvidia-cudnn-cu13, nvidia-nccl-cu13, ...) to exact versions in its own
# metadata, so the lock plus torch's pins make the image reproducible. Those wheels carry the
# CUDA user-space libraries; the base image supplies the NVIDIA container environment, and the
# host driver must support CUDA 13.0 (driver >= 580).

# ---- builder: a venv with banet-ops and its locked dependencies --------------------------------
FROM nvidia/cuda:13.0.1-runtime-ubuntu22.04 AS builder

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers only here, for any dependency without a manylinux wheel; none reaches the final stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

COPY requirements.lock /build/requirements.lock
COPY pyproject.toml README.md /build/src/
COPY banet_ops /build/src/banet_ops
# Only what banet-ops needs (not Airflow, not the test tools), each at its locked version.
RUN pip install --constraint /build/requirements.lock /build/src \
    && pip check \
    && python -c "import torch; assert (torch.version.cuda or '').startswith('13.'), torch.__version__"

# ---- final: the runtime base and the venv, nothing else --------------------------------------
FROM nvidia/cuda:13.0.1-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 banet \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp/banet --shell /usr/sbin/nologin banet

COPY --from=builder /opt/venv /opt/venv

# The pod runs with a read-only root filesystem: every writable path is under /tmp (an
# emptyDir volume in the pod spec).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp/banet \
    BANET_HOME=/tmp/banet \
    BANET_DEVICE=cuda \
    XDG_CACHE_HOME=/tmp/cache \
    MPLCONFIGDIR=/tmp/matplotlib

USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["banet-ops"]
CMD ["--help"]
