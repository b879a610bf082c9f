"""The tenant namespace denies everything, then allows each flow the platform needs by name."""

from __future__ import annotations

from typing import Any

from tests.charts.charts import RenderTenant
from tests.charts.manifests import Manifest, find, kind_names, of_kind

ALL_PODS: dict[str, Any] = {}
KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def policy(objects: list[Manifest], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "NetworkPolicy", name)["spec"]
    return spec


def test_default_deny_covers_every_pod_in_both_directions(tenant_default: list[Manifest]) -> None:
    deny = policy(tenant_default, "soa-default-deny")

    assert deny == {"podSelector": ALL_PODS, "policyTypes": ["Ingress", "Egress"]}


def test_pods_of_the_tenant_reach_each_other(tenant_default: list[Manifest]) -> None:
    same = policy(tenant_default, "soa-allow-same-namespace")

    assert same["ingress"] == [{"from": [{"podSelector": ALL_PODS}]}]
    assert same["egress"] == [{"to": [{"podSelector": ALL_PODS}]}]


def test_every_pod_may_resolve_names_through_kube_dns(tenant_default: list[Manifest]) -> None:
    dns = policy(tenant_default, "soa-allow-dns")

    assert dns["podSelector"] == ALL_PODS
    assert dns["policyTypes"] == ["Egress"]
    assert dns["egress"] == [{"to": [KUBE_DNS], "ports": DNS_PORTS}]


def test_only_the_ingress_controller_reaches_the_api_port(tenant_default: list[Manifest]) -> None:
    allow = policy(tenant_default, "soa-allow-ingress-controller")

    assert allow["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert allow["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"protocol": "TCP", "port": 8000}],
        }
    ]


def test_the_ingress_controller_reaches_janus_on_its_http_transport_only(tenant_default: list[Manifest]) -> None:
    allow = policy(tenant_default, "soa-allow-ingress-controller-to-janus")

    assert allow["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "janus"
    assert allow["policyTypes"] == ["Ingress"]
    assert allow["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"protocol": "TCP", "port": 8088}],
        }
    ]


def test_nothing_outside_the_namespace_reaches_the_janus_admin_api(tenant_all_features: list[Manifest]) -> None:
    # the admin API (7088) is for the platform; only the same-namespace rule (a bare podSelector) may cover it
    janus_labels = find(tenant_all_features, "Deployment", "soa-janus")["spec"]["template"]["metadata"]["labels"]
    for allow in of_kind(tenant_all_features, "NetworkPolicy"):
        selector = allow["spec"]["podSelector"].get("matchLabels", {})
        if not selector.items() <= janus_labels.items() or "matchExpressions" in allow["spec"]["podSelector"]:
            continue
        for rule in allow["spec"].get("ingress", []):
            if rule.get("from") == [{"podSelector": ALL_PODS}]:
                continue
            assert "ports" in rule, allow["metadata"]["name"]
            tcp_ports = {(p["port"], p.get("endPort", p["port"])) for p in rule["ports"] if p["protocol"] == "TCP"}
            assert not any(low <= 7088 <= high for low, high in tcp_ports), allow["metadata"]["name"]


def test_traces_leave_only_for_the_observability_namespace(tenant_default: list[Manifest]) -> None:
    otlp = policy(tenant_default, "soa-allow-observability-egress")

    assert otlp["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "soa-observability"}}}],
            "ports": [{"protocol": "TCP", "port": 9100}],
        }
    ]

    assert otlp["egress"] == [
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "soa-observability"}}}],
            "ports": [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}],
        }
    ]


def test_media_reaches_janus_and_coturn_from_anywhere(tenant_default: list[Manifest]) -> None:
    janus = policy(tenant_default, "soa-allow-media-janus")
    coturn = policy(tenant_default, "soa-allow-media-coturn")

    assert janus["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "janus"
    assert janus["ingress"] == [{"ports": [{"protocol": "UDP", "port": 20000, "endPort": 20199}]}]
    assert coturn["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "coturn"
    assert coturn["ingress"] == [
        {
            "ports": [
                {"protocol": "UDP", "port": 3478},
                {"protocol": "TCP", "port": 3478},
                {"protocol": "UDP", "port": 49152, "endPort": 49407},
            ]
        }
    ]


def test_oidc_egress_opens_https_to_the_issuer_cidrs_for_api_and_worker(
    tenant_all_features: list[Manifest],
) -> None:
    oidc = policy(tenant_all_features, "soa-allow-oidc-egress")

    components = oidc["podSelector"]["matchExpressions"][1]
    assert components == {"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "worker"]}
    assert oidc["egress"] == [
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]


def test_no_oidc_egress_without_an_issuer(tenant_default: list[Manifest]) -> None:
    assert ("NetworkPolicy", "soa-allow-oidc-egress") not in kind_names(tenant_default)


def test_policies_follow_the_configured_namespaces(render_tenant: RenderTenant) -> None:
    objects = render_tenant(
        {"networkPolicy": {"ingressControllerNamespace": "traefik", "observabilityNamespace": "monitoring"}}
    )

    ingress_from = policy(objects, "soa-allow-ingress-controller")["ingress"][0]["from"][0]
    janus_from = policy(objects, "soa-allow-ingress-controller-to-janus")["ingress"][0]["from"][0]
    otlp_to = policy(objects, "soa-allow-observability-egress")["egress"][0]["to"][0]
    assert ingress_from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "traefik"
    assert janus_from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "traefik"
    assert otlp_to["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "monitoring"


def test_operator_pod_talks_only_to_the_api_server_dns_and_collector(operator_default: list[Manifest]) -> None:
    (op,) = of_kind(operator_default, "NetworkPolicy")
    spec = op["spec"]

    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    api_server, dns, otlp = spec["egress"]
    assert api_server["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    assert dns == {"to": [KUBE_DNS], "ports": DNS_PORTS}
    assert otlp["ports"] == [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}]
    assert spec["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "soa-observability"}}}],
            "ports": [{"protocol": "TCP", "port": 9090}],
        }
    ]
