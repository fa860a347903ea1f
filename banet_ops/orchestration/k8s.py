"""The Kubernetes pod that runs ``banet-ops infer`` on a GPU, shared by the DAGs and the Helm chart.

:class:`InferencePodSpec` is built either from :class:`~banet_ops.settings.Settings` (what an
Airflow worker sees: the chart's ``banet-config`` ConfigMap exports the ``BANET_K8S_*`` variables)
or straight from the chart's values (:meth:`InferencePodSpec.from_helm_values`), so a test can prove
that the chart and the DAGs agree.  :func:`kpo_kwargs` turns a spec and one target (region, day,
mode, snapshot) into ``KubernetesPodOperator`` constructor arguments.

Secrets only ever travel as references (``secretKeyRef`` / ``envFrom.secretRef``): the spec holds
Secret *names and keys*, never values, and rejects literal environment variables whose name looks
like a credential.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from banet_ops import errors
from banet_ops.settings import Settings, get_settings

APP_NAME = "banet-ops"
COMPONENT = "inference"
CONTAINER_NAME = "base"  # KubernetesPodOperator reads logs and exit status of the container named "base"
INFERENCE_UID = 10001  # the non-root user of docker/inference.Dockerfile
REGIONS_MOUNT = "/etc/banet/regions"
SCRATCH_MOUNT = "/tmp"  # noqa: S108 - an emptyDir volume, the only writable path of the pod
GPU_RESOURCE = "nvidia.com/gpu"

# Environment variables that hold credentials: only ever set from a Secret (secretKeyRef).
# The Secret keys default to the variable names, so `kubectl create secret generic NAME
# --from-env-file=FILE` makes a Secret that both the chart and the DAGs can use unchanged.
DATABASE_URL_ENV = "BANET_DATABASE_URL"
S3_ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
S3_SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name, not a value

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_KEY_NAME = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a pattern for key names
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
_IMAGE_RE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_CREDENTIAL_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|MAP_KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|DATABASE_URL", re.IGNORECASE)
_USERINFO_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_JINJA = re.compile(r"^\{\{.*\}\}$", re.DOTALL)
_SNAPSHOT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REGION = re.compile(r"^[A-Za-z0-9_]{1,32}$")

# chart `storage.*` value -> environment variable (non-secret, via the banet-config ConfigMap)
STORAGE_ENV = {
    "cubeRoot": "BANET_CUBE_ROOT",
    "productsRoot": "BANET_PRODUCTS_ROOT",
    "s3EndpointUrl": "AWS_ENDPOINT_URL",
    "awsRegion": "AWS_DEFAULT_REGION",
}

_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIX = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def parse_quantity(quantity: str) -> float:
    """A Kubernetes quantity (``500m``, ``4``, ``24Gi``) as a number of base units."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", quantity)
    if not match or (match.group(2) not in _BINARY_SUFFIX and match.group(2) not in _DECIMAL_SUFFIX):
        raise errors.ValidationError(f"expected a Kubernetes quantity such as 500m, 4 or 24Gi, found {quantity!r}")
    number, suffix = float(match.group(1)), match.group(2)
    return number * (_BINARY_SUFFIX.get(suffix) or _DECIMAL_SUFFIX[suffix])


def _image_ok(image: str) -> str:
    match = _IMAGE_RE.fullmatch(image)
    if match is None:
        raise ValueError(f"expected an image reference REGISTRY/REPOSITORY:TAG, found {image!r}")
    if not match.group("tag") and not match.group("digest"):
        raise ValueError(f"expected a pinned image (a version tag or @sha256 digest), found the untagged {image!r}")
    if match.group("tag") == "latest" and not match.group("digest"):
        raise ValueError(f"expected a pinned image tag, found {image!r}: 'latest' is not reproducible; use a version tag")
    return image


