"""deploy/k8s: every built-in kind passes `kubernetes-validate --strict -k 1.29.0` (schemas
shipped in its wheel, offline), the prometheus-operator resources pass a structural check of
their documented fields, and the manifests agree with each other (selectors, ports, Secret
and ConfigMap keys, the proxy's TOML) and with what the issue asks of the pod."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dbsight.proxy._config import ProxyConfig

K8S_VERSION = "1.29.0"
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def _documents(k8s: Path) -> dict[str, dict[str, Any]]:
    """Each manifest by kind (one resource per file, as kustomization.yaml lists them)."""
    kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        docs = [doc for doc in yaml.safe_load_all((k8s / name).read_text()) if doc]
        assert len(docs) == 1, name
        found[docs[0]["kind"]] = docs[0]
    return found


@pytest.fixture(scope="module")
def k8s(deploy_dir: Path) -> Path:
    return deploy_dir / "k8s"


@pytest.fixture(scope="module")
def manifests(k8s: Path) -> dict[str, dict[str, Any]]:
    return _documents(k8s)


def _validate(tool: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, "--strict", "-k", K8S_VERSION, *map(str, files)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_kustomization_lists_every_manifest(k8s: Path) -> None:
    listed = set(yaml.safe_load((k8s / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in k8s.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_kustomize_sets_the_image_of_both_containers(k8s: Path, manifests: dict) -> None:
    images = yaml.safe_load((k8s / "kustomization.yaml").read_text())["images"]
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    used = {c["image"] for c in (*pod["initContainers"], *pod["containers"])}
    assert used == {image["name"] for image in images} == {"dbsight-app"}


def test_builtin_kinds_pass_strict_validation_for_1_29(k8s: Path, manifests: dict,
                                                       venv_tool) -> None:
    tool = venv_tool("kubernetes-validate")
    builtin = [k8s / f for f in yaml.safe_load((k8s / "kustomization.yaml").read_text())
               ["resources"]]  # fmt: skip
    builtin = [p for p in builtin if yaml.safe_load(p.read_text())["kind"] not in OPERATOR_KINDS]
    assert len(builtin) == 9
    done = _validate(tool, *builtin)
    assert done.returncode == 0, done.stdout + done.stderr
    # offline, against 1.29's own schemas, and every file was checked, none skipped
    assert done.stdout.count(f"against version {K8S_VERSION.rsplit('.', 1)[0]}") == len(builtin)
    assert "Couldn't find schema" not in done.stdout + done.stderr


def test_strict_validation_rejects_an_unknown_field(k8s: Path, tmp_path: Path,
                                                     venv_tool) -> None:
    # the validator bites: a misspelt field in the pod spec fails
    broken = tmp_path / "deployment.yaml"
    broken.write_text((k8s / "deployment.yaml").read_text().replace(
        "terminationGracePeriodSeconds", "terminationGracePeriodSecond"))  # fmt: skip
    done = _validate(venv_tool("kubernetes-validate"), broken)
    assert done.returncode != 0


def test_proxy_is_a_native_sidecar_probed_on_its_admin_port(manifests: dict) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (proxy,) = pod["initContainers"]
    assert proxy["restartPolicy"] == "Always"
    assert proxy["args"][0] == "proxy"
    admin = {p["name"]: p["containerPort"] for p in proxy["ports"]}["proxy-admin"]
    assert admin == 9187
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "proxy-admin"}
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "proxy-admin"}
    assert proxy["startupProbe"]["httpGet"]["port"] == "proxy-admin"
    # the password reaches the upstream URL from the Secret, by Kubernetes' $(VAR) expansion
    env = {e["name"]: e for e in proxy["env"]}
    assert "$(POSTGRES_PASSWORD)" in proxy["args"][proxy["args"].index("--upstream") + 1]
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "postgres-password"


def test_app_probes_security_and_multiprocess_dir(manifests: dict) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (app,) = pod["containers"]
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert app["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in (app, *pod["initContainers"]):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= container["resources"].keys()
    # the workers' metrics directory is a writable emptyDir at DBSIGHT_MULTIPROCESS_DIR
    config = manifests["ConfigMap"]["data"]
    mounts = {m["name"]: m["mountPath"] for m in app["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["multiprocess"] == config["DBSIGHT_MULTIPROCESS_DIR"]
    assert "emptyDir" in volumes["multiprocess"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_references_between_manifests_resolve(manifests: dict) -> None:
    deployment, service = manifests["Deployment"], manifests["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    target = manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])

    pod = deployment["spec"]["template"]["spec"]
    containers = [*pod["initContainers"], *pod["containers"]]
    port_names = {p["name"] for c in containers for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert pod["serviceAccountName"] == manifests["ServiceAccount"]["metadata"]["name"]

    secret, config = manifests["Secret"], manifests["ConfigMap"]
    for container in containers:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {})
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["name"] == secret["metadata"]["name"]
                assert ref["secretKeyRef"]["key"] in secret["stringData"]
            if "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["name"] == config["metadata"]["name"]
                assert ref["configMapKeyRef"]["key"] in config["data"]
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] == config["metadata"]["name"]
    for volume in pod["volumes"]:
        if "configMap" in volume:
            assert {i["key"] for i in volume["configMap"]["items"]} <= config["data"].keys()

    backend = manifests["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}

    monitor = manifests["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= service_ports
    for endpoint in monitor["endpoints"]:
        credentials = endpoint["authorization"]["credentials"]
        assert credentials["name"] == secret["metadata"]["name"]
        assert credentials["key"] in secret["stringData"]


def test_secret_holds_only_marked_placeholders(manifests: dict) -> None:
    assert set(manifests["Secret"]["stringData"].values()) == {"CHANGE_ME"}


def test_configmap_proxy_toml_loads_with_the_proxy_loader(manifests: dict, tmp_path: Path,
                                                          deploy_dir: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text(manifests["ConfigMap"]["data"]["proxy.toml"])
    config = ProxyConfig.load(path)
    assert config.listen_address == ("127.0.0.1", 5433)  # only the pod's own containers
    assert config.admin_address == ("0.0.0.0", 9187)  # the kubelet's probes and Prometheus
    assert [r.host for r in config.replica_servers] == ["postgres-replica"]
    assert config.upstream_server.password is None  # the Secret's comes on the command line
    # the same proxy settings as the Compose sidecar's file, but for comments
    compose = tomllib.loads((deploy_dir / "proxy/proxy.toml").read_text())
    assert tomllib.loads(path.read_text()) == compose
    # the app's DSN points at the sidecar
    dsn = manifests["ConfigMap"]["data"]["DBSIGHT_DEMO_DSN"]
    assert dsn.startswith("postgresql://app@127.0.0.1:5433/")


# -- prometheus-operator's kinds: a structural check of the fields its API reference documents
# (monitoring.coreos.com/v1), strict where these manifests use them, so a misspelt key fails.

_SECRET_KEY = {
    "type": "object", "required": ["name", "key"], "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "key": {"type": "string"},
                   "optional": {"type": "boolean"}},
}  # fmt: skip
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
             r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}  # fmt: skip
_RELABEL = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod",
                            "HashMod", "labelmap", "LabelMap", "labeldrop", "LabelDrop",
                            "labelkeep", "LabelKeep", "lowercase", "Lowercase", "uppercase",
                            "Uppercase", "keepequal", "KeepEqual", "dropequal", "DropEqual"]},
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "separator": {"type": "string"}, "targetLabel": {"type": "string"},
        "regex": {"type": "string"}, "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
    },
}  # fmt: skip
_METADATA = {
    "type": "object", "required": ["name"],
    "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                   "labels": {"type": "object", "additionalProperties": {"type": "string"}}},
}  # fmt: skip
SERVICE_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "additionalProperties": False, "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "matchExpressions": {"type": "array"}}},
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer"},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"}, "targetPort": {},
                        "path": {"type": "string"}, "scheme": {"enum": ["http", "https"]},
                        "params": {"type": "object"},
                        "interval": _DURATION, "scrapeTimeout": _DURATION,
                        "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
                        "tlsConfig": {"type": "object"},
                        "bearerTokenSecret": _SECRET_KEY,
                        "authorization": {
                            "type": "object", "additionalProperties": False,
                            "properties": {"type": {"type": "string"}, "credentials": _SECRET_KEY},
                        },
                        "basicAuth": {"type": "object"}, "oauth2": {"type": "object"},
                        "relabelings": {"type": "array", "items": _RELABEL},
                        "metricRelabelings": {"type": "array", "items": _RELABEL},
                        "followRedirects": {"type": "boolean"},
                        "enableHttp2": {"type": "boolean"},
                        "filterRunning": {"type": "boolean"},
                    },
                    "anyOf": [{"required": ["port"]}, {"required": ["targetPort"]}],
                }},
            },
        },
    },
}  # fmt: skip
_RULE = {
    "type": "object", "required": ["expr"], "additionalProperties": False,
    "properties": {
        "alert": {"type": "string"}, "record": {"type": "string"},
        "expr": {"type": ["string", "integer"]}, "for": _DURATION, "keep_firing_for": _DURATION,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}  # fmt: skip
PROMETHEUS_RULE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object", "required": ["groups"], "additionalProperties": False,
            "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "rules"], "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": _DURATION, "limit": {"type": "integer"},
                    "partial_response_strategy": {"type": "string"},
                    "rules": {"type": "array", "items": _RULE},
                },
            }}},
        },
    },
}  # fmt: skip


@pytest.mark.parametrize(("kind", "schema"), [("ServiceMonitor", SERVICE_MONITOR),
                                              ("PrometheusRule", PROMETHEUS_RULE)])
def test_operator_resources_match_their_documented_fields(manifests: dict, kind: str,
                                                          schema: dict) -> None:
    jsonschema.validate(manifests[kind], schema)


def test_operator_check_rejects_a_misspelt_field(manifests: dict) -> None:
    broken = yaml.safe_load(yaml.safe_dump(manifests["ServiceMonitor"]))
    broken["spec"]["endpoints"][0]["scrapeTimout"] = "10s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SERVICE_MONITOR)
    rule = yaml.safe_load(yaml.safe_dump(manifests["PrometheusRule"]))
    rule["spec"]["groups"][0]["rules"][0]["record"] = "both:alert_and_record"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, PROMETHEUS_RULE)
