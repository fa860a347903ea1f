"""The Dockerfiles pass the parser-based lint (tests/deploy/dockerlint.py), which itself catches each rule."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from deploy.dockerlint import copy_sources, lint, parse, stages

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = (REPO / "docker" / "airflow.Dockerfile").read_text()
INFERENCE = (REPO / "docker" / "inference.Dockerfile").read_text()


def test_airflow_dockerfile_is_clean() -> None:
    assert [str(f) for f in lint(AIRFLOW)] == []


def test_inference_dockerfile_is_clean() -> None:
    assert [str(f) for f in lint(INFERENCE, require_multistage=True)] == []


def test_airflow_image_is_the_official_airflow_3_3_2_python_3_11() -> None:
    _, (stage,) = stages(parse(AIRFLOW))
    assert stage.image == "apache/airflow:3.3.2-python3.11"
    runs = " ".join(i.args for i in stage.instructions if i.keyword == "RUN")
    # torch comes from the CPU index, alone; everything else under the lock
    assert re.search(r"--index-url https://download\.pytorch\.org/whl/cpu\s+\"?torch==2\.13\.0", runs)
    assert '"apache-airflow==3.3.2"' in runs
    users = [i.args for i in stage.instructions if i.keyword == "USER"]
    assert users and users[-1] == "airflow"
    copies = [i.args for i in stage.instructions if i.keyword == "COPY"]
    assert any("dags/" in c and "/opt/airflow/dags" in c for c in copies)
    assert any("plugins/" in c and "/opt/airflow/plugins" in c for c in copies)


def test_inference_image_is_multistage_cuda_and_runs_banet_ops_as_uid_10001() -> None:
    _, all_stages = stages(parse(INFERENCE))
    assert len(all_stages) == 2
    builder, final = all_stages
    assert builder.name == "builder"
    assert re.fullmatch(r"nvidia/cuda:13\.0\.\d+-runtime-ubuntu22\.04", final.image)
    assert builder.image == final.image
    keywords = {i.keyword: i.args for i in final.instructions}
    assert keywords["ENTRYPOINT"] == '["banet-ops"]'
    assert keywords["USER"].split(":")[0] == "10001"
    assert [i.args for i in final.instructions if i.keyword == "COPY"] == ["--from=builder /opt/venv /opt/venv"]
    final_runs = " ".join(i.args for i in final.instructions if i.keyword == "RUN")
    assert "useradd --uid 10001" in final_runs
    assert not re.search(r"\bpip\b", final_runs), "the final stage installs nothing with pip"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics, enough for our patterns (no '!' exceptions used)."""
    path = path.strip("/")
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        regex = fnmatch.translate(pat).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        parts = path.split("/")
        if any(re.match(regex, "/".join(parts[: i + 1])) for i in range(len(parts))) or (
            pat.startswith("**/") and any(fnmatch.fnmatch(p, pat[3:]) for p in parts)
        ):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_what_the_dockerfiles_copy_and_drops_the_rest() -> None:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
    for text in (AIRFLOW, INFERENCE):
        for source in copy_sources(text):
            assert not _ignored(source, patterns), f"{source} is copied but excluded by .dockerignore"
            if source != "README.md":  # written with the release; pyproject's `readme` needs it
                assert (REPO / source).exists(), source
    for path in (".venv/bin/python", ".git/HEAD", ".banet/pg/url", "tests/fixtures/x.nc", "benchmarks/out/run.json", "banet_ops/__pycache__/a.pyc"):
        assert _ignored(path, patterns), path
    for path in ("banet_ops/cli/__init__.py", "requirements.lock", "dags/banet_ingest.py", "plugins/x.py", "pyproject.toml"):
        assert not _ignored(path, patterns), path


def test_lock_pins_what_the_images_need() -> None:
    lock = dict(line.split("==", 1) for line in (REPO / "requirements.lock").read_text().split() if "==" in line)
    assert lock["torch"] == "2.13.0"
    assert lock["apache-airflow"] == "3.3.2"
    assert "apache-airflow-providers-cncf-kubernetes" in lock


