"""Storing downloaded data products so that a row never exists without its complete file.

A file is streamed into DATA_DIR/incoming (same volume as MEDIA_ROOT), checked against its
announced length, renamed into MEDIA_ROOT inside the transaction that writes its DataProduct
row, and the transaction commits last. A run killed at any point leaves at worst a partial
file in incoming/ (removed by the next run) or a complete file with no row (overwritten by
the next run, which downloads that product again).
"""
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from tom_dataproducts.models import DataProduct

from myapp.failures import ProductError

CHUNK_BYTES = 64 * 1024
PARTIAL_SUFFIX = '.part'


class ProductStore:
    def __init__(self, session, incoming_dir):
        self.session = session
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
        """Those of product_ids that have a row and a file. A row left without its file
        (by an earlier failure, or the upstream recipe) does not count: it is retried."""
        rows = DataProduct.objects.filter(product_id__in=product_ids).exclude(data='').exclude(data=None)
        return {row.product_id for row in rows if row.data.storage.exists(row.data.name)}

    def download(self, record, product):
        """Fetches one product and stores it with its row; returns the bytes written."""
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=self.incoming_dir, suffix=PARTIAL_SUFFIX)
        try:
            with os.fdopen(fd, 'wb') as out:
                size = self._fetch(product, out)
            os.chmod(partial, settings.FILE_UPLOAD_PERMISSIONS or 0o644)
            self._commit(record, product, partial)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return size

    def _fetch(self, product, out):
        # No Authorization header: archive download URLs are pre-signed, and S3 refuses a
        # request that carries both a signature and a token.
        with self.session.get(product.url, stream=True) as response:
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

    def _commit(self, record, product, partial):
        placed = None
        try:
            with transaction.atomic():
                row = DataProduct.objects.select_for_update().filter(product_id=product.product_id).first()
                if row is None:
                    row = DataProduct(product_id=product.product_id, target=record.target,
                                      observation_record=record)
                field = DataProduct._meta.get_field('data')
                name = self._free_name(row, field.generate_filename(row, product.filename))
                row.data.name = name
                row.save()
                placed = Path(field.storage.path(name))
                placed.parent.mkdir(parents=True, exist_ok=True)
                os.replace(partial, placed)
        except BaseException:
            if placed is not None and placed.exists() and not Path(partial).exists():
                placed.unlink()  # the row did not commit: its file must not stay either
            raise

    @staticmethod
    def _free_name(row, name):
        """name, unless another product's file is there. An unclaimed file at name is what
        a run killed between rename and commit left: it is replaced."""
        storage = DataProduct._meta.get_field('data').storage
        if storage.exists(name) and DataProduct.objects.filter(data=name).exclude(pk=row.pk).exists():
            return storage.get_available_name(name)
        return name
