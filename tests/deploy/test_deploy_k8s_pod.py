"""The GPU pods: rendered once by the chart (configmap-pod-templates.yaml) and built from that
template by KubernetesPodOperator with only the run's arguments, labels and name."""

from __future__ import annotations

import copy
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
from banet_ops.orchestration.backend import Backend, check_pod_template
from banet_ops.orchestration.dag_support import POD_OPERATOR_OPTIONS
from banet_ops.orchestration.tasks import infer_arguments
from banet_ops.settings import Settings
from deploy.gotemplate import TemplateError, render_chart_file, write_pod_templates

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "banet-ops"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
SNAPSHOT = "1CECHNKREP0F1RSTCMT0"

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


def _backend(tmp_path: Path, values: dict[str, Any] | None = None, home: Path | None = None) -> Backend:
    """The Kubernetes backend of a worker that mounts the chart's pod templates rendered from ``values``."""
    folder = write_pod_templates(CHART, values or VALUES, tmp_path / "pod-templates")
    settings = Settings(infer_backend="kubernetes", k8s_pod_templates=folder, **({"home": home} if home else {}))
    return Backend.from_settings(settings)


def _target(backend: Backend, region: str = "PI", day: str = "2024-08-01", mode: str = "nrt", snapshot: str | None = SNAPSHOT) -> dict[str, Any]:
    labels = {"banet.io/region": region, "banet.io/date": day, "banet.io/mode": mode}
    return backend.target(infer_arguments(region, day, mode, snapshot, backend.device("inference")), labels, f"banet-infer-{region.lower()}-{mode}")


def _operator(backend: Backend, target: dict[str, Any], job: str = "inference") -> Any:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG

    with DAG("banet_infer_nrt", schedule=None, start_date=dt.datetime(2024, 1, 1)):
        return KubernetesPodOperator(task_id="infer", pod_template_file=str(backend.template_file(job)), **POD_OPERATOR_OPTIONS, **target)  # type: ignore[arg-type]


def _pod_dict(operator: Any) -> dict[str, Any]:
    """Build the pod KubernetesPodOperator would create, with no cluster, as Kubernetes JSON."""
    from kubernetes.client import ApiClient

    with mock.patch("airflow.providers.cncf.kubernetes.operators.pod.KubernetesHook") as hook:
        hook.return_value.is_in_cluster = True
        hook.return_value.get_namespace.return_value = None
        pod = operator.build_pod_request_obj()
    return ApiClient().sanitize_for_serialization(pod)


