"""Post-save hooks for the tests, configured by tests/hook_settings.py: each call is a JSON
line in the file HOOK_LOG, saying what the hook saw committed; a product whose file name
contains HOOK_FAIL makes data_product_post_save raise."""
import json
import os

from django.db import connection
from tom_dataproducts.models import DataProduct


def _log(hook, products):
    with open(os.environ['HOOK_LOG'], 'a') as log:
        log.write(json.dumps({
            'hook': hook,
            'products': [p.product_id for p in products],
            # What another connection would see: the row committed, the file in place.
            'committed': all(DataProduct.objects.filter(pk=p.pk, data=p.data.name).exists() for p in products)
            and not connection.in_atomic_block,
            'files': all(p.data.storage.exists(p.data.name) for p in products),
        }) + '\n')


def data_product_post_save(products):
    _log('data_product_post_save', products)
    failing = os.environ.get('HOOK_FAIL')
    if failing and any(failing in p.data.name for p in products):
        raise ValueError(f'thumbnail maker choked on {products[0].data.name}')


def multiple_data_products_post_save(products):
    _log('multiple_data_products_post_save', products)
