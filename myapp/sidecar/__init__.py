"""The cron container's program, `manage.py jobs cron`: one long-running process that
supervises everything the container does, each part small and on its own:

  crontab_file   checks each version of the crontab (supercronic -test) and records it
  supercronic    runs supercronic on the checked copy, again should it die
  catch_up       starts a `jobs run` for each job missed while no cron container ran
  run_now        starts a `jobs run` for each Run now asked for on the Jobs page
  tasks          runs the queued tasks (myapp/task_queue), each a `tasks run` process
  streams        runs each alert stream (myapp/streams) in a `streams listen` process,
                 restarted with backoff, paused and resumed from the Jobs page
  health         keeps every job's overdue state, and a heartbeat, in a file that the
                 container's health check reads without starting Django (health_file)
  processes      the program's children: started, reaped (orphans too), signalled
  program        the loop that ties them, and its stop on SIGTERM or SIGINT

Every job runs in a `jobs run` process of its own, every task in a `tasks run` one; this
program starts no thread and forks no job itself. This module imports nothing, so that the health check stays cheap.
"""
