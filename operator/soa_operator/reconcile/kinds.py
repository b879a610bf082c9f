"""The kinds the operator manages in a tenant namespace, and how it treats each."""

from __future__ import annotations

from typing import NamedTuple


class Kind(NamedTuple):
    api_version: str
    kind: str


NAMESPACE = Kind("v1", "Namespace")
SECRET = Kind("v1", "Secret")
PVC = Kind("v1", "PersistentVolumeClaim")
DEPLOYMENT = Kind("apps/v1", "Deployment")
STATEFULSET = Kind("apps/v1", "StatefulSet")
JOB = Kind("batch/v1", "Job")

# Kinds the chart renders: applied from the chart and pruned when the chart stops rendering them.
CHART_KINDS: tuple[Kind, ...] = (
    Kind("v1", "ResourceQuota"),
    Kind("v1", "LimitRange"),
    Kind("networking.k8s.io/v1", "NetworkPolicy"),
    Kind("v1", "ServiceAccount"),
    Kind("v1", "ConfigMap"),
    Kind("v1", "Service"),
    STATEFULSET,
    DEPLOYMENT,
    JOB,
    Kind("networking.k8s.io/v1", "Ingress"),
    Kind("policy/v1", "PodDisruptionBudget"),
)

# Jobs are immutable once created: a changed migration gets a new name, never an update.
CREATE_ONLY = {JOB}

WORKLOADS = (DEPLOYMENT, STATEFULSET)


def kind_of(obj: dict[str, object]) -> Kind:
    return Kind(str(obj["apiVersion"]), str(obj["kind"]))
