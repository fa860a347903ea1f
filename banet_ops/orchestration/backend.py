"""Where the DAGs run ``banet-ops infer`` and ``banet-ops train``: the one backend choice.

:class:`Backend` is built from the settings once per use.  ``local`` runs the command in a
subprocess of the Airflow worker; ``kubernetes`` runs it in a GPU pod that
``KubernetesPodOperator`` builds from a pod template the Helm chart renders
(``templates/configmap-pod-templates.yaml``, mounted at ``BANET_K8S_POD_TEMPLATES``).  The
DAG passes only the run's ``arguments``, ``labels`` and ``name``; everything else about the pod
is in the template.  :func:`check_pod_template` keeps the checks Kubernetes itself does not do
(a pinned image, no literal credential) and is run on every template before a target is made.

Nothing here imports Airflow; :func:`banet_ops.orchestration.dag_support.pod_task` turns a
backend into the Airflow task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from banet_ops.errors import ConfigError
from banet_ops.settings import Settings, get_settings

Job = Literal["inference", "training"]
BASE_CONTAINER = "base"  # KubernetesPodOperator reads the logs and exit status of this container
GPU_RESOURCE = "nvidia.com/gpu"

_CREDENTIAL_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|MAP_KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|DATABASE_URL", re.IGNORECASE)
_USERINFO_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
_PINNED_IMAGE = re.compile(r"^[^@\s]+(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@sha256:[a-f0-9]{64})(@sha256:[a-f0-9]{64})?$")


def check_pod_template(pod: Any, where: str) -> dict[str, Any]:
    """``pod`` after the checks Kubernetes does not do; :class:`ConfigError` naming ``where`` otherwise.

    A Pod with a container named ``base`` whose image is pinned (a version tag other than
    ``latest``, or a digest), and whose literal environment holds no credential: credentials
    come from Secrets (``secretKeyRef``), never as values.
    """
    if not isinstance(pod, dict) or pod.get("kind") != "Pod":
        raise ConfigError(f"pod template {where}: expected a Pod manifest, found {type(pod).__name__} {str(pod)[:60]!r}")
    containers = (pod.get("spec") or {}).get("containers") or []
    base = next((c for c in containers if isinstance(c, dict) and c.get("name") == BASE_CONTAINER), None)
    if base is None:
        raise ConfigError(f"pod template {where}: expected a container named {BASE_CONTAINER!r}, found {[c.get('name') for c in containers]}")
    image = str(base.get("image") or "")
    match = _PINNED_IMAGE.fullmatch(image)
    if match is None or match.group("tag") == "latest":
        raise ConfigError(f"pod template {where}: expected a pinned image (a version tag or @sha256 digest, not 'latest'), found {image!r}")
    for env in base.get("env") or []:
        name, value = str(env.get("name", "")), env.get("value")
        if value is not None and (_CREDENTIAL_NAME.search(name) or _USERINFO_URL.match(str(value))):
            raise ConfigError(f"pod template {where}: env {name} holds a literal credential; take it from a Secret (valueFrom.secretKeyRef)")
    return pod


def base_container(pod: dict[str, Any]) -> dict[str, Any]:
    """The ``base`` container of a checked pod template."""
    return next(c for c in pod["spec"]["containers"] if c.get("name") == BASE_CONTAINER)


@dataclass(frozen=True)
class Backend:
    """The configured backend: ``local`` (a subprocess on the worker) or ``kubernetes`` (a pod per run)."""

    kind: Literal["local", "kubernetes"]
    templates: Path | None
    local_device: str
    startup_timeout_s: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Backend:
        settings = settings or get_settings()
        return cls(settings.infer_backend, settings.k8s_pod_templates, settings.device, settings.k8s_startup_timeout_s)

    @property
    def on_kubernetes(self) -> bool:
        return self.kind == "kubernetes"

    def template_file(self, job: Job) -> Path:
        """The pod template of ``job`` (``<BANET_K8S_POD_TEMPLATES>/<job>.yaml``)."""
        if self.templates is None:
            raise ConfigError(
                "BANET_INFER_BACKEND=kubernetes: expected BANET_K8S_POD_TEMPLATES (the folder of inference.yaml and training.yaml), found none",
                hint="install the Helm chart (it mounts them at /etc/banet/pod-templates) or render its configmap-pod-templates.yaml",
            )
        return self.templates / f"{job}.yaml"

    def pod_template(self, job: Job) -> dict[str, Any]:
        """The checked pod template of ``job``."""
        path = self.template_file(job)
        try:
            pod = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"pod template {path}: expected a readable YAML Pod, found {type(exc).__name__}: {exc}") from None
        return check_pod_template(pod, str(path))

    def device(self, job: Job) -> str:
        """``--device`` of ``job``: the worker's setting locally, ``cuda`` when the pod template asks for a GPU."""
        if not self.on_kubernetes:
            return self.local_device
        limits = (base_container(self.pod_template(job)).get("resources") or {}).get("limits") or {}
        return "cuda" if str(limits.get(GPU_RESOURCE, "0")) not in ("", "0") else "cpu"

    def require_mount(self, job: Job, path: Path) -> None:
        """:class:`ConfigError` unless ``job``'s pod mounts a volume at ``path`` (the worker's files, same paths)."""
        if not self.on_kubernetes:
            return
        mounts = {str(m.get("mountPath", "")).rstrip("/") for m in base_container(self.pod_template(job)).get("volumeMounts") or []}
        if str(path).rstrip("/") not in mounts:
            raise ConfigError(
                f"pod template {self.template_file(job)}: expected a volume mounted at {path} (shared with the workers), found {sorted(mounts)}",
                hint="set the chart's training.workPvc and training.workPath (= the workers' $BANET_HOME/retrain)",
            )

    def target(self, arguments: list[str], labels: dict[str, str], name: str) -> dict[str, Any]:
        """One run: ``banet-ops`` arguments, pod labels (added to the template's) and pod name prefix."""
        return {"arguments": list(arguments), "labels": dict(labels), "name": name}
