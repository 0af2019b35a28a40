#!/bin/sh
# The cron container: one program, `manage.py jobs cron` (myapp/sidecar), runs the crontab
# (CRONTAB, default /etc/tom/crontab) with supercronic as its child, checks and loads each
# edit live, catches up the jobs missed while no cron container ran, runs the Jobs page's
# Run now requests, and keeps the state the container's health check reads. Every job runs
# through `jobs run`. SIGTERM lets running jobs end; then the program exits.
set -eu
cd "$(dirname "$0")/.."
exec python3 manage.py jobs cron