def test_chart_uses_the_images_the_dockerfiles_build() -> None:
    values = yaml.safe_load((REPO / "helm" / "banet-ops" / "values.yaml").read_text())
    assert values["airflow"]["airflowVersion"] == "3.3.2"
    assert values["podSecurity"]["inferenceUid"] == 10001
    assert values["podSecurity"]["airflowUid"] == values["airflow"]["securityContexts"]["pod"]["runAsUser"] == 50000


# --- the linter catches each rule --------------------------------------------------------------

GOOD = """\
FROM python:3.11.9-slim AS builder
COPY requirements.lock /r.lock
RUN pip install -c /r.lock banet-ops
FROM python:3.11.9-slim
COPY --from=builder /opt/venv /opt/venv
USER 10001
"""


@pytest.mark.parametrize(
    ("text", "rule", "multistage"),
    [
        (GOOD.replace("python:3.11.9-slim AS", "python:latest AS"), "pinned-base", False),
        (GOOD.replace("FROM python:3.11.9-slim\n", "FROM python\n"), "pinned-base", False),
        ("ARG BASE\n" + GOOD.replace("FROM python:3.11.9-slim\n", "FROM $BASE\n"), "pinned-base", False),
        (GOOD.replace("USER 10001", "USER root"), "non-root", False),
        (GOOD.replace("USER 10001", "USER 0:0"), "non-root", False),
        (GOOD.replace("USER 10001\n", ""), "non-root", False),
        (GOOD.replace("USER 10001", "USER 10001\nENV BANET_EARTHDATA_TOKEN=eyJhbGciOi"), "no-secrets", False),
        (GOOD.replace("USER 10001", "ENV FIRMS_MAP_KEY abc123\nUSER 10001"), "no-secrets", False),
        (GOOD.replace("USER 10001", "ARG DB_PASSWORD=hunter2\nUSER 10001"), "no-secrets", False),
        (GOOD.replace("FROM python:3.11.9-slim\nCOPY --from=builder /opt/venv /opt/venv\n", ""), "multi-stage", True),
        (
            GOOD.replace(
                "USER 10001", "RUN apt-get update && apt-get install -y --no-install-recommends gcc \\\n    && rm -rf /var/lib/apt/lists/*\nUSER 10001"
            ),
            "multi-stage",
            True,
        ),
        (
            GOOD.replace("USER 10001", "RUN apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*\nUSER 10001"),
            "multi-stage",
            True,
        ),
        (GOOD.replace("COPY requirements.lock /r.lock\n", "").replace("-c /r.lock ", ""), "lock", False),
        (GOOD.replace("pip install -c /r.lock banet-ops", "pip install banet-ops==0.1.0"), "lock", False),
        (GOOD.replace("USER 10001", "RUN pip install requests\nUSER 10001"), "pip-pinned", False),
        (GOOD.replace("USER 10001", "RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\nUSER 10001"), "apt", False),
        (GOOD.replace("USER 10001", "RUN apt-get update && apt-get install -y --no-install-recommends curl\nUSER 10001"), "apt", False),
        (GOOD.replace("USER 10001", "ADD https://example.org/x.tgz /x\nUSER 10001"), "no-remote", False),
        (GOOD.replace("USER 10001", "RUN curl -sSL https://example.org/i.sh | sh\nUSER 10001"), "no-remote", False),
    ],
)
def test_linter_catches(text: str, rule: str, multistage: bool) -> None:
    assert lint(GOOD, require_multistage=True) == []
    assert rule in {f.rule for f in lint(text, require_multistage=multistage)}


def test_linter_accepts_arg_defaults_digests_and_arg_without_value() -> None:
    text = "ARG BASE=python:3.11.9-slim\nARG HF_TOKEN\n" + GOOD.replace("FROM python:3.11.9-slim\n", "FROM ${BASE}@sha256:" + "a" * 64 + "\n")
    assert lint(text) == []
