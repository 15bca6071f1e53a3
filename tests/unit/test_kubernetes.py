"""The Kubernetes manifests (deploy/kubernetes/), offline: every resource valid against the Kubernetes
schemas, and what they say agrees with the gateway: probe paths and ports, the grace period against the
drain, the autoscaler's metric, selectors, the Service port the ServiceMonitor scrapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from alice_voice.api.app import create_app
from alice_voice.config import Settings
from alice_voice.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES = "1.30.0"
CUSTOM_KINDS = {"ServiceMonitor"}  # a CRD (Prometheus Operator): not in the core schemas


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((ROOT / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((ROOT / name).read_text())]


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((ROOT / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in ROOT.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("doc", [d for d in documents() if d["kind"] not in CUSTOM_KINDS],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_resource_validates_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_gateway_pod_matches_the_gateways_settings_and_routes() -> None:
    deployment = find("Deployment", "gateway")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = env_of(container)
    settings = Settings(**{k.removeprefix("ALICE_").lower(): v for k, v in env.items()
                           if v and k not in ("ALICE_ICE_SERVERS",)})
    assert container["ports"] == [{"name": "http", "containerPort": settings.port}]
    paths = set(create_app(settings).openapi()["paths"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http" and container[probe]["httpGet"]["path"] in paths
    assert container["readinessProbe"]["httpGet"]["path"] == "/health", "the probe that says draining"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", "alive while draining"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    needed = pre_stop + settings.drain_limit_s + settings.shutdown_grace_s
    assert pod["terminationGracePeriodSeconds"] >= needed + 10, "a call may not be cut by SIGKILL"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001  # the image's
    assert pod["hostNetwork"] and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert "limits" in container["resources"] and "cpu" not in container["resources"]["limits"]


def test_disruption_budget_autoscaler_service_and_monitor_point_at_the_gateway() -> None:
    labels = find("Deployment", "gateway")["spec"]["selector"]["matchLabels"]
    assert find("PodDisruptionBudget", "gateway")["spec"]["selector"]["matchLabels"] == labels
    service = find("Service", "gateway")
    assert service["spec"]["selector"] == labels
    hpa = find("HorizontalPodAutoscaler", "gateway")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    exposed = {metric.name for metric in Metrics().registry.collect()}
    pods_metrics = [m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods"]
    assert pods_metrics and set(pods_metrics) <= exposed
    monitor = find("ServiceMonitor", "gateway")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["endpoints"][0]["path"] == "/metrics"


def test_the_gateway_reaches_redis_and_coturn_by_their_services() -> None:
    env = env_of(find("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0])
    redis_service = find("Service", "redis")
    assert env["ALICE_REDIS_URL"] == f"redis://redis:{redis_service['spec']['ports'][0]['port']}/0"
    turn_port = find("Service", "coturn")["spec"]["ports"][0]["port"]
    assert f"coturn.alice-voice.svc.cluster.local:{turn_port}" in env["ALICE_ICE_SERVERS"]
