"""How the tenant chart follows its values: suspend, releases, migration, components, ingress."""

from __future__ import annotations

import copy

import pytest

from tests.charts.charts import RenderTenant, RenderTenantFiles
from tests.charts.manifests import Manifest, containers, env_of, find, kind_names, of_kind, pod_spec

WORKLOADS = ("Deployment", "StatefulSet")


def test_suspended_scales_every_workload_to_zero(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"suspended": True})

    replicas = {o["metadata"]["name"]: o["spec"]["replicas"] for o in objects if o["kind"] in WORKLOADS}
    assert replicas == dict.fromkeys(replicas, 0)
    assert set(replicas) >= {"soa-api", "soa-worker", "soa-beat", "soa-postgres", "soa-redis", "soa-minio"}


def test_suspended_changes_nothing_but_replicas(render_tenant: RenderTenant, tenant_default: list[Manifest]) -> None:
    suspended = render_tenant({"suspended": True})

    def without_replicas(objects: list[Manifest]) -> dict[tuple[str, str], Manifest]:
        stripped = {}
        for obj in copy.deepcopy(objects):
            if obj["kind"] in WORKLOADS:
                del obj["spec"]["replicas"]
            stripped[(obj["kind"], obj["metadata"]["name"])] = obj
        return stripped

    running = without_replicas(tenant_default)
    # the api's disruption budget goes: there is nothing left to protect
    assert set(running) - set(without_replicas(suspended)) == {("PodDisruptionBudget", "soa-api")}
    for key, obj in without_replicas(suspended).items():
        assert obj == running[key], key


def test_suspended_keeps_volume_claims_unchanged(render_tenant: RenderTenant, tenant_default: list[Manifest]) -> None:
    suspended = render_tenant({"suspended": True})

    for sts in of_kind(tenant_default, "StatefulSet"):
        name = sts["metadata"]["name"]
        resumed_claims = sts["spec"]["volumeClaimTemplates"]
        assert find(suspended, "StatefulSet", name)["spec"]["volumeClaimTemplates"] == resumed_claims


def test_replicas_come_from_values(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"replicas": {"api": 4, "worker": 3, "beat": 0}})

    assert find(objects, "Deployment", "soa-api")["spec"]["replicas"] == 4
    assert find(objects, "Deployment", "soa-worker")["spec"]["replicas"] == 3
    assert find(objects, "Deployment", "soa-beat")["spec"]["replicas"] == 0
    assert find(objects, "StatefulSet", "soa-postgres")["spec"]["replicas"] == 1


def test_without_platform_version_no_platform_workloads_run(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"platform": {"version": ""}})

    names = {name for _, name in kind_names(objects)}
    assert names.isdisjoint({"soa-api", "soa-worker", "soa-beat", "soa-test-api-health"})
    assert ("Job", "soa-migrate-0-1-0") in kind_names(objects)
    assert ("StatefulSet", "soa-postgres") in kind_names(objects)


def test_without_migration_version_no_job_is_rendered(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"platform": {"version": ""}, "migration": {"version": ""}})

    assert of_kind(objects, "Job") == []


@pytest.mark.parametrize(
    ("version", "job_name"),
    [
        ("0.2.0", "soa-migrate-0-2-0"),
        ("1.10.3-rc.1", "soa-migrate-1-10-3-rc-1"),
        ("2.0.0+build.7", "soa-migrate-2-0-0-build-7"),
    ],
)
def test_migration_job_is_named_for_its_version(render_tenant: RenderTenant, version: str, job_name: str) -> None:
    objects = render_tenant({"migration": {"version": version}})

    assert [job["metadata"]["name"] for job in of_kind(objects, "Job")] == [job_name]


def test_migration_job_runs_migrate_once_and_stays(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"platform": {"version": "0.1.0"}, "migration": {"version": "0.2.0"}})

    job = find(objects, "Job", "soa-migrate-0-2-0")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["soa", "migrate"]
    assert container["image"] == "registry.soa.gov.pk/soa/platform:0.2.0"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 900
    assert "ttlSecondsAfterFinished" not in job["spec"]


