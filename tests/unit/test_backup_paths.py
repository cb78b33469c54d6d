"""The backup path registry: one entry per service a stack can export, nothing else decides."""

from __future__ import annotations

import pytest

from drkit.handlers import BACKUP_PATHS
from stackmodels.outputs import SERVICES_WITHOUT_CREDENTIALS, StoreService

pytestmark = pytest.mark.unit


def test_every_service_has_a_backup_path() -> None:
    assert set(BACKUP_PATHS) == set(StoreService)
    assert all(path.method for path in BACKUP_PATHS.values())


def test_managed_redis_is_not_backed_up_like_a_self_hosted_one() -> None:
    redis, elasticache = BACKUP_PATHS[StoreService.REDIS], BACKUP_PATHS[StoreService.ELASTICACHE]
    assert redis.build is not elasticache.build
    assert "BGSAVE" in redis.method and "CopySnapshot" in elasticache.method
    assert StoreService.ELASTICACHE in SERVICES_WITHOUT_CREDENTIALS
    assert StoreService.REDIS not in SERVICES_WITHOUT_CREDENTIALS
