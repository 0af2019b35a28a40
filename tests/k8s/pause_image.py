"""Packs the pause binary into an image archive `ctr images import` loads (Docker's `save`
format: a layer tarball, its config and a manifest), since no registry is reachable.
Usage: pause_image.py PAUSE_BINARY ARCHIVE."""
import hashlib
import io
import json
import sys
import tarfile

IMAGE = 'mytom.local/pause:1'


def tar_member(archive, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def main(binary, destination):
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode='w') as archive, open(binary, 'rb') as pause:
        tar_member(archive, 'pause', pause.read(), mode=0o755)
    layer = layer.getvalue()
    config = json.dumps({
        'architecture': 'amd64', 'os': 'linux',
        'config': {'Entrypoint': ['/pause'], 'User': '65535:65535'},
        'rootfs': {'type': 'layers', 'diff_ids': ['sha256:' + hashlib.sha256(layer).hexdigest()]},
    }).encode()
    manifest = json.dumps([{'Config': 'config.json', 'RepoTags': [IMAGE], 'Layers': ['layer.tar']}]).encode()
    with tarfile.open(destination, mode='w') as archive:
        tar_member(archive, 'layer.tar', layer)
        tar_member(archive, 'config.json', config)
        tar_member(archive, 'manifest.json', manifest)


if __name__ == '__main__':
    main(*sys.argv[1:])
