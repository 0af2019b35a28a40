"""The product's settings with the test post-save hooks of tests/sync_hooks.py."""
from mytom.settings import *  # noqa: F403

HOOKS = {
    **HOOKS,  # noqa: F405
    'data_product_post_save': 'tests.sync_hooks.data_product_post_save',
    'multiple_data_products_post_save': 'tests.sync_hooks.multiple_data_products_post_save',
}
