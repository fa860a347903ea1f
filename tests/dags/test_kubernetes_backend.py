"""With BANET_INFER_BACKEND=kubernetes the inference task is a mapped KubernetesPodOperator on a GPU.

The worker mounts the chart's pod templates (rendered here from the chart with this test's image).
The pod of one target is built the way Airflow builds it at run time (unmap the mapped task with
one element of its ``expand_kwargs``, then ``build_pod_request_obj`` with the Kubernetes hook
patched out), and compared with the local backend: the same ``banet-ops`` arguments except the
device.  Secret values set in the worker's environment must appear nowhere: not in the pod, not
in the operator's template fields, not in the serialized DAG.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
import yaml
from deploy.gotemplate import write_pod_templates

from banet_ops.orchestration import tasks
from dags.airflow_helpers import banet_env, parse_dags, region_file

REGION = "K8S"
DAY = "2024-08-01"
SNAPSHOT = "1CECHNKREP0F1RSTCMT0"
IMAGE = "registry.example/banet/inference:1.4.2"
MARKERS = {
    "BANET_EARTHDATA_TOKEN": "marker-edl-token-7f3a",
    "BANET_FIRMS_MAP_KEY": "marker-firms-key-91c2",
    "BANET_DATABASE_URL": "postgresql+psycopg2://banet_writer:marker-db-pw-55e1@db.example:5432/banet",
}
AWS_MARKERS = {"AWS_ACCESS_KEY_ID": "AKIAMARKERKEYID0000", "AWS_SECRET_ACCESS_KEY": "marker-aws-secret-c4d8"}
CHART = Path(__file__).resolve().parents[2] / "helm" / "banet-ops"


@pytest.fixture(scope="module")
def k8s_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("k8s")
    region_file(root / "regions", REGION, (-8.0, 40.0, -7.5, 40.5))
    values = copy.deepcopy(yaml.safe_load((CHART / "values.yaml").read_text()))
    values["inference"]["image"].update(repository=IMAGE.split(":")[0], tag=IMAGE.split(":")[1])
    templates = write_pod_templates(CHART, values, root / "pod-templates")
    env = {
        **MARKERS,
        "BANET_HOME": str(root / "home"),
        "BANET_REGIONS_DIR": str(root / "regions"),
        "BANET_CUBE_ROOT": "s3://banet-cubes/prod",
        "BANET_INFER_BACKEND": "kubernetes",
        "BANET_K8S_POD_TEMPLATES": str(templates),
    }
    with banet_env(env), pytest.MonkeyPatch.context() as mp:
        for key, value in AWS_MARKERS.items():
            mp.setenv(key, value)
        dags = parse_dags()
        targets = tasks.infer_targets(REGION, "nrt", {"cube/K8S": [SimpleNamespace(extra={"day": DAY, "snapshot": SNAPSHOT})]}, {})
        yield {"dags": dags, "targets": targets, "root": root}


def _pod(operator: Any) -> dict[str, Any]:
    from kubernetes.client import ApiClient

    with mock.patch("airflow.providers.cncf.kubernetes.operators.pod.KubernetesHook") as hook:
        hook.return_value.is_in_cluster = True
        hook.return_value.get_namespace.return_value = None
        pod = operator.build_pod_request_obj()
    return ApiClient().sanitize_for_serialization(pod)


def test_infer_task_is_a_mapped_pod_operator_in_the_gpu_pool(k8s_world: dict[str, Any]) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    task = k8s_world["dags"][f"banet_infer_nrt_{REGION}"].task_dict["infer"]
    assert isinstance(task, MappedOperator)
    assert issubclass(task.operator_class, KubernetesPodOperator)
    assert task.pool == "gpu"
    assert task.partial_kwargs["pod_template_file"] == str(k8s_world["root"] / "pod-templates" / "inference.yaml")
    assert "image" not in task.partial_kwargs  # the pod comes from the template, the DAG passes only the run
    assert task.upstream_task_ids == {"targets"}


def test_pod_of_one_target(k8s_world: dict[str, Any]) -> None:
    task = k8s_world["dags"][f"banet_infer_nrt_{REGION}"].task_dict["infer"]
    [target] = k8s_world["targets"]
    operator = task.unmap(target)
    pod = _pod(operator)
    (container,) = pod["spec"]["containers"]

    assert container["image"] == IMAGE
    assert container["command"] == ["banet-ops"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    labels = pod["metadata"]["labels"]
    assert {labels[k] for k in ("banet.io/region", "banet.io/date", "banet.io/mode")} == {REGION, DAY, "nrt"}
    assert labels["app.kubernetes.io/component"] == "inference"
    assert pod["metadata"]["name"].startswith("banet-infer-k8s-nrt")

    # identical `banet-ops infer` arguments to the local backend's, apart from --device
    local = tasks.infer_arguments(REGION, DAY, "nrt", SNAPSHOT, device="cpu")
    assert container["args"][: container["args"].index("--device")] == local[: local.index("--device")]
    assert container["args"][-2:] == ["--device", "cuda"]

    # secrets only by reference
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["BANET_DATABASE_URL"] == {"name": "banet-secrets", "key": "BANET_DATABASE_URL"}
    assert refs["AWS_SECRET_ACCESS_KEY"]["name"] == "banet-secrets"
    literal = {e["name"] for e in container["env"] if "value" in e}
    assert not literal & {*MARKERS, *AWS_MARKERS}
    assert {"configMapRef": {"name": "banet-config"}} in container["envFrom"]  # storage settings, as the workers have them


def test_no_secret_value_anywhere(k8s_world: dict[str, Any]) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = k8s_world["dags"][f"banet_infer_nrt_{REGION}"]
    [target] = k8s_world["targets"]
    operator = dag.task_dict["infer"].unmap(target)
    rendered = {name: repr(getattr(operator, name)) for name in operator.template_fields}
    texts = [json.dumps(_pod(operator)), json.dumps(target, default=str), json.dumps(rendered), json.dumps(DagSerialization.to_dict(dag), default=str)]
    for secret in [*MARKERS.values(), *AWS_MARKERS.values(), "marker-db-pw-55e1"]:
        for text in texts:
            assert secret not in text


def test_local_backend_gives_the_same_arguments(k8s_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from banet_ops.settings import get_settings

    monkeypatch.setenv("BANET_INFER_BACKEND", "local")
    monkeypatch.setenv("BANET_DEVICE", "cpu")
    get_settings.cache_clear()
    try:
        [local] = tasks.infer_targets(REGION, "nrt", None, {"day": DAY, "snapshot": SNAPSHOT})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    [remote] = k8s_world["targets"]
    strip = lambda args: [a for i, a in enumerate(args) if a != "--device" and (i == 0 or args[i - 1] != "--device")]  # noqa: E731
    assert strip(local["arguments"]) == strip(remote["arguments"])
    assert local["arguments"][-1] == "cpu" and remote["arguments"][-1] == "cuda"
    assert {k: local["labels"][k] for k in ("banet.io/region", "banet.io/date", "banet.io/mode")} == {
        k: remote["labels"][k] for k in ("banet.io/region", "banet.io/date", "banet.io/mode")
    }


def test_parsing_the_kubernetes_dags_needs_no_cluster(k8s_world: dict[str, Any]) -> None:
    assert {f"banet_infer_nrt_{REGION}", f"banet_monthly_{REGION}", f"banet_ingest_{REGION}"} <= set(k8s_world["dags"])
    monthly = k8s_world["dags"][f"banet_monthly_{REGION}"].task_dict["infer"]
    assert monthly.partial_kwargs["pod_template_file"].endswith("inference.yaml") and monthly.pool == "gpu"


def test_retrain_trains_in_a_pod_of_the_training_template(k8s_world: dict[str, Any]) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from banet_ops.errors import ConfigError
    from banet_ops.orchestration import retrain_tasks

    train = k8s_world["dags"]["banet_retrain"].task_dict["train"]
    assert issubclass(train.operator_class, KubernetesPodOperator) and train.pool == "gpu"
    assert train.partial_kwargs["pod_template_file"] == str(k8s_world["root"] / "pod-templates" / "training.yaml")
    assert train.partial_kwargs["execution_timeout"].total_seconds() == 24 * 3600
    # the chart's default values mount no work folder: the run stops with the reason, before any pod starts
    plan = {"key": "abc", "work": str(k8s_world["root"] / "w"), "params": {"steps": 1, "batch": 1, "lr": 0.1, "seed": 0, "from_scratch": False}}
    with banet_env({"BANET_HOME": str(k8s_world["root"] / "home"), "BANET_INFER_BACKEND": "kubernetes",
                    "BANET_K8S_POD_TEMPLATES": str(k8s_world["root"] / "pod-templates")}), pytest.raises(ConfigError, match="expected a volume mounted at"):
        retrain_tasks.train_target(plan, {"manifest": "m.json"})