def test_platform_workloads_run_platform_version(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"platform": {"version": "0.1.0"}, "migration": {"version": "0.2.0"}})

    for name, command in (("soa-api", "api"), ("soa-worker", "worker"), ("soa-beat", "beat")):
        container = find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "registry.soa.gov.pk/soa/platform:0.1.0"
        assert container["command"] == ["soa", command]
        assert container["imagePullPolicy"] == "IfNotPresent"


def test_build_metadata_uses_underscore_in_the_image_tag(render_tenant: RenderTenant) -> None:
    # OCI tags cannot contain "+"
    objects = render_tenant({"platform": {"version": "2.0.0+build.7"}, "migration": {"version": "2.0.0+build.7"}})

    api = find(objects, "Deployment", "soa-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["image"] == "registry.soa.gov.pk/soa/platform:2.0.0_build.7"


def test_beat_is_a_single_scheduler_replaced_not_rolled(tenant_default: list[Manifest]) -> None:
    beat = find(tenant_default, "Deployment", "soa-beat")

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def test_api_serves_healthz_on_port_8000_and_metrics_on_9100(tenant_default: list[Manifest]) -> None:
    api = find(tenant_default, "Deployment", "soa-api")["spec"]["template"]["spec"]["containers"][0]

    assert api["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9100, "protocol": "TCP"},
    ]
    assert api["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


@pytest.mark.parametrize("component", ["api", "worker"])
def test_disruption_budget_only_with_more_than_one_replica(render_tenant: RenderTenant, component: str) -> None:
    two = render_tenant({"replicas": {component: 2}})
    one = render_tenant({"replicas": {component: 1}})

    assert find(two, "PodDisruptionBudget", f"soa-{component}")["spec"]["minAvailable"] == 1
    assert ("PodDisruptionBudget", f"soa-{component}") not in kind_names(one)


def test_single_replica_stores_get_no_disruption_budget(tenant_default: list[Manifest]) -> None:
    # minAvailable 1 on one pod would block every node drain
    budgets = {pdb["metadata"]["name"] for pdb in of_kind(tenant_default, "PodDisruptionBudget")}

    assert budgets == {"soa-api"}


def test_storage_disabled_renders_no_object_store(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"components": {"storage": {"enabled": False}}})

    assert {name for _, name in kind_names(objects)}.isdisjoint({"soa-minio", "soa-allow-ingress-controller-to-minio"})
    paths = find(objects, "Ingress", "soa")["spec"]["rules"][0]["http"]["paths"]
    assert "soa-minio" not in [p["backend"]["service"]["name"] for p in paths]
    config = find(objects, "ConfigMap", "soa-platform")["data"]
    assert config["SOA_STORAGE_ENABLED"] == "false"
    assert "SOA_S3_ENDPOINT" not in config
    api = find(objects, "Deployment", "soa-api")["spec"]["template"]["spec"]["containers"][0]
    assert "SOA_S3_SECRET_KEY" not in env_of(api)


def test_meetings_disabled_renders_no_media_servers(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"components": {"meetings": {"enabled": False}}})

    assert {name for _, name in kind_names(objects)}.isdisjoint(
        {
            "soa-janus",
            "soa-coturn",
            "soa-allow-media-janus",
            "soa-allow-media-coturn",
            "soa-allow-ingress-controller-to-janus",
        }
    )
    paths = find(objects, "Ingress", "soa")["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/soa-files/", "/"]
    config = find(objects, "ConfigMap", "soa-platform")["data"]
    assert config["SOA_MEETINGS_ENABLED"] == "false"
    assert "SOA_JANUS_PUBLIC_URL" not in config
    api = find(objects, "Deployment", "soa-api")["spec"]["template"]["spec"]["containers"][0]
    assert "SOA_TURN_SHARED_SECRET" not in env_of(api)


