#!/bin/sh
# The web container: apply migrations (only web migrates, so jobs never race it), after a
# snapshot of the TOM when there are any to apply (an upgrade: `backup before-migrate` stops
# the start if that snapshot fails; BACKUP_BEFORE_MIGRATE=false skips it), create the first
# admin user if DJANGO_SUPERUSER_USERNAME is set, then serve with gunicorn.
set -eu
app=$(cd "$(dirname "$0")/.." && pwd)
python3 "$app/manage.py" backup before-migrate
python3 "$app/manage.py" migrate --no-input
if [ -n "${DJANGO_SUPERUSER_USERNAME:-}" ]; then
    python3 "$app/manage.py" ensure_superuser
fi
exec gunicorn --config "$app/docker/gunicorn.conf.py" --chdir "$app" mytom.wsgi:application
