"""Operations as plans of steps: restore, failover and drill build a plan; one executor runs it.

A plan is data: steps with dependencies, resolved into ordered layers; steps in a layer run in
parallel. Every step can describe itself with real ids, check whether it is already done, apply,
and verify. The executor prints the plan, asks before anything mutates (unless ``--yes``), journals
every event so an interrupted run resumes where it stopped, and ends with a timeline.

Every restore verb (``restore_<verb>.py``) keeps one contract (``verbs.py``); ``cli.py`` is what
each invoke task calls.
"""
