#!/bin/sh
# The cron container: supercronic runs the crontab, whose jobs go through the job runtime
# (`python manage.py jobs run ...`), and edits of the crontab take effect live.
#
# supercronic runs a private copy of the crontab (CRONTAB, default /etc/tom/crontab) with two
# lines of ours before it: CRON_TZ=UTC, so that schedules are in UTC unless the crontab sets
# CRON_TZ (supercronic would take the container's TZ), and SENTRY_DSN, which reaches the jobs
# that way only: in supercronic's own environment it would report every failure a second time.
# A watcher polls the crontab and checks each change with `supercronic -test`: a valid one
# replaces the copy (by rename, which supercronic's inotify sees), a bad one is rejected with
# a log line naming it while the previous schedule keeps running. Polling works whatever way
# the file was saved and through any kind of mount. Every schedule loaded and every edit
# rejected is recorded in the database (`jobs loaded`, `jobs rejected`) for `jobs check`,
# `jobs list` and the web container. At start, `jobs catch-up` runs each job whose last run
# was missed while no cron container ran. `jobs serve-requests` runs the jobs asked for with
# the Jobs page's Run now, within seconds (restarted should it ever stop).
set -eu
source=${CRONTAB:-/etc/tom/crontab}
app=$(cd "$(dirname "$0")/.." && pwd)
poll=${CRONTAB_POLL_SECONDS:-2}
sentry_dsn=${SENTRY_DSN:-}
work=$(mktemp -d)
active="$work/crontab"

log() {
    echo "cron: $*"
}

manage() {
    python3 "$app/manage.py" "$@"
}

# Copies the crontab to $1.source and writes supercronic's version of it to $1.
prepare() {
    cp "$source" "$1.source" 2>/dev/null || return 1
    {
        echo 'CRON_TZ=UTC'
        if [ -n "$sentry_dsn" ]; then echo "SENTRY_DSN=$sentry_dsn"; fi
        cat "$1.source"
    } >"$1"
}

# Checks $1 with supercronic; on failure prints its reason (the bad line) on stdout.
check() {
    if out=$(supercronic -test "$1" 2>&1); then return 0; fi
    printf '%s\n' "$out" | sed -n 's/.*msg="\(.*\)".*/\1/p' | grep -v 'reaping' | tail -n 1
    return 1
}

# Runs in the background until supercronic, which takes this shell's PID by exec, is gone.
watch() {
    seen=$(cksum <"$source")
    while sleep "$poll" && kill -0 "$supercronic" 2>/dev/null; do
        # A failed read is an editor half-way through a save: look again next time.
        now=$(cksum <"$source" 2>/dev/null) || continue
        [ "$now" != "$seen" ] || continue
        seen=$now
        prepare "$work/candidate" || continue
        if reason=$(check "$work/candidate"); then
            mv -f "$work/candidate.source" "$active.source"
            mv -f "$work/candidate" "$active"
            log "$source changed: new schedule loaded"
            manage jobs loaded "$active.source" >/dev/null || log "the new schedule could not be recorded" >&2
        else
            log "$source change rejected, the previous schedule keeps running: $reason" >&2
            manage jobs rejected "$work/candidate.source" "$reason" >/dev/null ||
                log "the rejected edit could not be recorded" >&2
        fi
    done
}

if ! prepare "$active"; then
    log "cannot read the crontab $source" >&2
    exit 1
fi
if ! reason=$(check "$active"); then
    log "$source is not a valid crontab: $reason" >&2
    exit 1
fi
log "running $source ($(grep -cE '^[[:space:]]*[0-9*@]' "$active.source") job(s)); edits are checked and loaded live"
supercronic=$$
# Recorded before supercronic starts, so that its first runs find their schedule (their cron
# tick, their Sentry monitor); the catch-up, which may take long, runs beside it.
manage jobs loaded "$active.source" || log "the schedule could not be recorded" >&2
manage jobs catch-up &
watch &
(
    while kill -0 "$supercronic" 2>/dev/null; do
        manage jobs serve-requests --while-pid "$supercronic" || log "the Run now poller stopped; restarting it" >&2
        sleep 5
    done
) &
# Jobs run from the app folder, with the image's Python first on PATH: `python manage.py ...`.
cd "$app"
exec env -u SENTRY_DSN TOM_JOBS_TRIGGER=schedule supercronic -inotify "$active"
