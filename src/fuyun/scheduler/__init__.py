"""Network-aware placement: filters rule hosts out with a reason, weighers score the rest.

Pure and in memory: the scheduler reads a :class:`~fuyun.scheduler.model.Cluster`
snapshot and never opens a session. A placement becomes real only when the
service claims it in the database.
"""
