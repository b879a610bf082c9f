"""`soa tenant …`: the IT board's CLI, its output and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from soa_operator.cli.main import app
from tests.operator.conftest import Cluster, tenant_manifest
from tests.support.operator_process import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs/examples/moitt.yaml"
runner = CliRunner()


def _text(output: str) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(output.split())


def _write(tmp_path: Path, obj: Any, name: str = "tenant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else yaml.safe_dump(obj))
    return path


class TestRender:
    def test_prints_every_object_the_operator_applies(self) -> None:
        result = runner.invoke(app, ["tenant", "render", "-f", str(EXAMPLE)])
        assert result.exit_code == 0, result.output
        docs = [d for d in yaml.safe_load_all(result.output) if d]
        kinds = {d["kind"] for d in docs}
        assert {"Namespace", "NetworkPolicy", "ResourceQuota", "Deployment", "StatefulSet", "Job"} <= kinds
        assert all(d["metadata"]["labels"]["soa.moitt.gov.pk/tenant"] == "moitt" for d in docs)
        assert "Secret" not in kinds, "generated secrets are never rendered"
        assert result.output.startswith("# SOATenant moitt:")

    def test_uid_adds_owner_references(self) -> None:
        result = runner.invoke(app, ["tenant", "render", "-f", str(EXAMPLE), "--uid", "abc"])
        docs = [d for d in yaml.safe_load_all(result.output) if d]
        assert {d["metadata"]["ownerReferences"][0]["uid"] for d in docs} == {"abc"}

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("spec: [unclosed", "is not valid YAML"),
            ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "expected apiVersion"),
            (tenant_manifest("Bad_Name"), "must be a DNS label"),
            (tenant_manifest(size="huge"), "spec.size"),
            (tenant_manifest(size="custom"), "size: custom requires quotas"),
            (tenant_manifest(components={"storage": {"capacity": "900Gi"}}), "exceeds the storage quota"),
            ("", "exactly one SOATenant"),
        ],
    )
    def test_bad_input_is_refused_with_a_precise_message(self, tmp_path: Path, content: Any, message: str) -> None:
        result = runner.invoke(app, ["tenant", "render", "-f", str(_write(tmp_path, content))])
        assert result.exit_code == 2
        assert message in _text(result.output)

    def test_missing_file_is_reported(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["tenant", "render", "-f", str(tmp_path / "nope.yaml")])
        assert result.exit_code == 2
        assert "cannot read" in result.output


def test_unreachable_cluster_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    monkeypatch.setenv("KUBECONFIG", str(_write(tmp_path, config, "kubeconfig")))
    result = runner.invoke(app, ["tenant", "list"])
    assert result.exit_code == 1
    assert "cannot reach the Kubernetes API" in _text(result.output)


def test_apply_waits_until_ready_and_list_and_get_show_it(
    cluster: Cluster, operator: OperatorProcess, kube_env: Path, tmp_path: Path
) -> None:
    cluster.kube.kubelet.auto = True
    result = runner.invoke(app, ["tenant", "apply", "-f", str(_write(tmp_path, tenant_manifest())), "--timeout", "30"])
    assert result.exit_code == 0, result.output
    assert "moitt is Ready" in result.output
    listing = runner.invoke(app, ["tenant", "list"])
    assert "moitt" in listing.output
    assert "Ready" in listing.output
    shown = runner.invoke(app, ["tenant", "get", "moitt"])
    assert "MessagingReady" in shown.output
    assert "https://moitt.soa.gov.pk" in shown.output
    as_yaml = yaml.safe_load(runner.invoke(app, ["tenant", "get", "moitt", "-o", "yaml"]).output)
    assert as_yaml["status"]["phase"] == "Ready"


def test_suspend_and_resume_wait_for_their_phase(cluster: Cluster, operator: OperatorProcess, kube_env: Path) -> None:
    cluster.provision()
    suspended = runner.invoke(app, ["tenant", "suspend", "moitt", "--timeout", "30"])
    assert suspended.exit_code == 0, suspended.output
    assert "moitt is Suspended" in suspended.output
    resumed = runner.invoke(app, ["tenant", "resume", "moitt", "--timeout", "30"])
    assert resumed.exit_code == 0, resumed.output
    assert "moitt is Ready" in resumed.output


def test_delete_refuses_protected_tenant_without_touching_it(cluster: Cluster, kube_env: Path) -> None:
    cluster.create_tenant(deletionProtection=True)
    result = runner.invoke(app, ["tenant", "delete", "moitt", "--yes"])
    assert result.exit_code == 1
    assert "deletionProtection: true" in _text(result.output)
    tenant = cluster.tenant()
    assert tenant is not None
    assert not tenant["metadata"].get("deletionTimestamp")


def test_delete_shows_policy_and_asks_before_deleting(cluster: Cluster, kube_env: Path) -> None:
    cluster.create_tenant(deletionPolicy="Delete")
    declined = runner.invoke(app, ["tenant", "delete", "moitt", "--no-wait"], input="n\n")
    assert "deletionPolicy Delete" in _text(declined.output)
    assert "EVERYTHING is deleted" in _text(declined.output)
    assert declined.exit_code == 1
    assert cluster.tenant() is not None
    confirmed = runner.invoke(app, ["tenant", "delete", "moitt", "--no-wait"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert cluster.tenant() is None


@pytest.mark.parametrize("command", ["get", "suspend", "resume", "delete"])
def test_unknown_tenant_is_reported(cluster: Cluster, kube_env: Path, command: str) -> None:
    args = ["tenant", command, "ghost"] + (["--yes"] if command == "delete" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "SOATenant 'ghost' not found" in _text(result.output)


def test_invalid_tenant_name_is_refused_before_any_call(kube_env: Path) -> None:
    result = runner.invoke(app, ["tenant", "get", "Not_A_Name"])
    assert result.exit_code == 2
    assert "is not a tenant name" in result.output
