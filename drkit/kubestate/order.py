"""The order a namespace's state is restored in: an explicit priority list, a reason per entry.

As Velero orders a restore, what others refer to comes first: the namespace, the definitions of
custom kinds, identities and policies, configuration, storage, services, then the workloads that
use all of them, then routes, and custom resources last. The backup writes its archive in this
same order, so a restore is one pass and a priority's objects are contiguous in the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from drkit.kubestate.api import CRDS, NAMESPACES


@dataclass(frozen=True)
class Priority:
    name: str
    """Names the restore step (``restore.config``)."""
    resources: tuple[str, ...]
    """Resource keys (``deployments.apps``) in the order they restore within the priority."""
    reason: str
    catch_all: bool = False
    """Built-in kinds that no other entry names."""
    custom: bool = False
    """Custom resources (served from a CustomResourceDefinition)."""


PRIORITIES: tuple[Priority, ...] = (
    Priority(
        "namespace",
        (NAMESPACES.key,),
        "every other object lives in it: created first, under the target name when renamed",
    ),
    Priority(
        "crds",
        (CRDS.key,),
        "a custom resource can only be created once its definition is Established",
    ),
    Priority(
        "access",
        (
            "serviceaccounts",
            "roles.rbac.authorization.k8s.io",
            "rolebindings.rbac.authorization.k8s.io",
            "limitranges",
            "resourcequotas",
            "networkpolicies.networking.k8s.io",
        ),
        "identities, permissions, limits and network policies: a pod is admitted, run and "
        "isolated under rules that must exist before it starts",
    ),
    Priority(
        "config",
        ("configmaps", "secrets"),
        "configuration that pods mount or read at start: a pod whose ConfigMap or Secret is "
        "missing does not start",
    ),
    Priority(
        "storage",
        ("persistentvolumeclaims",),
        "claims bind (or provision) before the pods that mount them are scheduled",
    ),
    Priority(
        "services",
        ("services",),
        "stable names and addresses before the workloads that register behind them and the "
        "clients that resolve them",
    ),
    Priority(
        "workloads",
        (
            "deployments.apps",
            "statefulsets.apps",
            "daemonsets.apps",
            "replicasets.apps",
            "replicationcontrollers",
            "pods",
            "podtemplates",
            "cronjobs.batch",
            "jobs.batch",
            "horizontalpodautoscalers.autoscaling",
            "poddisruptionbudgets.policy",
        ),
        "started once everything they reference exists, so no pod crash-loops on a missing "
        "ConfigMap, claim or service account",
    ),
    Priority(
        "traffic",
        ("ingresses.networking.k8s.io",),
        "routes are opened last among the built-ins, to services whose workloads are in place",
    ),
    Priority(
        "other",
        (),
        "other built-in kinds: nothing above refers to them",
        catch_all=True,
    ),
    Priority(
        "custom-resources",
        (),
        "last: their definitions are Established and what they refer to exists, so an "
        "operator reconciling them finds its inputs",
        custom=True,
    ),
)

BY_NAME = {priority.name: priority for priority in PRIORITIES}


def rank(key: str, custom: bool) -> tuple[int, int, str]:
    """Sort key of a resource: (priority index, position within it, key)."""
    for index, priority in enumerate(PRIORITIES):
        if custom and priority.custom:
            return index, 0, key
        if not custom and key in priority.resources:
            return index, priority.resources.index(key), key
    catch_all = next(i for i, p in enumerate(PRIORITIES) if p.catch_all)
    return catch_all, 0, key


def priority_of(key: str, custom: bool) -> Priority:
    return PRIORITIES[rank(key, custom)[0]]
