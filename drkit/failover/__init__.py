"""``invoke failover``, ``invoke failback`` and ``invoke status``: the region switch as a plan.

The on-call engineer's worst hour, as one command: preflight (standbys, replication lag against
each RPO, backup freshness, the DR cluster), then a plan of layered steps (fence the primary where
it answers, promote Aurora and ElastiCache, switch Kafka clients, scale the DR workloads, flip DNS
through Route 53's data plane, post-check), run by the shared executor with its journal, resume
and timeline. Every step checks whether it is already done, so a second run changes nothing.

An unplanned failover reads only the dr stack's outputs and calls only the dr region, except the
fence, which tries the primary with a 3-second connect timeout and no retries and counts
"unreachable" as done with a note.
"""
