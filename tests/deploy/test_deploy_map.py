"""The map's Deployment, Service and NetworkPolicy in the chart (pseudo-rendered, no helm binary)."""

from __future__ import annotations

import copy

from .test_deploy_chart import TEMPLATES, VALUES, pseudo_render
from .test_deploy_values_schema import errors_of


def _objects() -> dict[str, dict]:
    text = (TEMPLATES / "map.yaml").read_text()
    return {doc["kind"]: doc for doc in pseudo_render(text)}


def test_map_deployment_serves_as_the_reader_and_is_hardened() -> None:
    deploy = _objects()["Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:4] == ["banet-ops", "serve", "--host", "0.0.0.0"]
    env = {e["name"]: e for e in container["env"]}
    assert "BANET_DATABASE_URL" not in env  # never the pipeline's (writing) login
    ref = env["BANET_WEB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "TPL", "key": "TPL"}
    text = (TEMPLATES / "map.yaml").read_text()
    assert ".Values.secrets.webDatabase.secretName" in text and ".Values.secrets.webDatabase.key" in text
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert deploy["spec"]["selector"]["matchLabels"] == deploy["spec"]["template"]["metadata"]["labels"]


def test_service_and_network_policy_select_the_map_pods() -> None:
    objs = _objects()
    labels = objs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert objs["Service"]["spec"]["selector"] == labels
    assert objs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    policy = objs["NetworkPolicy"]
    assert policy["spec"]["podSelector"]["matchLabels"] == labels
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    text = (TEMPLATES / "map.yaml").read_text().split("kind: NetworkPolicy", 1)[1]
    egress = text.split("egress:", 1)[1]
    assert egress.count("include") == 3 and "$np.postgis" in egress and "$np.s3" in egress and "egressDns" in egress  # nothing else


def test_map_values_are_validated() -> None:
    assert VALUES["map"]["enabled"] is True and VALUES["secrets"]["webDatabase"]["key"] == "BANET_WEB_DATABASE_URL"
    env = {e["envName"]: e for e in VALUES["airflow"]["secret"]}
    assert env["BANET_WEB_DATABASE_URL"]["secretKey"] == "BANET_WEB_DATABASE_URL"  # the api-server's page reads as the reader too
    bad = copy.deepcopy(VALUES)
    bad["map"]["airflowUrl"] = "https://admin:secret@airflow.example.org"
    bad["map"]["service"]["type"] = "ExternalName"
    assert len(errors_of(bad)) == 2