def test_ingress_sends_janus_to_its_http_transport_never_the_admin_port(tenant_default: list[Manifest]) -> None:
    paths = find(tenant_default, "Ingress", "soa")["spec"]["rules"][0]["http"]["paths"]
    janus_ports = {p["name"]: p["port"] for p in find(tenant_default, "Service", "soa-janus")["spec"]["ports"]}

    to_janus = [p for p in paths if p["backend"]["service"]["name"] == "soa-janus"]
    http = {"service": {"name": "soa-janus", "port": {"name": "http"}}}
    assert to_janus == [{"path": "/janus", "pathType": "Prefix", "backend": http}]
    assert janus_ports == {"http": 8088, "admin": 7088}


def test_browsers_are_told_the_public_janus_url(render_tenant: RenderTenant, tenant_default: list[Manifest]) -> None:
    without_domain = render_tenant({"tenant": {"domain": ""}, "ingress": {"enabled": False}})

    assert find(tenant_default, "ConfigMap", "soa-platform")["data"]["SOA_JANUS_PUBLIC_URL"] == (
        "https://example.soa.gov.pk/janus"
    )
    assert find(without_domain, "ConfigMap", "soa-platform")["data"]["SOA_JANUS_PUBLIC_URL"] == ""


def test_janus_uses_token_auth_and_the_admin_secret_as_videoroom_admin_key(tenant_default: list[Manifest]) -> None:
    janus = find(tenant_default, "Deployment", "soa-janus")["spec"]["template"]["spec"]
    env = env_of(containers(janus)[0])
    mount = next(m for m in containers(janus)[0]["volumeMounts"] if m["name"] == "credentials")["mountPath"]
    files = next(v for v in janus["volumes"] if v["name"] == "credentials")["secret"]["items"]

    assert env["JANUS_TOKEN_AUTH"] == "true"
    assert env["JANUS_VIDEOROOM_ADMIN_KEY_FILE"] == env["JANUS_ADMIN_SECRET_FILE"]
    assert env["JANUS_ADMIN_SECRET_FILE"] == f"{mount}/janus-admin-secret"
    assert {"key": "janus-admin-secret", "path": "janus-admin-secret"} in files


def test_ingress_serves_the_tenant_domain_over_tls(tenant_default: list[Manifest]) -> None:
    ingress = find(tenant_default, "Ingress", "soa")

    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "soa-letsencrypt"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["example.soa.gov.pk"], "secretName": "soa-tls"}]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "example.soa.gov.pk"
    root = next(p for p in rule["http"]["paths"] if p["path"] == "/")
    assert root["backend"]["service"] == {"name": "soa-api", "port": {"name": "http"}}


def test_ingress_disabled_renders_no_ingress(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"ingress": {"enabled": False}})

    assert of_kind(objects, "Ingress") == []
    policies = {name for kind, name in kind_names(objects) if kind == "NetworkPolicy"}
    assert not any(name.startswith("soa-allow-ingress-controller") for name in policies)


