"""What the TOM's operators see of everything that runs unattended, put together: the jobs
(myapp/jobs), the queued tasks (myapp/task_queue) and the backups (myapp/backups), none of
which imports another; this layer sits above them.

  report    the overview and `jobs check`'s verdict (the cron container's health says the same)
  board     what the Jobs page and /api/jobs/ show of the jobs and backups
  metrics   /metrics for Prometheus
"""
