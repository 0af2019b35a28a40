#!/bin/sh
# Installs Debian's Docker engine if missing and starts dockerd in the background.
# Usage: start-engine.sh STATE_DIR. Writes STATE_DIR/dockerd.pid and STATE_DIR/dockerd.log;
# stop the engine with `kill -TERM "$(cat STATE_DIR/dockerd.pid)"`.
set -eu
state=$1
mkdir -p "$state"

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker.io debootstrap >/dev/null
fi

if docker info >/dev/null 2>&1; then
    echo "start-engine: an engine is already running; using it" >&2
    exit 0
fi
# systemd is not PID 1 on these machines, so the daemon is started by hand.
nohup dockerd >"$state/dockerd.log" 2>&1 &
echo $! >"$state/dockerd.pid"
tries=0
until docker info >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
        echo "start-engine: dockerd did not answer within 30 s; see $state/dockerd.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "start-engine: dockerd $(cat "$state/dockerd.pid") is up" >&2