def test_settings_name_the_tenant_in_every_trace(tenant_default: list[Manifest]) -> None:
    config = find(tenant_default, "ConfigMap", "soa-platform")["data"]

    assert config["SOA_TENANT"] == "example"
    assert config["SOA_DOMAIN"] == "example.soa.gov.pk"
    assert config["OTEL_RESOURCE_ATTRIBUTES"] == "soa.tenant=example,service.namespace=soa"
    assert config["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert config["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.soa-observability.svc:4318"


def test_settings_carry_limits_identity_and_store_hosts(tenant_all_features: list[Manifest]) -> None:
    config = find(tenant_all_features, "ConfigMap", "soa-platform")["data"]

    assert config["SOA_MESSAGING_MAX_MESSAGE_BYTES"] == "16384"
    assert config["SOA_STORAGE_MAX_UPLOAD_MIB"] == "100"
    assert config["SOA_MEETINGS_MAX_PARTICIPANTS"] == "50"
    assert config["SOA_OIDC_ISSUER"] == "https://sso.gov.pk/realms/moitt"
    assert config["SOA_OIDC_CLIENT_ID"] == "soa"
    assert config["SOA_ADMINS"] == "admin@moitt.gov.pk"
    assert config["SOA_DATABASE_HOST"] == "soa-postgres.soa-example.svc"
    assert config["SOA_REDIS_HOST"] == "soa-redis.soa-example.svc"
    assert config["SOA_S3_ENDPOINT"] == "http://soa-minio.soa-example.svc:9000"
    assert config["SOA_JANUS_URL"] == "http://soa-janus.soa-example.svc:8088/janus"


def test_platform_takes_generated_secrets_by_reference(tenant_all_features: list[Manifest]) -> None:
    api = find(tenant_all_features, "Deployment", "soa-api")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(api)

    assert api["envFrom"] == [{"configMapRef": {"name": "soa-platform"}}]
    assert env["SOA_DATABASE_PASSWORD"] == {"secretKeyRef": {"name": "soa-database", "key": "password"}}
    assert env["SOA_SIGNING_KEY"] == {"secretKeyRef": {"name": "soa-app", "key": "signing-key"}}
    assert env["SOA_S3_SECRET_KEY"] == {"secretKeyRef": {"name": "soa-objectstore", "key": "secret-key"}}
    assert env["SOA_TURN_SHARED_SECRET"] == {"secretKeyRef": {"name": "soa-meetings", "key": "turn-shared-secret"}}
    assert env["SOA_OIDC_CLIENT_SECRET"] == {"secretKeyRef": {"name": "moitt-oidc", "key": "client-secret"}}


def test_only_the_migration_gets_object_store_root_credentials(tenant_default: list[Manifest]) -> None:
    for obj in tenant_default:
        spec = pod_spec(obj)
        if spec is None:
            continue
        has_root = any("SOA_S3_ROOT_PASSWORD" in env_of(c) for c in containers(spec))
        assert has_root == (obj["kind"] == "Job"), obj["metadata"]["name"]


def test_secret_names_come_from_values(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"secrets": {"database": "moitt-db"}})

    api = find(objects, "Deployment", "soa-api")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(api)["SOA_DATABASE_USER"] == {"secretKeyRef": {"name": "moitt-db", "key": "username"}}
    volumes = find(objects, "StatefulSet", "soa-postgres")["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": "moitt-db"}.items() <= next(v for v in volumes if v["name"] == "credentials")[
        "secret"
    ].items()


def test_quota_and_limits_come_from_values(tenant_default: list[Manifest]) -> None:
    hard = find(tenant_default, "ResourceQuota", "soa-quota")["spec"]["hard"]
    limits = find(tenant_default, "LimitRange", "soa-limits")["spec"]["limits"][0]

    assert hard["requests.cpu"] == "8"
    assert hard["limits.cpu"] == "16"  # CPU may burst to twice the guaranteed share
    assert hard["requests.memory"] == hard["limits.memory"] == "16Gi"
    assert hard["requests.storage"] == "200Gi"
    assert hard["pods"] == "60"
    assert hard["persistentvolumeclaims"] == "3"
    assert limits["type"] == "Container"
    assert limits["max"] == {"cpu": "4", "memory": "8Gi"}
    assert limits["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert limits["defaultRequest"] == {"cpu": "100m", "memory": "128Mi"}


def test_config_change_rolls_platform_pods(render_tenant: RenderTenant, tenant_default: list[Manifest]) -> None:
    changed = render_tenant({"tracing": {"sampleRatio": 0.5}})

    def checksum(objects: list[Manifest]) -> str:
        api = find(objects, "Deployment", "soa-api")
        return str(api["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(changed) != checksum(tenant_default)


def test_notes_tell_the_reader_what_to_do_next(render_tenant_files: RenderTenantFiles) -> None:
    notes = render_tenant_files({"tenant": {"admins": ["admin@moitt.gov.pk"]}})["soa-tenant/templates/NOTES.txt"]

    assert "kubectl get soat example" in notes
    assert "https://example.soa.gov.pk" in notes
    assert "admin@moitt.gov.pk" in notes
