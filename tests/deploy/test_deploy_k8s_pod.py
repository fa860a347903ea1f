"""The inference pod: built by KubernetesPodOperator from k8s.py, and the same whether it comes from
the chart's values or from the settings the chart gives the Airflow workers."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from banet_ops import errors
from banet_ops.orchestration import k8s
from banet_ops.orchestration.k8s import InferencePodSettings, InferencePodSpec, kpo_kwargs, settings_env_from_helm_values
from banet_ops.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "banet-ops"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())

FAKE_SECRETS = {
    "BANET_EARTHDATA_TOKEN": "supersecret-xyz",
    "BANET_FIRMS_MAP_KEY": "supersecret-firms-0123",
    "BANET_DATABASE_URL": "postgresql://banet_writer:supersecret-db-pw@db.example:5432/banet",
    "AWS_ACCESS_KEY_ID": "AKIASUPERSECRETID",
    "AWS_SECRET_ACCESS_KEY": "supersecret-aws-key",
}


@pytest.fixture
def secret_env(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Real-looking secret values in the environment, as an Airflow worker would have them."""
    for key, value in FAKE_SECRETS.items():
        monkeypatch.setenv(key, value)
    yield FAKE_SECRETS


def _pod_dict(kwargs: dict[str, Any], task_id: str = "infer") -> dict[str, Any]:
    """Build the pod KubernetesPodOperator would create, with no cluster, as Kubernetes JSON."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG
    from kubernetes.client import ApiClient

    with DAG("banet_infer_nrt", schedule=None, start_date=dt.datetime(2024, 1, 1)):
        op = KubernetesPodOperator(task_id=task_id, **kwargs)
    with mock.patch("airflow.providers.cncf.kubernetes.operators.pod.KubernetesHook") as hook:
        hook.return_value.is_in_cluster = True
        hook.return_value.get_namespace.return_value = None
        pod = op.build_pod_request_obj()
    return ApiClient().sanitize_for_serialization(pod)


def test_kpo_pod_from_chart_values(secret_env: dict[str, str]) -> None:
    spec = InferencePodSpec.from_helm_values(VALUES)
    kwargs = kpo_kwargs(spec, "PI", dt.date(2024, 8, 1), "nrt", "1CECHNKREP0F1RSTCMT0")
    pod = _pod_dict(kwargs)
    text = json.dumps(pod)

    inf = VALUES["inference"]
    assert pod["metadata"]["namespace"] == inf["namespace"]
    assert pod["metadata"]["name"].startswith("banet-infer-pi-nrt")
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"{inf['image']['repository']}:{inf['image']['tag']}"
    assert container["command"] == ["banet-ops"]
    assert container["args"] == [
        "infer", "--region", "PI", "--date", "2024-08-01", "--mode", "nrt",
        "--snapshot", "1CECHNKREP0F1RSTCMT0", "--device", "cuda",
    ]  # fmt: skip
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == str(inf["gpuCount"])
    assert resources["limits"]["memory"] == inf["resources"]["limits"]["memory"]
    assert resources["requests"] == {"cpu": inf["resources"]["requests"]["cpu"], "memory": inf["resources"]["requests"]["memory"]}
    assert pod["spec"]["nodeSelector"] == inf["nodeSelector"]
    assert pod["spec"]["tolerations"] == inf["tolerations"]
    assert pod["spec"]["priorityClassName"] == inf["priorityClass"]["name"]
    assert pod["spec"]["serviceAccountName"] == inf["serviceAccount"]["name"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["activeDeadlineSeconds"] == inf["activeDeadlineSeconds"]

    labels = pod["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "banet-ops"
    assert labels["app.kubernetes.io/component"] == "inference"
    assert (labels["banet.io/region"], labels["banet.io/date"], labels["banet.io/mode"]) == ("PI", "2024-08-01", "nrt")

    # credentials: references only
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    db = VALUES["secrets"]["database"]
    s3 = VALUES["secrets"]["s3"]
    assert refs == {
        "BANET_DATABASE_URL": {"name": db["secretName"], "key": db["key"]},
        "AWS_ACCESS_KEY_ID": {"name": s3["secretName"], "key": s3["accessKeyIdKey"]},
        "AWS_SECRET_ACCESS_KEY": {"name": s3["secretName"], "key": s3["secretAccessKeyKey"]},
    }
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert not any(re.search("TOKEN|KEY|PASSWORD|DATABASE_URL", name) for name in literal)
    assert literal["BANET_REGIONS_DIR"] == "/etc/banet/regions"
    assert {"configMapRef": {"name": VALUES["configMaps"]["settings"]}} in container["envFrom"]
    for value in secret_env.values():
        assert value not in text
    assert "supersecret" not in text

    # hardening
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == VALUES["podSecurity"]["inferenceUid"]
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    csc = container["securityContext"]
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {"/tmp", "/dev/shm", "/etc/banet/regions"} <= set(mounts)
    assert mounts["/etc/banet/regions"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["regions"]["configMap"]["name"] == VALUES["configMaps"]["regions"]


def test_kpo_operator_options(secret_env: dict[str, str]) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator, OnFinishAction
    from airflow.sdk import DAG

    spec = InferencePodSpec.from_settings()
    kwargs = kpo_kwargs(spec, "PI", "2024-08-01", "monthly")
    with DAG("banet_monthly", schedule=None, start_date=dt.datetime(2024, 1, 1)):
        op = KubernetesPodOperator(task_id="infer", **kwargs)
    assert op.reattach_on_restart is True
    assert op.get_logs is True
    assert op.on_finish_action == OnFinishAction.DELETE_SUCCEEDED_POD
    assert op.do_xcom_push is False
    assert "--snapshot" not in op.arguments
    # nothing secret in what the operator would render or log
    rendered = json.dumps({f: str(getattr(op, f)) for f in op.template_fields})
    assert "supersecret" not in rendered and "AKIASUPERSECRETID" not in rendered


def test_serialized_dag_holds_no_secret(secret_env: dict[str, str]) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    spec = InferencePodSpec.from_settings()
    with DAG("banet_infer_nrt", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
        KubernetesPodOperator(task_id="infer", **kpo_kwargs(spec, "PT", "{{ ds }}", "nrt", "{{ params.snapshot }}"))
        # the mapped form the DAGs use: static kwargs in partial(), one target per mapped task
        targets = [k8s.kpo_target_kwargs(spec, "PT", day, "nrt", "SNAP01") for day in ("2024-08-01", "2024-08-02")]
        KubernetesPodOperator.partial(task_id="infer_mapped", pool="gpu", **k8s.kpo_static_kwargs(spec)).expand_kwargs(targets)
    serialized = DagSerialization.to_dict(dag)
    assert DagSerialization.from_dict(serialized).get_task("infer_mapped") is not None  # round-trips
    text = json.dumps(serialized, default=str)
    assert spec.image in text and "{{ ds }}" in text  # the task is there...
    for value in secret_env.values():
        assert value not in text  # ...no secret value is


def test_mapped_target_labels_cannot_drop_the_base_labels(secret_env: dict[str, str]) -> None:
    """A mapped task may pass its own ``labels``; the NetworkPolicy selector labels survive."""
    spec = InferencePodSpec.from_helm_values(VALUES)
    kwargs = {**k8s.kpo_static_kwargs(spec), "labels": {"banet.io/region": "PI"}, "arguments": spec.arguments("PI", "2024-08-01", "nrt")}
    labels = _pod_dict(kwargs)["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "banet-ops"
    assert labels["app.kubernetes.io/component"] == "inference"
    assert labels["banet.io/region"] == "PI"


def test_jinja_targets_pass_through() -> None:
    spec = InferencePodSpec.from_helm_values(VALUES)
    args = spec.arguments("PI", "{{ ds }}", "nrt", "{{ ti.xcom_pull(task_ids='commit')['snapshot'] }}")
    assert args[4] == "{{ ds }}"
    assert spec.labels("PI", "{{ ds }}", "nrt")["banet.io/date"] == "{{ ds }}"


@pytest.mark.parametrize(
    ("region", "day", "mode", "snapshot", "message"),
    [
        ("P I", "2024-08-01", "nrt", None, "region name"),
        ("PI", "2024-13-01", "nrt", None, "expected a date YYYY-MM-DD"),
        ("PI", "2024-08-01", "daily", None, "mode"),
        ("PI", "2024-08-01", "nrt", "abc; rm -rf /", "snapshot id"),
    ],
)
def test_bad_targets_are_rejected(region: str, day: str, mode: str, snapshot: str | None, message: str) -> None:
    spec = InferencePodSpec.from_helm_values(VALUES)
    with pytest.raises(errors.ValidationError, match=message):
        spec.arguments(region, day, mode, snapshot)


def test_spec_rejects_literal_credentials_and_moving_images() -> None:
    base = InferencePodSpec.from_helm_values(VALUES).model_dump()
    with pytest.raises(ValueError, match="must come from a Secret"):
        InferencePodSpec(**{**base, "env": {"BANET_EARTHDATA_TOKEN": "x"}})
    with pytest.raises(ValueError, match="user:password"):
        InferencePodSpec(**{**base, "env": {"BANET_CUBE_ROOT": "https://u:p@minio/bucket"}})
    with pytest.raises(ValueError, match="'latest' is not reproducible"):
        InferencePodSpec(**{**base, "image": "ghcr.io/banet-ops/inference:latest"})
    with pytest.raises(ValueError, match="untagged"):
        InferencePodSpec(**{**base, "image": "ghcr.io/banet-ops/inference"})
    with pytest.raises(ValueError, match="request <= limit"):
        InferencePodSpec(**{**base, "resources": {**base["resources"], "memory_request": "64Gi"}})
    with pytest.raises(ValueError, match="BANET_DATABASE_URL set twice"):
        InferencePodSpec(**{**base, "secret_env": [*base["secret_env"], base["secret_env"][0]]})
    assert InferencePodSpec(**{**base, "image": "localhost:5000/banet/inference@sha256:" + "a" * 64}).image.endswith("a" * 64)


def test_bad_chart_values_give_a_config_error() -> None:
    broken = {**VALUES, "inference": {k: v for k, v in VALUES["inference"].items() if k != "image"}}
    with pytest.raises(errors.ConfigError, match="values layout"):
        InferencePodSpec.from_helm_values(broken)
    latest = {**VALUES, "inference": {**VALUES["inference"], "image": {"repository": "ghcr.io/x/y", "tag": "latest"}}}
    with pytest.raises(errors.ConfigError, match="not reproducible"):
        InferencePodSpec.from_helm_values(latest)


def test_cpu_only_spec_asks_for_no_gpu(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANET_K8S_GPU_COUNT", "0")
    spec = InferencePodSpec.from_settings(Settings())
    assert spec.device == "cpu"
    assert "nvidia.com/gpu" not in spec.limits()
    assert spec.arguments("PI", dt.date(2024, 8, 1), "nrt")[-2:] == ["--device", "cpu"]


# --- the chart and the DAGs agree --------------------------------------------------------------


def test_chart_and_dags_build_the_same_pod(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the chart's banet-config ConfigMap give the spec the chart's values describe."""
    env = settings_env_from_helm_values(VALUES)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from_settings = InferencePodSpec.from_settings(Settings(), InferencePodSettings())
    from_chart = InferencePodSpec.from_helm_values(VALUES)
    assert from_settings == from_chart

    inf = VALUES["inference"]
    assert from_settings.image == f"{inf['image']['repository']}:{inf['image']['tag']}"
    assert from_settings.limits()["nvidia.com/gpu"] == str(inf["gpuCount"])
    assert from_settings.node_selector == inf["nodeSelector"]
    assert [t.model_dump(exclude_none=True) for t in from_settings.tolerations] == inf["tolerations"]
    assert {s.secret_name for s in from_settings.secret_env} == {VALUES["secrets"]["database"]["secretName"]}


