#!/bin/sh
# The web container: gunicorn. The `migrate` service has applied the migrations (and taken the
# pre-upgrade snapshot) before compose starts this one; `make serve` runs migrate.sh first.
set -eu
app=$(cd "$(dirname "$0")/.." && pwd)
exec gunicorn --config "$app/docker/gunicorn.conf.py" --chdir "$app" mytom.wsgi:application
