#!/usr/bin/env bash
# The web server and the cron sidecar on this machine, without Docker: the containers' own
# start scripts, run from this checkout on the embedded SQLite database under DATA_DIR
# (default ./data). supercronic is taken from PATH. Ctrl-C stops both.
set -eu
app=$(cd "$(dirname "$0")/.." && pwd)
export CRONTAB="${CRONTAB:-$app/crontab}"
export STREAMS_FILE="${STREAMS_FILE:-$app/streams.toml}"
export DATA_DIR="${DATA_DIR:-$app/data}"
export PATH="$app/.venv/bin:$PATH"
# A laptop's web server answers on this machine only, unless told otherwise.
export WEB_BIND="${WEB_BIND:-127.0.0.1:8000}"
export PYTHONUNBUFFERED=1
command -v supercronic >/dev/null || {
    echo "run-local: supercronic is not on PATH: go install github.com/aptible/supercronic@v0.2.48" >&2
    exit 1
}
# The same generated secrets as in the containers, kept under DATA_DIR.
"$app/docker/init-secrets.sh" "$DATA_DIR/secrets" >/dev/null
export SECRET_KEY_FILE="$DATA_DIR/secrets/secret_key"
# The image collects static files when it is built; here, before each start.
python3 "$app/manage.py" collectstatic --no-input -v 0

"$app/docker/migrate.sh"
"$app/docker/start-web.sh" &
web=$!
trap 'kill -TERM "$web" ${cron:+"$cron"} 2>/dev/null || true' INT TERM EXIT
# Jobs start once the web server answers.
until python3 "$app/docker/healthcheck.py" web 2>/dev/null; do
    kill -0 "$web" 2>/dev/null || { echo "run-local: the web server stopped" >&2; exit 1; }
    sleep 1
done
"$app/docker/start-cron.sh" &
cron=$!
# Not exec: two processes run here, and when either stops, both do.
wait -n "$web" "$cron"