def test_chart_and_dags_agree_with_separate_s3_secret(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {**VALUES, "secrets": {**VALUES["secrets"], "s3": {"secretName": "minio-creds", "accessKeyIdKey": "id", "secretAccessKeyKey": "secret"}}}
    values["inference"] = {**VALUES["inference"], "gpuCount": 2, "nodeSelector": {"pool": "a100"}}
    values["podSecurity"] = {**VALUES["podSecurity"], "inferenceUid": 20002}
    for key, value in settings_env_from_helm_values(values).items():
        monkeypatch.setenv(key, value)
    assert InferencePodSpec.from_settings(Settings(), InferencePodSettings()) == InferencePodSpec.from_helm_values(values)


def test_chart_and_dags_agree_without_s3_credentials(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {**VALUES, "secrets": {k: v for k, v in VALUES["secrets"].items() if k != "s3"}}
    for key, value in settings_env_from_helm_values(values).items():
        monkeypatch.setenv(key, value)
    spec = InferencePodSpec.from_settings(Settings(), InferencePodSettings())
    assert spec == InferencePodSpec.from_helm_values(values)
    assert [s.env for s in spec.secret_env] == ["BANET_DATABASE_URL"]


def _settings_template_keys() -> set[str]:
    text = (CHART / "templates" / "configmap-settings.yaml").read_text()
    block = text.split('{{- define "banet.settingsData" -}}', 1)[1].split("{{- end -}}", 1)[0]
    return set(re.findall(r"^([A-Z][A-Z0-9_]+):", block, re.MULTILINE))


def test_settings_configmap_template_renders_the_same_keys() -> None:
    """templates/configmap-settings.yaml and settings_env_from_helm_values list the same variables."""
    storage = {"cubeRoot": "s3://b/c", "productsRoot": "s3://b/p", "s3EndpointUrl": "https://minio:9000", "awsRegion": "eu-west-1"}
    assert _settings_template_keys() == set(settings_env_from_helm_values({**VALUES, "storage": storage}))


def test_settings_configmap_keys_are_settings_fields() -> None:
    """Every BANET_K8S_* key the chart sets is read by Settings or InferencePodSettings (no dead key)."""
    known = {f"BANET_{name.upper()}" for name in Settings.model_fields} | {f"BANET_K8S_{name.upper()}" for name in InferencePodSettings.model_fields}
    banet_keys = {k for k in _settings_template_keys() if k.startswith("BANET_")}
    assert banet_keys <= known, banet_keys - known
