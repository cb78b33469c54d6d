"""What a Kafka backup looks like to the cluster, shared by the engine and the IAM that allows it.

The backup's consumer (``drkit.backup.kafka.reader``) never joins a group or commits, but
librdkafka needs a ``group.id``: a throwaway one with this prefix. The backup CronJob's IAM policy
(``components.backup_iam``) lets it describe groups of this prefix only, so a backup can never
read or move an application's consumer group.
"""

from __future__ import annotations

READER_GROUP_PREFIX = "drkit-reader-"
