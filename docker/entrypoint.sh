#!/bin/sh
# Entrypoint of the web and cron containers: wait (bounded) for the database, then run the
# container's command. DB_WAIT_SECONDS bounds the wait (default 60).
set -eu
python3 /app/manage.py wait_for_db --timeout "${DB_WAIT_SECONDS:-60}"
exec "$@"
