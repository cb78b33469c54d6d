"""Container image repositories: the same repositories in each region, images replicated by ECR.

prod holds the registry-level replication configuration (every listed repository to the dr
region); dr creates the same repositories itself, so replicated images land in repositories with
this component's settings (scan on push, immutable tags, keep the last 50 images) rather than in
ones ECR would create with defaults. Images are encrypted with AES-256 (ECR-managed): the vault key
stays scoped to backups, and images carry no secrets.
"""

from __future__ import annotations

from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import PACKAGE, ComponentArgs, child_opts, require_provider, to_json

ECR_REPOSITORY = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"


def keep_last_images_policy(count: int) -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the last {count} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": count,
                },
                "action": {"type": "expire"},
            }
        ]
    }


class ContainerRegistryArgs(ComponentArgs):
    account_id: str = Field(pattern=r"^\d{12}$")
    repositories: list[Annotated[str, Field(pattern=ECR_REPOSITORY, max_length=256)]] = Field(
        default_factory=list
    )
    keep_images: int = Field(default=50, ge=1)
    replicate_to_regions: list[str] = Field(default_factory=list)
    """Set in prod only: the registry-level replication configuration lives in the source."""
    tags: dict[str, str] = Field(default_factory=dict)


class ContainerRegistry(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:registry:ContainerRegistry", name, None, opts)
        provider = require_provider(opts, "ContainerRegistry")
        self.repositories: dict[str, aws.ecr.Repository] = {}
        self.lifecycle_policies: dict[str, aws.ecr.LifecyclePolicy] = {}
        for repository in args.repositories:
            slug = repository.replace("/", "-").replace(".", "-").replace("_", "-")
            repo = aws.ecr.Repository(
                f"{name}-{slug}",
                name=repository,
                image_scanning_configuration={"scan_on_push": True},
                image_tag_mutability="IMMUTABLE",
                encryption_configurations=[{"encryption_type": "AES256"}],
                force_delete=False,
                tags=args.tags,
                opts=child_opts(self, provider),
            )
            self.repositories[repository] = repo
            self.lifecycle_policies[repository] = aws.ecr.LifecyclePolicy(
                f"{name}-{slug}-lifecycle",
                repository=repo.name,
                policy=to_json(keep_last_images_policy(args.keep_images)),
                opts=child_opts(self, provider),
            )
        self.replication: aws.ecr.ReplicationConfiguration | None = None
        if args.replicate_to_regions and args.repositories:
            self.replication = aws.ecr.ReplicationConfiguration(
                f"{name}-replication",
                replication_configuration={
                    "rules": [
                        {
                            "destinations": [
                                {"region": region, "registry_id": args.account_id}
                                for region in args.replicate_to_regions
                            ],
                            "repository_filters": [
                                {"filter": repository, "filter_type": "PREFIX_MATCH"}
                                for repository in args.repositories
                            ],
                        }
                    ]
                },
                opts=child_opts(self, provider),
            )
        self.repository_urls = {n: r.repository_url for n, r in self.repositories.items()}
        self.register_outputs({"repository_urls": self.repository_urls})
