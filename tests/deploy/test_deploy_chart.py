"""Static checks of the Helm chart (no helm binary here): structure, RBAC, security, consistency."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from banet_ops.regions import Region
from deploy.gotemplate import render_chart_file

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "banet-ops"
TEMPLATES = CHART / "templates"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())

_COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.DOTALL)
_ACTION_LINE = re.compile(r"^\s*\{\{-?\s*(if|else|end|with|range|define|fail|\$|include|toYaml)\b.*\}\}\s*$")


def pseudo_render(text: str) -> list[dict[str, Any]]:
    """YAML documents of a template with control lines dropped and inline actions replaced by TPL.

    Not helm: good enough to check the static structure (kinds, rules, security fields).
    """
    text = re.sub(r"\{\{.*?\}\}", lambda m: " ".join(m.group(0).split()), _COMMENT.sub("", text), flags=re.DOTALL)
    lines = []
    for line in text.splitlines():
        if _ACTION_LINE.match(line):
            continue
        lines.append(re.sub(r"\{\{.*?\}\}", "TPL", line))
    return [doc for doc in yaml.safe_load_all("\n".join(lines)) if doc]


def _docs(name: str) -> list[dict[str, Any]]:
    return pseudo_render((TEMPLATES / name).read_text())


def test_chart_metadata_and_pinned_airflow_dependency() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "banet-ops"
    (dep,) = chart["dependencies"]
    assert dep["name"] == "airflow"
    assert dep["repository"] == "https://airflow.apache.org"
    assert re.fullmatch(r"1\.(1[89]|[2-9][0-9])\.[0-9]+", dep["version"]), "a pinned chart version with Airflow 3 support"
    assert dep["condition"] == "airflow.enabled"


def test_airflow_subchart_values() -> None:
    af = VALUES["airflow"]
    assert af["executor"] == "KubernetesExecutor"
    assert af["postgresql"]["enabled"] is False and af["redis"]["enabled"] is False
    assert af["data"]["metadataSecretName"]
    assert af["images"]["airflow"]["tag"] == af["defaultAirflowTag"]
    assert af["airflowVersion"].startswith("3.3.")
    assert "metadataConnection" not in af["data"]


@pytest.mark.parametrize("path", sorted(TEMPLATES.iterdir()), ids=lambda p: p.name)
def test_every_template_is_well_formed(path: Path) -> None:
    text = path.read_text()
    assert text.count("{{") == text.count("}}"), "unbalanced template delimiters"
    opens = len(re.findall(r"\{\{-?\s*(if|with|range|define)\b", text))
    ends = len(re.findall(r"\{\{-?\s*end\b", text))
    assert opens == ends, f"{opens} blocks opened, {ends} closed"
    if path.suffix == ".yaml":
        pseudo_render(text)  # parses as YAML once the template actions are stubbed
    # the chart never creates a Secret and never renders a credential value
    assert not re.search(r"^kind:\s*Secret\b", text, re.MULTILINE)
    assert "stringData" not in text
    for ref in re.findall(r"\.Values\.secrets\.[A-Za-z0-9_.]+", text):
        assert ref.rsplit(".", 1)[-1] in {"secretName", "key", "accessKeyIdKey", "secretAccessKeyKey", "s3", "earthdata", "firms", "database"}, ref


def test_launcher_role_is_what_kubernetes_pod_operator_needs_and_nothing_more() -> None:
    role, binding = _docs("rbac.yaml")
    assert role["kind"] == "Role" and binding["kind"] == "RoleBinding"
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {
        (("",), ("pods",)): {"create", "get", "list", "watch", "delete", "patch"},
        (("",), ("pods/log",)): {"get"},
        (("",), ("events",)): {"list"},
    }
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    (subject,) = binding["subjects"]
    assert subject["kind"] == "ServiceAccount"
    text = (TEMPLATES / "rbac.yaml").read_text()
    assert "{{ .Values.rbac.launcherServiceAccount }}" in text
    assert "ClusterRole" not in text.replace("# ", "")


def test_service_accounts() -> None:
    launcher, inference = _docs("serviceaccounts.yaml")
    assert launcher["automountServiceAccountToken"] is True  # KubernetesPodOperator needs in-cluster credentials
    assert inference["automountServiceAccountToken"] is False  # inference pods never call the API


def test_priority_class() -> None:
    (pc,) = _docs("priorityclass.yaml")
    assert pc["kind"] == "PriorityClass" and pc["globalDefault"] is False
    assert VALUES["inference"]["priorityClass"]["value"] > 0


def _helper(name: str) -> str:
    text = (TEMPLATES / "_helpers.tpl").read_text()
    return text.split(f'{{{{- define "{name}" -}}}}', 1)[1].split("{{- end -}}", 1)[0]


def test_network_policy_selects_the_pods_of_the_pod_templates() -> None:
    selector = yaml.safe_load(_helper("banet.inferenceSelector"))
    (templates,) = render_chart_file(CHART, "configmap-pod-templates.yaml", VALUES)
    for name, text in templates["data"].items():
        assert selector.items() <= yaml.safe_load(text)["metadata"]["labels"].items(), name


def test_network_policies_allow_only_the_needed_egress() -> None:
    text = (TEMPLATES / "networkpolicies.yaml").read_text()
    inference, workers, migrate = text.split("\n---\n")
    for section in (inference, workers, migrate):
        assert 'include "banet.egressDns"' in section
        assert "$np.postgis.cidrs" in section
    assert "ingress: []" in inference and '["Ingress", "Egress"]' in inference
    assert "$np.s3.cidrs" in inference and "nasa" not in inference and "kubeApi" not in inference
    assert '(dict "cidrs" $np.nasa.cidrs "port" 443)' in workers
    assert "$np.kubeApi.cidrs" in workers and "$np.s3.cidrs" in workers
    assert "$np.s3" not in migrate and "nasa" not in migrate
    docs = pseudo_render(text)
    assert [d["kind"] for d in docs] == ["NetworkPolicy"] * 3
    helper = _helper("banet.egressTo")
    assert "ipBlock" in helper and "protocol: TCP" in helper


def test_db_upgrade_job_is_hardened_and_reads_the_url_from_a_secret() -> None:
    (job,) = _docs("job-db-upgrade.yaml")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["banet-ops", "db", "upgrade"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["BANET_DATABASE_URL"]["valueFrom"]
    assert "value" not in env["BANET_DATABASE_URL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["automountServiceAccountToken"] is False


def test_regions_configmap_writes_region_files() -> None:
    text = (TEMPLATES / "configmap-regions.yaml").read_text()
    assert 'R_{{ .name }}.json: {{ dict "name" .name "bbox" .bbox "pixel_size" .pixel_size | toJson | quote }}' in text
    for entry in VALUES["regions"]:
        Region(**entry)  # the default regions are valid BA-Net regions


# --- cross-value consistency (templates/validate.yaml fails the release on these) --------------


def consistency_problems(values: dict[str, Any]) -> list[str]:
    """The checks of templates/validate.yaml, in Python."""
    problems = []
    af = values["airflow"]
    if af["workers"]["serviceAccount"]["name"] != values["rbac"]["launcherServiceAccount"]:
        problems.append("airflow.workers.serviceAccount.name must equal rbac.launcherServiceAccount")
    if af["securityContexts"]["pod"]["runAsUser"] != values["podSecurity"]["airflowUid"]:
        problems.append("airflow.securityContexts.pod.runAsUser must equal podSecurity.airflowUid")
    s = values["secrets"]
    refs = [
        ("BANET_EARTHDATA_TOKEN", s["earthdata"]["secretName"], s["earthdata"]["key"]),
        ("BANET_FIRMS_MAP_KEY", s["firms"]["secretName"], s["firms"]["key"]),
        ("BANET_DATABASE_URL", s["database"]["secretName"], s["database"]["key"]),
    ]
    if s.get("s3"):
        refs += [
            ("AWS_ACCESS_KEY_ID", s["s3"]["secretName"], s["s3"]["accessKeyIdKey"]),
            ("AWS_SECRET_ACCESS_KEY", s["s3"]["secretName"], s["s3"]["secretAccessKeyKey"]),
        ]
    present = {(e["envName"], e["secretName"], e["secretKey"]) for e in af["secret"]}
    problems += [f"airflow.secret must contain {ref}" for ref in refs if ref not in present]
    if values["configMaps"]["settings"] not in str(af.get("extraEnvFrom")):
        problems.append("airflow.extraEnvFrom must reference configMaps.settings")
    training = values["training"]
    if training["workPvc"] and training["workPath"] not in {m["mountPath"] for m in af.get("volumeMounts") or []}:
        problems.append("training.workPvc is set: the Airflow workers must mount it at training.workPath")
    names = [r["name"] for r in values["regions"]]
    problems += [f"region {n} appears twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for r in values["regions"]:
        left, bottom, right, top = r["bbox"]
        if left >= right or bottom >= top or bottom < -90 or top > 90:
            problems.append(f"regions[{r['name']}].bbox")
    return problems


def test_default_values_are_consistent() -> None:
    assert consistency_problems(VALUES) == []
    af = VALUES["airflow"]
    assert {v["configMap"]["name"] for v in af["volumes"]} == {VALUES["configMaps"]["regions"], VALUES["configMaps"]["podTemplates"]}
    assert {m["mountPath"] for m in af["volumeMounts"]} == {"/etc/banet/regions", "/etc/banet/pod-templates"}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda v: v["airflow"]["workers"]["serviceAccount"].update(name="default"), "launcherServiceAccount"),
        (lambda v: v["secrets"]["database"].update(key="url"), "BANET_DATABASE_URL"),
        (lambda v: v["airflow"]["secret"].pop(0), "BANET_EARTHDATA_TOKEN"),
        (lambda v: v.update(regions=[*v["regions"], v["regions"][0]]), "appears twice"),
        (lambda v: v["regions"].append({"name": "X", "bbox": [5, 0, 1, 1], "pixel_size": 0.01}), "bbox"),
        (lambda v: v["airflow"].update(extraEnvFrom=""), "extraEnvFrom"),
        (lambda v: v["training"].update(workPvc="retrain-work"), "training.workPath"),
    ],
)
def test_inconsistent_values_are_caught(change: Any, problem: str) -> None:
    values = copy.deepcopy(VALUES)
    change(values)
    assert any(problem in p for p in consistency_problems(values))


def test_validate_template_covers_the_same_checks() -> None:
    text = (TEMPLATES / "validate.yaml").read_text()
    for needle in ("rbac.launcherServiceAccount", "podSecurity.airflowUid", "$af.secret", "extraEnvFrom", "appears twice", "left < right",
                   "training.workPath"):
        assert needle in text, needle
    assert text.count("fail (printf") >= 6


def test_airflow_pools_job_creates_the_gpu_pool_without_literal_credentials() -> None:
    (job,) = _docs("job-airflow-pools.yaml")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]["key"] == "connection"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "gpu" in {p["name"] for p in VALUES["airflowPools"]}
    text = (TEMPLATES / "job-airflow-pools.yaml").read_text()
    assert "airflow pools set {{ .name | squote }} {{ .slots }} {{ .description | squote }}" in text
    assert int(job["metadata"]["annotations"]["helm.sh/hook-weight"]) > 1  # after the chart's migration hook
