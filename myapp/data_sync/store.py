"""Storing downloaded data products so that a row never exists without its complete file.

Workers stream each file into DATA_DIR/incoming (same volume as MEDIA_ROOT) and check it
against its announced length; the engine's thread then commits a batch of them at once: in
one transaction it writes their DataProduct rows and renames their files into MEDIA_ROOT (or
uploads them to the bucket, with object storage), and the transaction commits last. A run
killed at any point leaves at worst complete or partial files in incoming/ (removed by the
next run) or complete files with no row (overwritten by the next run, which downloads those
products again). The queries of a commit do not depend on how many products it holds.

DryRunStore is the same interface writing nothing: `save_data --dry-run`.
"""
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from tom_dataproducts.models import DataProduct

from myapp.data_sync.failures import ProductError
from myapp.models import ProductListing
from myapp.storage import local_path

CHUNK_BYTES = 64 * 1024
PARTIAL_SUFFIX = '.part'


@dataclass
class Fetched:
    """A product of a record whose complete file waits in incoming/ (None in a dry run)."""

    record: object
    product: object
    partial: Path | None
    size: int


class ProductStore:
    def __init__(self, incoming_dir):
        self.incoming_dir = Path(incoming_dir)

    def remove_partial_downloads(self):
        """Deletes what interrupted runs left in incoming/; returns how many files.
        Only call this while holding the save_data lock: a running download owns its file."""
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        leftovers = list(self.incoming_dir.glob(f'*{PARTIAL_SUFFIX}'))
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def stored_ids(self, product_ids):
        """Those of product_ids that have a row and a file, in one query. A row left without
        its file (by an earlier failure, or the upstream recipe) does not count: it is retried."""
        rows = DataProduct.objects.filter(product_id__in=product_ids).exclude(data='').exclude(data=None)
        return {row.product_id for row in rows.only('product_id', 'data') if row.data.storage.exists(row.data.name)}

    def fetch(self, session, record, product):
        """Downloads one product into incoming/ (a worker thread: no database here)."""
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=self.incoming_dir, suffix=PARTIAL_SUFFIX)
        try:
            with os.fdopen(fd, 'wb') as out:
                size = _download(session, product, out)
            os.chmod(partial, settings.FILE_UPLOAD_PERMISSIONS or 0o644)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return Fetched(record, product, Path(partial), size)

    def discard(self, fetched):
        for item in fetched:
            item.partial.unlink(missing_ok=True)

    def commit(self, fetched):
        """Rows for the fetched products, their files in place, all in one transaction;
        returns the saved DataProducts in the order given."""
        if not fetched:
            return []
        field = DataProduct._meta.get_field('data')
        ids = [item.product.product_id for item in fetched]
        placed = []
        try:
            with transaction.atomic():
                existing = {row.product_id: row
                            for row in DataProduct.objects.select_for_update().filter(product_id__in=ids)}
                rows = [existing.get(item.product.product_id)
                        or DataProduct(product_id=item.product.product_id, target=item.record.target,
                                       observation_record=item.record)
                        for item in fetched]
                names = [field.generate_filename(row, item.product.filename)
                         for row, item in zip(rows, fetched, strict=True)]
                # Names another product's row holds; an unclaimed file at a name is what a run killed
                # between rename and commit left: it is replaced.
                unavailable = set(DataProduct.objects.filter(data__in=names).exclude(product_id__in=ids)
                                  .values_list('data', flat=True))
                for row, item, name in zip(rows, fetched, names, strict=True):
                    name = _free_name(field.storage, name, unavailable)
                    row.data.name, undo = _place(field.storage, item.partial, name)
                    placed.append(undo)
                    unavailable.add(row.data.name)
                DataProduct.objects.bulk_create([row for row in rows if row.pk is None])
                now = timezone.now()
                updated = [row for row in rows if row.pk is not None]
                for row in updated:
                    row.modified = now
                DataProduct.objects.bulk_update(updated, ['data', 'modified'])
        except BaseException:
            for undo in placed:
                undo()  # the rows did not commit: their files must not stay
            raise
        return rows

    def record_listings(self, outcomes):
        """What each record's listing found and whether it all succeeded, in one query."""
        now = timezone.now()
        rows = [ProductListing(record_id=outcome.record.pk, first_listed_at=now, listed_at=now,
                               succeeded=outcome.error is None, products=outcome.listed,
                               error=outcome.error or '')
                for outcome in outcomes]
        ProductListing.objects.bulk_create(rows, update_conflicts=True, unique_fields=['record'],
                                           update_fields=['listed_at', 'succeeded', 'products', 'error'])


class DryRunStore(ProductStore):
    """Reads what is stored; downloads, writes and records nothing."""

    def remove_partial_downloads(self):
        return 0

    def fetch(self, session, record, product):
        return Fetched(record, product, None, 0)

    def discard(self, fetched):
        pass

    def commit(self, fetched):
        return [None] * len(fetched)

    def record_listings(self, outcomes):
        pass


def _download(session, product, out):
    # No Authorization header: archive download URLs are pre-signed, and S3 refuses a
    # request that carries both a signature and a token.
    with session.get(product.url, stream=True) as response:
        response.raise_for_status()
        announced = response.headers.get('Content-Length')
        size = 0
        for chunk in response.iter_content(CHUNK_BYTES):
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    if announced is not None and announced.isdigit() and size != int(announced):
        raise ProductError(f'{product.filename}: got {size} of {announced} bytes')
    return size


def _place(storage, partial, name):
    """Puts a complete file at name in the storage; returns the name it got and how to undo
    it. On disk a rename; in an object store an upload (an object exists only once all of it
    has arrived, so a kill mid-upload leaves none)."""
    path = local_path(storage, name)
    if path is None:
        with open(partial, 'rb') as data:
            name = storage.save(name, File(data))
        Path(partial).unlink()
        return name, lambda: storage.delete(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, path)
    return name, lambda: path.unlink(missing_ok=True)


def _free_name(storage, name, unavailable):
    """name, unless another product holds it; else a free variant, as Django's storage makes."""
    directory, filename = os.path.split(name)
    root, extension = os.path.splitext(filename)
    candidate = name
    while candidate in unavailable or (candidate != name and storage.exists(candidate)):
        candidate = os.path.join(directory, storage.get_alternative_name(root, extension))
    return candidate
