#!/bin/sh
# Runs a command with DATABASE_URL naming a throwaway PostgreSQL server on 127.0.0.1, so the
# suite exercises the same code on a real PostgreSQL. Needs Debian's postgresql package.
set -eu

bindir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -d "$bindir" ]; then
    echo "with_postgres: PostgreSQL server binaries not found; apt-get install postgresql" >&2
    exit 1
fi
# initdb refuses to run as root; the package's postgres user owns the cluster then.
as_owner=""
if [ "$(id -u)" = 0 ]; then as_owner="runuser -u postgres --"; fi

dir=$(mktemp -d)
chmod 755 "$dir"
[ -z "$as_owner" ] || chown postgres "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

$as_owner "$bindir/initdb" -D "$dir/data" -U tom --auth=trust >/dev/null
$as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null
# Not exec: the server must be stopped and its files removed once the command is done.
trap '$as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; rm -rf "$dir"' EXIT

DATABASE_URL="postgres://tom@127.0.0.1:$port/tom" "$@"
