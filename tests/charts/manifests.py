"""Reading rendered chart output: manifests, pod specs and the objects in them.

Pure functions over the dicts that yaml.safe_load_all gives; the fixtures in conftest render.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

Manifest = dict[str, Any]

# libyaml's safe loader: the same documents as yaml.safe_load_all, ten times faster
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
# the volume types Pod Security "restricted" admits
RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "CustomResourceDefinition",
    }
)


def manifests_from(rendered: dict[str, str]) -> list[Manifest]:
    """Every object of a helm_python render, in template order (NOTES.txt is not a manifest)."""
    objects: list[Manifest] = []
    for template in sorted(rendered):
        if template.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.load_all(rendered[template], Loader=_SAFE_LOADER) if doc)
    return objects


def kind_names(objects: list[Manifest]) -> set[tuple[str, str]]:
    return {(obj["kind"], obj["metadata"]["name"]) for obj in objects}


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The one object of ``kind`` named ``name``; fails the test with the names there are."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    present = sorted(n for k, n in kind_names(objects) if k == kind)
    raise AssertionError(f"no {kind} {name!r} rendered; {kind} objects: {present}")


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def is_hook(obj: Manifest) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def pod_spec(obj: Manifest) -> dict[str, Any] | None:
    """The pod spec of a Pod or a workload; None for objects that run no pods."""
    if obj["kind"] == "Pod":
        spec: dict[str, Any] = obj["spec"]
        return spec
    if obj["kind"] in WORKLOAD_KINDS:
        template: dict[str, Any] = obj["spec"]["template"]["spec"]
        return template
    return None


def pod_specs(objects: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    """("Kind/name", pod spec) of every object that runs pods."""
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield f"{obj['kind']}/{obj['metadata']['name']}", spec


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env by name: the literal value or the valueFrom mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec the Pod Security Standard "restricted" (latest) would refuse."""
    found: list[str] = []
    pod_ctx = spec.get("securityContext") or {}
    for host_field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host_field):
            found.append(f"pod: {host_field}")
    for volume in spec.get("volumes", []):
        found += [f"volume {volume['name']}: {t}" for t in set(volume) - {"name"} - RESTRICTED_VOLUME_TYPES]
    if pod_ctx.get("sysctls"):
        found.append("pod: sysctls")
    if (pod_ctx.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        found.append("pod: seccompProfile is not RuntimeDefault")
    if pod_ctx.get("runAsUser") == 0:
        found.append("pod: runAsUser 0")
    for c in containers(spec):
        ctx = c.get("securityContext") or {}
        where = f"container {c['name']}"
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            found.append(f"{where}: runAsNonRoot is not true")
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) in (0, None):
            found.append(f"{where}: no non-zero runAsUser")
        if ctx.get("privileged") or ctx.get("procMount", "Default") != "Default":
            found.append(f"{where}: privileged or unmasked /proc")
        if ctx.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = ctx.get("capabilities") or {}
        if caps.get("drop") != ["ALL"]:
            found.append(f"{where}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{where}: adds capabilities {caps['add']}")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccompProfile is not RuntimeDefault")
        found += [f"{where}: hostPort {p['hostPort']}" for p in c.get("ports", []) if p.get("hostPort")]
    return found
