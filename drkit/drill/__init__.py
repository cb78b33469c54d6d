"""``invoke drill``: a full DR drill with measured RTO and RPO against the objectives.

Writers keep trading while backups run on the configured schedules (time compressed); the seeds'
disasters strike; each store is restored and every row, key and record is checked against what
the writers wrote up to the recovery point.
"""
