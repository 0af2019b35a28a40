#!/bin/sh
# The `migrate` service: runs once before web and cron start (they wait for it to complete).
# A snapshot of the TOM first when there are migrations to apply (an upgrade: `backup
# before-migrate` stops here if it fails; BACKUP_BEFORE_MIGRATE=false skips it), then the
# migrations, then the first admin if DJANGO_SUPERUSER_USERNAME is set. Only this service and
# cron hold the backup repository and its passphrase: web, the container facing the internet,
# has neither.
set -eu
app=$(cd "$(dirname "$0")/.." && pwd)
python3 "$app/manage.py" backup before-migrate
if [ -z "${DJANGO_SUPERUSER_USERNAME:-}" ]; then
    exec python3 "$app/manage.py" migrate --no-input
fi
python3 "$app/manage.py" migrate --no-input
exec python3 "$app/manage.py" ensure_superuser
