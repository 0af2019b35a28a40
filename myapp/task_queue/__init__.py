"""The TOM's queued tasks (django-tasks' database backend), run by the cron container's
program with the guarantees of its jobs:

  queue     what waits, taking the next task for a worker, queuing a failed one again
  results   how each task ended, in the TOM's words: recorded, counted, lost tasks found
  execute   one task, in the process of its own that the worker starts (`tasks run ID`)
  board     what the Jobs page and /api/jobs/ show of the tasks (/metrics reads queue and results)
  sentry    a failed task as a Sentry event

The worker itself is a part of the cron program: myapp/sidecar/tasks.py.
"""
