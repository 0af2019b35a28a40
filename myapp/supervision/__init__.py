"""Running a child process bounded in time, for a job (`jobs run`) and for a queued task
(the cron program's task worker) alike:

  process    starting it: its own process group, killed with its parent, exit statuses
  bounded    one child seen to its end: output passed through with its tail kept, the
             timeout, SIGTERM then SIGKILL a kill grace later, why it was stopped, its outcome
  liveness   the heartbeat, the lost rule (no heartbeat for LOST_AFTER), this host, a pid alive
  output     what is kept of a child's output: its tail and its summary line
  backoff    when to start again a child that ended (supercronic, an alert stream's process)

It knows nothing of jobs, tasks or the database: the layers above record what it reports.
"""