class SecretEnv(BaseModel):
    """One environment variable taken from a key of a Kubernetes Secret (``secretKeyRef``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str = Field(pattern=ENV_NAME)
    secret_name: str = Field(pattern=DNS1123_SUBDOMAIN, max_length=253)
    key: str = Field(pattern=SECRET_KEY_NAME, max_length=253)


class Toleration(BaseModel):
    """A pod toleration (the subset the GPU node pools need)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError(f"toleration {self.key!r}: operator Exists takes no value, found {self.value!r}")
        if self.operator == "Equal" and not self.key:
            raise ValueError("toleration: operator Equal needs a key")
        return self


class Resources(BaseModel):
    """CPU and memory requests and limits of the inference container (the GPU limit is separate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_request: str = Field("4", pattern=QUANTITY)
    memory_request: str = Field("24Gi", pattern=QUANTITY)
    cpu_limit: str = Field("8", pattern=QUANTITY)
    memory_limit: str = Field("32Gi", pattern=QUANTITY)

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        for what, request, limit in (("cpu", self.cpu_request, self.cpu_limit), ("memory", self.memory_request, self.memory_limit)):
            if parse_quantity(request) > parse_quantity(limit):
                raise ValueError(f"{what}: expected request <= limit, found request {request} > limit {limit}")
        return self


class InferencePodSettings(BaseSettings):
    """Pod details beyond :class:`Settings`' ``k8s_*`` fields, from ``BANET_K8S_*`` variables.

    The chart's ``banet-config`` ConfigMap sets all of them for the Airflow workers.
    """

    model_config = SettingsConfigDict(env_prefix="BANET_K8S_", extra="ignore", frozen=True)

    cpu_request: str = Field("4", pattern=QUANTITY, description="CPU request of an inference pod.")
    memory_request: str = Field("24Gi", pattern=QUANTITY, description="Memory request of an inference pod.")
    cpu_limit: str = Field("8", pattern=QUANTITY, description="CPU limit of an inference pod.")
    memory_limit: str = Field("32Gi", pattern=QUANTITY, description="Memory limit of an inference pod.")
    priority_class: str | None = Field("banet-gpu-inference", description="PriorityClass of inference pods (created by the chart).")
    service_account: str | None = Field("banet-inference", description="ServiceAccount of inference pods (no API permissions).")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field("IfNotPresent", description="Image pull policy.")
    image_pull_secrets: Annotated[tuple[str, ...], NoDecode] = Field((), description="Secrets for a private registry (`,`-separated in env).")
    config_map: str | None = Field(None, description="ConfigMap exported as env into the pod (non-secret BANET_* settings).")
    regions_config_map: str | None = Field(None, description=f"ConfigMap of `R_{{name}}.json` files, mounted at {REGIONS_MOUNT}.")
    database_url_key: str = Field(DATABASE_URL_ENV, pattern=SECRET_KEY_NAME, description="Key of the database URL in the k8s_secret_name Secret.")
    s3_credentials: bool = Field(True, description="Give the pod AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from a Secret (false: workload identity).")
    s3_secret_name: str | None = Field(None, description="Secret with the S3 credentials. Unset: k8s_secret_name.")
    s3_access_key_id_key: str = Field(S3_ACCESS_KEY_ENV, pattern=SECRET_KEY_NAME, description="Key of the S3 access key id in that Secret.")
    s3_secret_access_key_key: str = Field(S3_SECRET_KEY_ENV, pattern=SECRET_KEY_NAME, description="Key of the S3 secret access key in that Secret.")
    run_as_user: int = Field(INFERENCE_UID, ge=1, description="Non-root uid of the inference container (the image's user).")
    active_deadline_s: int | None = Field(10800, ge=60, description="Kill an inference pod running longer than this, seconds.")
    startup_timeout_s: int = Field(900, ge=30, description="How long a pod may stay Pending (GPU node scale-up), seconds.")

    @field_validator("image_pull_secrets", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("priority_class", "service_account", "config_map", "regions_config_map", "active_deadline_s", "s3_secret_name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class InferencePodSpec(BaseModel):
    """Everything about the inference pod that does not depend on the target (region, day, mode)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(pattern=DNS1123_LABEL)
    image: str
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    gpu_count: int = Field(1, ge=0, le=16)
    resources: Resources = Resources()
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    priority_class_name: str | None = Field(None, pattern=DNS1123_SUBDOMAIN)
    service_account_name: str | None = Field(None, pattern=DNS1123_SUBDOMAIN)
    secret_env: tuple[SecretEnv, ...] = ()
    env_from_secrets: tuple[str, ...] = ()
    config_map: str | None = Field(None, pattern=DNS1123_SUBDOMAIN)
    regions_config_map: str | None = Field(None, pattern=DNS1123_SUBDOMAIN)
    env: dict[str, str] = Field(default_factory=dict)
    run_as_user: int = Field(INFERENCE_UID, ge=1)
    active_deadline_seconds: int | None = Field(10800, ge=60)
    startup_timeout_seconds: int = Field(900, ge=30)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return _image_ok(value)

    @field_validator("image_pull_secrets", "env_from_secrets")
    @classmethod
    def _secret_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(DNS1123_SUBDOMAIN, name):
                raise ValueError(f"expected a Secret name (DNS-1123: lowercase letters, digits, '-', '.'), found {name!r}")
        return value

    @field_validator("node_selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(val):
                raise ValueError(f"expected a valid node label key=value, found {key!r}={val!r}")
        return value

    @field_validator("env")
    @classmethod
    def _no_literal_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, val in value.items():
            if not re.fullmatch(ENV_NAME, name):
                raise ValueError(f"expected an environment variable name, found {name!r}")
            if _CREDENTIAL_NAME.search(name):
                raise ValueError(f"env {name}: a credential must come from a Secret (secret_env), never a literal value")
            if _USERINFO_URL.match(val):
                raise ValueError(f"env {name}: the value embeds user:password in a URL; move it to a Secret")
        return value

    @model_validator(mode="after")
    def _unique_env(self) -> InferencePodSpec:
        names = [s.env for s in self.secret_env]
        dupes = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(self.env)))
        if dupes:
            raise ValueError(f"expected each environment variable once, found {', '.join(dupes)} set twice")
        return self

    # constructors ---------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings | None = None, pod: InferencePodSettings | None = None) -> InferencePodSpec:
        """The spec an Airflow worker uses: :class:`Settings` ``k8s_*`` plus ``BANET_K8S_*`` pod details."""
        settings = settings or get_settings()
        pod = pod or InferencePodSettings()
        secret = settings.k8s_secret_name
        secret_env = [SecretEnv(env=DATABASE_URL_ENV, secret_name=secret, key=pod.database_url_key)]
        if pod.s3_credentials:
            s3_secret = pod.s3_secret_name or secret
            secret_env += [
                SecretEnv(env=S3_ACCESS_KEY_ENV, secret_name=s3_secret, key=pod.s3_access_key_id_key),
                SecretEnv(env=S3_SECRET_KEY_ENV, secret_name=s3_secret, key=pod.s3_secret_access_key_key),
            ]
        env: dict[str, str] = {}
        if pod.config_map is None:
            # Outside the chart the pod gets the storage locations the worker itself uses.
            if settings.cube_root:
                env["BANET_CUBE_ROOT"] = settings.cube_root
            if settings.products_root:
                env["BANET_PRODUCTS_ROOT"] = settings.products_root
        return _build(
            cls,
            namespace=settings.k8s_namespace,
            image=settings.k8s_image,
            image_pull_policy=pod.image_pull_policy,
            image_pull_secrets=pod.image_pull_secrets,
            gpu_count=settings.k8s_gpu_count,
            resources=Resources(cpu_request=pod.cpu_request, memory_request=pod.memory_request, cpu_limit=pod.cpu_limit, memory_limit=pod.memory_limit),
            node_selector=dict(settings.k8s_node_selector),
            tolerations=tuple(Toleration(**t) for t in settings.k8s_tolerations),
            priority_class_name=pod.priority_class,
            service_account_name=pod.service_account,
            secret_env=tuple(secret_env),
            config_map=pod.config_map,
            regions_config_map=pod.regions_config_map,
            env=env,
            run_as_user=pod.run_as_user,
            active_deadline_seconds=pod.active_deadline_s,
            startup_timeout_seconds=pod.startup_timeout_s,
        )

    @classmethod
    def from_helm_values(cls, values: Mapping[str, Any]) -> InferencePodSpec:
        """The spec the chart's values describe (``helm/banet-ops/values.yaml`` layout)."""
        try:
            inf = values["inference"]
            image = inf["image"]
            secrets = values["secrets"]
            resources = inf["resources"]
            secret_env = [SecretEnv(env=DATABASE_URL_ENV, secret_name=secrets["database"]["secretName"], key=secrets["database"]["key"])]
            s3 = secrets.get("s3")
            if s3:
                secret_env += [
                    SecretEnv(env=S3_ACCESS_KEY_ENV, secret_name=s3["secretName"], key=s3["accessKeyIdKey"]),
                    SecretEnv(env=S3_SECRET_KEY_ENV, secret_name=s3["secretName"], key=s3["secretAccessKeyKey"]),
                ]
            priority = inf.get("priorityClass") or {}
            config_maps = values.get("configMaps") or {}
            fields: dict[str, Any] = {
                "namespace": inf["namespace"],
                "image": image_reference(image),
                "image_pull_policy": image.get("pullPolicy", "IfNotPresent"),
                "image_pull_secrets": tuple(inf.get("imagePullSecrets") or ()),
                "gpu_count": inf["gpuCount"],
                "resources": Resources(
                    cpu_request=str(resources["requests"]["cpu"]),
                    memory_request=str(resources["requests"]["memory"]),
                    cpu_limit=str(resources["limits"]["cpu"]),
                    memory_limit=str(resources["limits"]["memory"]),
                ),
                "node_selector": dict(inf.get("nodeSelector") or {}),
                "tolerations": tuple(Toleration(**t) for t in inf.get("tolerations") or ()),
                "priority_class_name": priority.get("name"),
                "service_account_name": (inf.get("serviceAccount") or {}).get("name"),
                "secret_env": tuple(secret_env),
                "config_map": config_maps.get("settings"),
                "regions_config_map": config_maps.get("regions"),
                "run_as_user": (values.get("podSecurity") or {}).get("inferenceUid", INFERENCE_UID),
                "active_deadline_seconds": inf.get("activeDeadlineSeconds"),
                "startup_timeout_seconds": inf.get("startupTimeoutSeconds", 900),
            }
        except (KeyError, TypeError) as exc:
            raise errors.ConfigError(
                f"expected the chart's values layout (inference.*, secrets.*), found a missing or malformed entry: {exc}",
                hint="validate the values against helm/banet-ops/values.schema.json",
            ) from None
        return _build(cls, **fields)

    # pieces ---------------------------------------------------------------------------------
    @property
    def device(self) -> Literal["cuda", "cpu"]:
        """``cuda`` when the pod asks for a GPU."""
        return "cuda" if self.gpu_count > 0 else "cpu"

    @property
    def base_labels(self) -> dict[str, str]:
        """Labels every inference pod carries (the NetworkPolicy selects on them)."""
        return {
            "app.kubernetes.io/name": APP_NAME,
            "app.kubernetes.io/component": COMPONENT,
            "app.kubernetes.io/managed-by": "airflow",
        }

    def command(self) -> list[str]:
        """The container command (the image's entrypoint, stated explicitly)."""
        return ["banet-ops"]

    def arguments(self, region: str, day: dt.date | str, mode: str, snapshot: str | None = None) -> list[str]:
        """``infer --region R --date D --mode M [--snapshot S] --device cuda`` for one target."""
        target = _target(region, day, mode, snapshot)
        args = ["infer", "--region", target.region, "--date", target.day_str, "--mode", target.mode]
        if target.snapshot:
            args += ["--snapshot", target.snapshot]
        return [*args, "--device", self.device]

    def labels(self, region: str, day: dt.date | str, mode: str) -> dict[str, str]:
        """Deterministic labels of the pod for one target."""
        target = _target(region, day, mode)
        return {**self.base_labels, "banet.io/region": target.region, "banet.io/date": target.day_str, "banet.io/mode": target.mode}

    def pod_name(self, region: str, mode: str) -> str:
        """Pod name prefix (the operator appends a random suffix)."""
        target = _target(region, dt.date(2000, 1, 1), mode)  # the name carries no date
        return f"banet-infer-{target.region.lower().replace('_', '-')}-{target.mode}"

    def limits(self) -> dict[str, str]:
        limits = {"cpu": self.resources.cpu_limit, "memory": self.resources.memory_limit}
        if self.gpu_count:
            limits[GPU_RESOURCE] = str(self.gpu_count)
        return limits

    def requests(self) -> dict[str, str]:
        return {"cpu": self.resources.cpu_request, "memory": self.resources.memory_request}

    def fixed_env(self) -> dict[str, str]:
        """Non-secret variables every inference pod gets: writable paths under the scratch volume."""
        env = {
            **self.env,
            "BANET_HOME": f"{SCRATCH_MOUNT}/banet",
            "BANET_DEVICE": self.device,
            "HOME": f"{SCRATCH_MOUNT}/banet",
            "XDG_CACHE_HOME": f"{SCRATCH_MOUNT}/cache",
            "MPLCONFIGDIR": f"{SCRATCH_MOUNT}/matplotlib",
            "PYTHONUNBUFFERED": "1",
        }
        if self.regions_config_map:
            env["BANET_REGIONS_DIR"] = REGIONS_MOUNT
        return env


