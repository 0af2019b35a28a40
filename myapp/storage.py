"""Where a data product's file lives: on this machine's disk (filesystem storage, the default
for compose), or only in an object store (AWS_STORAGE_BUCKET_NAME), which has no local path."""
from pathlib import Path


def local_path(storage, name):
    """The path on disk of the file stored as name, or None for a storage without local paths."""
    try:
        return Path(storage.path(name))
    except NotImplementedError:  # django-storages' S3 storage, and any remote one
        return None
