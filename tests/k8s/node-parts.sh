#!/bin/sh
# Fetches what a real Kubernetes node runs besides kubelet and kube-proxy (tests/k8s/build.sh):
# containerd 1.7 (Debian trixie), runc and the CNI plugins (bookworm), with `apt-get download`
# through an apt configuration of its own (the system's sources and packages are not touched),
# unpacked with `dpkg -x` into the user's cache folder; and the pause image every pod's
# sandbox needs, built from tests/k8s/pause (no registry is reachable). Prints the folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mytom/kubernetes
# Pinned: a newer containerd or runc is a decision, not an accident of the day's mirror.
packages="containerd=1.7.24~ds1-6+deb13u1 runc=1.1.5+ds1-1+deb12u1 containernetworking-plugins=1.1.1+ds1-3+b5"
version=$(cat "$0" "$here/pause/main.go" "$here/pause_image.py" | sha256sum | cut -c1-12)
parts=$cache/node-$version
if [ ! -f "$parts/pause.tar" ]; then
    rm -rf "$parts.partial"
    apt=$parts.partial/apt
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$parts.partial/root"
    keys=/usr/share/keyrings/debian-archive-keyring.gpg
    printf 'deb [signed-by=%s] http://deb.debian.org/debian %s main\n' "$keys" trixie "$keys" bookworm \
        >"$apt/sources.list"
    set -- -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root
    apt-get "$@" -qq update
    # shellcheck disable=SC2086 # one word per package
    (cd "$apt/archives" && apt-get "$@" -qq download $packages)
    for deb in "$apt"/archives/*.deb; do
        dpkg -x "$deb" "$parts.partial/root"
    done
    rm -rf "$apt" "$parts.partial/root/usr/share"
    # The pause process: sleeps until stopped and reaps what is re-parented to it.
    (cd "$here/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$parts.partial/pause" .)
    python3 "$here/pause_image.py" "$parts.partial/pause" "$parts.partial/pause.tar"
    mv "$parts.partial" "$parts"
    find "$cache" -maxdepth 1 -name 'node-*' ! -path "$parts" -exec rm -rf {} +
fi
exec echo "$parts"
