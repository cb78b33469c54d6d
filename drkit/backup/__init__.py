"""The backup engine: one code path for the CronJobs, ``invoke backup.*`` and the drill."""
