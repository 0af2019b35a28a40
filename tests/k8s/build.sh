#!/bin/sh
# Builds the Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl), Helm and kwok from the Go module proxy, pinned by tools/go.mod
# and tools/go.sum, into the user's cache folder; prints the folder holding the binaries.
# Cold, this takes about 10 minutes on 2 cores; with the cache kept, a second.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mytom/kubernetes
version=$(cat "$here/tools/go.mod" "$here/tools/go.sum" "$0" | sha256sum | cut -c1-12)
bin=$cache/bin-$version
if [ ! -x "$bin/kwok" ]; then
    export GOMODCACHE="$cache/go-mod" GOCACHE="$cache/go-build" CGO_ENABLED=0
    # Without these they say v0.0.0-master, and Helm refuses charts that set a kubeVersion.
    k8s="-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1"
    k8s="$k8s -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/client-go/pkg/version.gitVersion=v1.37.2"
    k8s="$k8s -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37"
    helm="-X helm.sh/helm/v3/internal/version.version=v3.22.0"
    # Offline (lint, template), Helm assumes this Kubernetes, not its default 1.20.
    for package in chartutil lint/rules; do
        helm="$helm -X helm.sh/helm/v3/pkg/$package.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$package.k8sVersionMinor=37"
    done
    rm -rf "$bin.partial"
    (cd "$here/tools" && go build -ldflags "-s -w $k8s $helm" -o "$bin.partial/" \
        go.etcd.io/etcd/server/v3 helm.sh/helm/v3/cmd/helm k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
        sigs.k8s.io/kwok/cmd/kwok)
    mv "$bin.partial/server" "$bin.partial/etcd"
    # kwok's stages (how simulated nodes and pods change state) ship in its module.
    cp -r "$GOMODCACHE/sigs.k8s.io/kwok@v0.8.0/kustomize/stage" "$bin.partial/kwok-stages"
    chmod -R u+w "$bin.partial/kwok-stages"
    mv "$bin.partial" "$bin"
    # Binaries of other versions of this script or of the pins are not used again.
    find "$cache" -maxdepth 1 -name 'bin-*' ! -path "$bin" -exec rm -rf {} +
fi
exec echo "$bin"
