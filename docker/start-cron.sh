#!/bin/sh
# The cron container: run the crontab with supercronic, and let edits of it take effect live.
#
# supercronic runs a private copy of the crontab. A watcher polls the crontab (CRONTAB,
# default /etc/tom/crontab) and, when it changes, checks the new version with
# `supercronic -test`: a valid one replaces the copy (by rename, which supercronic's inotify
# sees); a bad one is rejected with a log line naming it, and the previous schedule keeps
# running. Polling works whatever way the file was saved and through any kind of mount.
#
# Commands in the crontab name the image's paths (/app/...). Run outside the image, with
# APP_DIR set to a checkout, /app/ in the crontab means APP_DIR/.
set -eu
source=${CRONTAB:-/etc/tom/crontab}
app=${APP_DIR:-/app}
poll=${CRONTAB_POLL_SECONDS:-2}
work=$(mktemp -d)
active="$work/crontab"

log() {
    echo "cron: $*"
}

# Writes the crontab, with /app/ mapped to APP_DIR, to $1; fails if it cannot be read.
prepare() {
    sed "s#/app/#$app/#g" "$source" >"$1"
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
        prepare "$work/candidate" 2>/dev/null || continue
        if reason=$(check "$work/candidate"); then
            mv -f "$work/candidate" "$active"
            log "$source changed: new schedule loaded"
        else
            log "$source change rejected, the previous schedule keeps running: $reason" >&2
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
log "running $source ($(grep -cE '^[[:space:]]*[0-9*@]' "$active") job(s)); edits are checked and loaded live"
supercronic=$$
watch &
exec supercronic -inotify "$active"
