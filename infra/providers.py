"""The explicit providers of a stack, named so every part of the program can share them.

Default providers are disabled (``pulumi:disable-default-providers``), so each resource names its
provider. The program creates each provider once (``define_stack``) and passes it down: a second
call with the same config would declare a second provider with the same name, which Pulumi
rejects, so nothing below the program calls these functions itself.
"""

from __future__ import annotations

import pulumi_aws as aws
import pulumi_kubernetes as k8s

from stackmodels import StackConfig


def aws_provider_name(region: str) -> str:
    return f"aws-{region}"


def aws_provider(region: str) -> aws.Provider:
    """The AWS provider of one region (``aws-us-east-1``)."""
    return aws.Provider(aws_provider_name(region), region=region)


def kubernetes_provider_name(config: StackConfig) -> str:
    """``k8s-<context>``, or ``k8s-<region>`` for the kubeconfig's current context."""
    return f"k8s-{config.kubernetes.context or config.region}"


def kubernetes_provider(config: StackConfig) -> k8s.Provider:
    """The provider of this region's cluster (the PrometheusRule, the dashboard, the CronJobs).

    Server-side apply, so objects other tools also touch (a CRD-managed PrometheusRule, a
    ConfigMap a sidecar reads) merge field by field instead of being overwritten.
    """
    return k8s.Provider(
        kubernetes_provider_name(config),
        context=config.kubernetes.context,
        enable_server_side_apply=True,
    )