def test_kpo_pod_from_chart_values(secret_env: dict[str, str], tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    pod = _pod_dict(_operator(backend, _target(backend)))
    text = json.dumps(pod)

    inf = VALUES["inference"]
    assert pod["metadata"]["namespace"] == inf["namespace"]
    assert pod["metadata"]["name"].startswith("banet-infer-pi-nrt")
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "base"
    assert container["image"] == f"{inf['image']['repository']}:{inf['image']['tag']}"
    assert container["command"] == ["banet-ops"]
    assert container["args"] == [
        "infer", "--region", "PI", "--date", "2024-08-01", "--mode", "nrt",
        "--snapshot", SNAPSHOT, "--device", "cuda",
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
    assert "work" not in volumes  # the retrain work folder is the training pod's only


def test_kpo_operator_options(secret_env: dict[str, str], tmp_path: Path) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import OnFinishAction

    backend = _backend(tmp_path)
    op = _operator(backend, _target(backend, "PI", "2024-08-01", "monthly", None))
    assert op.reattach_on_restart is True
    assert op.get_logs is True
    assert op.on_finish_action == OnFinishAction.DELETE_SUCCEEDED_POD
    assert op.do_xcom_push is False
    assert "--snapshot" not in op.arguments
    # nothing secret in what the operator would render or log
    rendered = json.dumps({f: str(getattr(op, f)) for f in op.template_fields})
    assert "supersecret" not in rendered and "AKIASUPERSECRETID" not in rendered


def test_serialized_dag_holds_no_secret(secret_env: dict[str, str], tmp_path: Path) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    backend = _backend(tmp_path)
    with DAG("banet_infer_nrt", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
        # the mapped form the DAGs use: the template in partial(), one target per mapped task
        targets = [_target(backend, "PT", day, "nrt", "SNAP01") for day in ("2024-08-01", "2024-08-02")]
        KubernetesPodOperator.partial(task_id="infer_mapped", pool="gpu", pod_template_file=str(backend.template_file("inference")),
                                      **POD_OPERATOR_OPTIONS).expand_kwargs(targets)
    serialized = DagSerialization.to_dict(dag)
    assert DagSerialization.from_dict(serialized).get_task("infer_mapped") is not None  # round-trips
    text = json.dumps(serialized, default=str)
    assert "inference.yaml" in text and "2024-08-02" in text  # the task is there...
    for value in secret_env.values():
        assert value not in text  # ...no secret value is


def test_mapped_target_labels_cannot_drop_the_base_labels(secret_env: dict[str, str], tmp_path: Path) -> None:
    """A run passes its own ``labels``; the NetworkPolicy selector labels of the template survive."""
    backend = _backend(tmp_path)
    target = backend.target(infer_arguments("PI", "2024-08-01", "nrt", None, "cuda"), {"banet.io/region": "PI"}, "banet-infer-pi-nrt")
    labels = _pod_dict(_operator(backend, target))["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "banet-ops"
    assert labels["app.kubernetes.io/component"] == "inference"
    assert labels["banet.io/region"] == "PI"


def test_training_pod_mounts_the_work_folder(secret_env: dict[str, str], tmp_path: Path) -> None:
    values = copy.deepcopy(VALUES)
    values["training"].update(workPvc="retrain-work", workPath=str(tmp_path / "home" / "retrain"))
    backend = _backend(tmp_path, values, home=tmp_path / "home")
    backend.require_mount("training", tmp_path / "home" / "retrain")  # what train_target checks
    target = backend.target(["train", "--manifest", "m.json", "--device", backend.device("training")], {"banet.io/job": "train"}, "banet-train")
    pod = _pod_dict(_operator(backend, target, "training"))
    (container,) = pod["spec"]["containers"]
    assert container["args"][-2:] == ["--device", "cuda"]
    assert {"name": "work", "persistentVolumeClaim": {"claimName": "retrain-work"}} in pod["spec"]["volumes"]
    assert {"name": "work", "mountPath": str(tmp_path / "home" / "retrain")} in container["volumeMounts"]
    assert pod["spec"]["activeDeadlineSeconds"] == values["training"]["activeDeadlineSeconds"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "inference"  # the same NetworkPolicy
    assert pod["metadata"]["labels"]["banet.io/job"] == "train"


def test_training_without_a_work_volume_is_a_config_error(tmp_path: Path) -> None:
    backend = _backend(tmp_path)  # default values: training.workPvc empty
    with pytest.raises(errors.ConfigError, match="expected a volume mounted at"):
        backend.require_mount("training", tmp_path / "home" / "retrain")


def test_template_checks_reject_literal_credentials_and_moving_images(tmp_path: Path) -> None:
    base = _backend(tmp_path).pod_template("inference")

    def with_container(**changes: Any) -> dict[str, Any]:
        pod = copy.deepcopy(base)
        pod["spec"]["containers"][0].update(changes)
        return pod

    env = base["spec"]["containers"][0]["env"]
    with pytest.raises(errors.ConfigError, match="literal credential"):
        check_pod_template(with_container(env=[*env, {"name": "BANET_EARTHDATA_TOKEN", "value": "x"}]), "t.yaml")
    with pytest.raises(errors.ConfigError, match="literal credential"):
        check_pod_template(with_container(env=[{"name": "BANET_CUBE_ROOT", "value": "https://u:p@minio/bucket"}]), "t.yaml")
    with pytest.raises(errors.ConfigError, match="not 'latest'"):
        check_pod_template(with_container(image="ghcr.io/banet-ops/inference:latest"), "t.yaml")
    with pytest.raises(errors.ConfigError, match="pinned image"):
        check_pod_template(with_container(image="ghcr.io/banet-ops/inference"), "t.yaml")
    with pytest.raises(errors.ConfigError, match="container named 'base'"):
        check_pod_template(with_container(name="main"), "t.yaml")
    with pytest.raises(errors.ConfigError, match="expected a Pod manifest"):
        check_pod_template(["not", "a", "pod"], "t.yaml")
    assert check_pod_template(with_container(image="localhost:5000/banet/inference@sha256:" + "a" * 64), "t.yaml")


def test_missing_or_broken_templates_give_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="BANET_K8S_POD_TEMPLATES"):
        Backend.from_settings(Settings(infer_backend="kubernetes")).device("inference")
    backend = Backend.from_settings(Settings(infer_backend="kubernetes", k8s_pod_templates=tmp_path))
    with pytest.raises(errors.ConfigError, match=r"inference\.yaml: expected a readable YAML Pod"):
        backend.device("inference")
    (tmp_path / "inference.yaml").write_text("kind: Pod\nspec: {containers: [{name: base, image: 'a/b:1'}\n")
    with pytest.raises(errors.ConfigError, match="expected a readable YAML Pod"):
        backend.device("inference")


def test_bad_chart_values_fail_the_render() -> None:
    broken = {**VALUES, "inference": {k: v for k, v in VALUES["inference"].items() if k != "image"}}
    with pytest.raises(TemplateError, match="nil pointer"):
        render_chart_file(CHART, "configmap-pod-templates.yaml", broken)


def test_device_follows_the_templates_gpu_limit(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    assert backend.device("inference") == "cuda"
    pod = backend.pod_template("inference")
    del pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    backend.template_file("inference").write_text(yaml.safe_dump(pod))
    assert backend.device("inference") == "cpu"
    assert Backend.from_settings(Settings(infer_backend="local", device="cpu")).device("inference") == "cpu"


# --- the chart and the workers agree -----------------------------------------------------------


def test_workers_find_the_pod_templates_where_the_chart_mounts_them() -> None:
    (settings_cm, *_) = render_chart_file(CHART, "configmap-settings.yaml", VALUES)
    (templates_cm,) = render_chart_file(CHART, "configmap-pod-templates.yaml", VALUES)
    folder = settings_cm["data"]["BANET_K8S_POD_TEMPLATES"]
    af = VALUES["airflow"]
    volume = next(v for v in af["volumes"] if v["configMap"]["name"] == templates_cm["metadata"]["name"])
    assert {"name": volume["name"], "mountPath": folder, "readOnly": True} in af["volumeMounts"]
    assert set(templates_cm["data"]) == {"inference.yaml", "training.yaml"}
    assert Settings(**{"k8s_pod_templates": folder}).k8s_pod_templates == Path(folder)


def test_settings_configmap_keys_are_settings_fields() -> None:
    """Every BANET_* key the chart sets is read by Settings (no dead key)."""
    (settings_cm, *_) = render_chart_file(CHART, "configmap-settings.yaml", VALUES)
    known = {f"BANET_{name.upper()}" for name in Settings.model_fields}
    banet_keys = {k for k in settings_cm["data"] if k.startswith("BANET_")}
    assert banet_keys <= known, banet_keys - known
    assert str(VALUES["inference"]["startupTimeoutSeconds"]) == settings_cm["data"]["BANET_K8S_STARTUP_TIMEOUT_S"]


def test_every_pod_gets_the_s3_endpoint_from_the_settings_configmap() -> None:
    """An S3-compatible endpoint (MinIO, Ceph) reaches the inference and training pods: both are built
    from the chart's templates, which load the settings ConfigMap that carries AWS_ENDPOINT_URL."""
    values = {**VALUES, "storage": {**VALUES["storage"], "s3EndpointUrl": "https://minio.storage.svc:9000"}}
    (settings_cm, *_) = render_chart_file(CHART, "configmap-settings.yaml", values)
    assert settings_cm["data"]["AWS_ENDPOINT_URL"] == "https://minio.storage.svc:9000"
    (templates_cm,) = render_chart_file(CHART, "configmap-pod-templates.yaml", values)
    for job in ("inference.yaml", "training.yaml"):
        (container,) = yaml.safe_load(templates_cm["data"][job])["spec"]["containers"]
        assert {"configMapRef": {"name": settings_cm["metadata"]["name"]}} in container["envFrom"], job