class InferTarget(BaseModel):
    """One inference target, validated before it reaches a pod spec (Jinja templates are allowed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    day: dt.date | str
    mode: Literal["nrt", "monthly"]
    snapshot: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.fullmatch(value):
            raise ValueError(f"expected a region name of letters, digits and '_' (at most 32), found {value!r}")
        return value

    @field_validator("day")
    @classmethod
    def _day(cls, value: dt.date | str) -> dt.date | str:
        if isinstance(value, str) and not _JINJA.fullmatch(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD or an Airflow template '{{{{ ... }}}}', found {value!r}") from None
        return value

    @field_validator("snapshot")
    @classmethod
    def _snapshot(cls, value: str | None) -> str | None:
        if value is not None and not (_SNAPSHOT.fullmatch(value) or _JINJA.fullmatch(value)):
            raise ValueError(f"expected a cube snapshot id (letters, digits, '-', '_') or a template, found {value!r}")
        return value

    @property
    def day_str(self) -> str:
        return self.day.isoformat() if isinstance(self.day, dt.date) else self.day


def _target(region: str, day: dt.date | str, mode: str, snapshot: str | None = None) -> InferTarget:
    try:
        return InferTarget(region=region, day=day, mode=mode, snapshot=snapshot)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise errors.ValidationError(f"invalid inference target: {problems}") from None


def _build(cls: type[InferencePodSpec], **fields: Any) -> InferencePodSpec:
    try:
        return cls(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors())
        raise errors.ConfigError(f"invalid inference pod spec: {problems}", hint="fix the BANET_K8S_* settings or the chart values") from None


def image_reference(image: Mapping[str, Any]) -> str:
    """``repository:tag`` (or ``repository@digest``) from a chart ``{repository, tag, digest}`` block."""
    ref = str(image["repository"])
    if image.get("tag"):
        ref += f":{image['tag']}"
    if image.get("digest"):
        ref += f"@{image['digest']}"
    return ref


def settings_env_from_helm_values(values: Mapping[str, Any]) -> dict[str, str]:
    """The ``BANET_*`` variables the chart's ``banet-config`` ConfigMap gives Airflow pods.

    ``templates/configmap-settings.yaml`` renders exactly these keys; an Airflow outside the chart
    can export them to launch the same pods.
    """
    inf = values["inference"]
    res = inf["resources"]
    config_maps = values.get("configMaps") or {}
    storage = values.get("storage") or {}
    secrets = values["secrets"]
    s3 = secrets.get("s3")
    env = {
        "BANET_INFER_BACKEND": "kubernetes",
        "BANET_REGIONS_DIR": REGIONS_MOUNT,
        "BANET_K8S_NAMESPACE": str(inf["namespace"]),
        "BANET_K8S_IMAGE": image_reference(inf["image"]),
        "BANET_K8S_IMAGE_PULL_POLICY": str(inf["image"].get("pullPolicy", "IfNotPresent")),
        "BANET_K8S_IMAGE_PULL_SECRETS": ",".join(inf.get("imagePullSecrets") or ()),
        "BANET_K8S_GPU_COUNT": str(inf["gpuCount"]),
        "BANET_K8S_NODE_SELECTOR": json.dumps(inf.get("nodeSelector") or {}, sort_keys=True),
        "BANET_K8S_TOLERATIONS": json.dumps(inf.get("tolerations") or []),
        "BANET_K8S_SECRET_NAME": str(secrets["database"]["secretName"]),
        "BANET_K8S_CPU_REQUEST": str(res["requests"]["cpu"]),
        "BANET_K8S_MEMORY_REQUEST": str(res["requests"]["memory"]),
        "BANET_K8S_CPU_LIMIT": str(res["limits"]["cpu"]),
        "BANET_K8S_MEMORY_LIMIT": str(res["limits"]["memory"]),
        "BANET_K8S_PRIORITY_CLASS": str((inf.get("priorityClass") or {}).get("name") or ""),
        "BANET_K8S_SERVICE_ACCOUNT": str((inf.get("serviceAccount") or {}).get("name") or ""),
        "BANET_K8S_CONFIG_MAP": str(config_maps.get("settings") or ""),
        "BANET_K8S_REGIONS_CONFIG_MAP": str(config_maps.get("regions") or ""),
        "BANET_K8S_DATABASE_URL_KEY": str(secrets["database"]["key"]),
        "BANET_K8S_S3_CREDENTIALS": "true" if s3 else "false",
        "BANET_K8S_S3_SECRET_NAME": str(s3["secretName"]) if s3 else "",
        "BANET_K8S_S3_ACCESS_KEY_ID_KEY": str(s3["accessKeyIdKey"]) if s3 else S3_ACCESS_KEY_ENV,
        "BANET_K8S_S3_SECRET_ACCESS_KEY_KEY": str(s3["secretAccessKeyKey"]) if s3 else S3_SECRET_KEY_ENV,
        "BANET_K8S_RUN_AS_USER": str((values.get("podSecurity") or {}).get("inferenceUid", INFERENCE_UID)),
        "BANET_K8S_ACTIVE_DEADLINE_S": str(inf.get("activeDeadlineSeconds") or ""),
        "BANET_K8S_STARTUP_TIMEOUT_S": str(inf.get("startupTimeoutSeconds", 900)),
    }
    for key, name in STORAGE_ENV.items():
        if storage.get(key):
            env[name] = str(storage[key])
    return env


# --- KubernetesPodOperator arguments ------------------------------------------------------------


def kpo_static_kwargs(spec: InferencePodSpec) -> dict[str, Any]:
    """Target-independent ``KubernetesPodOperator`` kwargs (for ``.partial()`` of a mapped task).

    The base labels are also set on ``full_pod_spec``'s metadata: the operator merges them with
    whatever ``labels`` a mapped target passes, so the NetworkPolicy always selects the pod.
    """
    import inspect

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    volumes = [
        k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="20Gi")),
        # PyTorch shares tensors between processes through /dev/shm; the default 64 MiB is too small.
        k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit="8Gi")),
    ]
    mounts = [
        k8s.V1VolumeMount(name="scratch", mount_path=SCRATCH_MOUNT),
        k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm"),  # noqa: S108 - a volume, not a temp file
    ]
    if spec.regions_config_map:
        volumes.append(k8s.V1Volume(name="regions", config_map=k8s.V1ConfigMapVolumeSource(name=spec.regions_config_map)))
        mounts.append(k8s.V1VolumeMount(name="regions", mount_path=REGIONS_MOUNT, read_only=True))
    env_from = [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=name)) for name in spec.env_from_secrets]
    if spec.config_map:
        env_from.insert(0, k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=spec.config_map)))
    kwargs: dict[str, Any] = {
        "namespace": spec.namespace,
        "image": spec.image,
        "image_pull_policy": spec.image_pull_policy,
        "image_pull_secrets": [k8s.V1LocalObjectReference(name=n) for n in spec.image_pull_secrets] or None,
        "cmds": spec.command(),
        "container_resources": k8s.V1ResourceRequirements(requests=spec.requests(), limits=spec.limits()),
        "node_selector": dict(spec.node_selector),
        "tolerations": [k8s.V1Toleration(**t.model_dump(exclude_none=True)) for t in spec.tolerations],
        "priority_class_name": spec.priority_class_name,
        "service_account_name": spec.service_account_name,
        "automount_service_account_token": False,
        "env_vars": [k8s.V1EnvVar(name=k, value=v) for k, v in spec.fixed_env().items()],
        "env_from": env_from,
        "secrets": [Secret("env", s.env, s.secret_name, s.key) for s in spec.secret_env],
        "volumes": volumes,
        "volume_mounts": mounts,
        "security_context": k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=spec.run_as_user,
            run_as_group=spec.run_as_user,
            fs_group=spec.run_as_user,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        "container_security_context": k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        "full_pod_spec": k8s.V1Pod(metadata=k8s.V1ObjectMeta(labels=spec.base_labels)),
        "labels": spec.base_labels,
        "get_logs": True,
        "log_events_on_failure": True,
        "on_finish_action": "delete_succeeded_pod",
        "do_xcom_push": False,
        "startup_timeout_seconds": spec.startup_timeout_seconds,
        "active_deadline_seconds": spec.active_deadline_seconds,
        "termination_grace_period": 60,
    }
    # Reattach to a running pod after a worker restart instead of starting a second one. Airflow
    # 3.3 renamed the switch to `durable` (reattach_on_restart still works but warns).
    if "durable" in inspect.signature(KubernetesPodOperator.__init__).parameters:
        kwargs["durable"] = True
    else:  # pragma: no cover - providers older than the pinned one
        kwargs["reattach_on_restart"] = True
    return kwargs


def kpo_target_kwargs(spec: InferencePodSpec, region: str, day: dt.date | str, mode: str, snapshot: str | None = None) -> dict[str, Any]:
    """Per-target kwargs (``arguments``, ``labels``, ``name``), e.g. one element of ``expand_kwargs``."""
    return {
        "arguments": spec.arguments(region, day, mode, snapshot),
        "labels": spec.labels(region, day, mode),
        "name": spec.pod_name(region, mode),
    }


def kpo_kwargs(spec: InferencePodSpec, region: str, day: dt.date | str, mode: str, snapshot: str | None = None) -> dict[str, Any]:
    """All ``KubernetesPodOperator`` constructor kwargs for one inference (add ``task_id``)."""
    return {**kpo_static_kwargs(spec), **kpo_target_kwargs(spec, region, day, mode, snapshot)}
