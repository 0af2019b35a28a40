#!/bin/sh
# Builds stand-ins for the official python and postgres images from Debian's packages, for
# machines that reach no image registry. They exist for the tests only: a user's build pulls
# the official images. Prints the two image names as PYTHON_IMAGE=... and POSTGRES_IMAGE=...
# This machine's CA bundle goes into the stand-ins (HTTPS here passes through an intercepting
# proxy); it is copied at build time and never committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
debian=mytom-standin/debian:trixie
python=mytom-standin/python:3.13-trixie
postgres=mytom-standin/postgres:17-trixie

if ! docker image inspect "$debian" >/dev/null 2>&1; then
    rootfs=$(mktemp -d)
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    debootstrap --variant=minbase trixie "$rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$rootfs" -c . | docker import - "$debian" >/dev/null
    rm -rf "$rootfs"
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/python.Dockerfile" "$here/postgres.Dockerfile" "$here/postgres-entrypoint.sh" "$context/"
cat /etc/ssl/certs/ca-certificates.crt >"$context/host-ca.crt"
docker build -q --build-arg BASE="$debian" -f "$context/python.Dockerfile" -t "$python" "$context" >/dev/null
docker build -q --build-arg BASE="$debian" -f "$context/postgres.Dockerfile" -t "$postgres" "$context" >/dev/null
echo "PYTHON_IMAGE=$python"
echo "POSTGRES_IMAGE=$postgres"
