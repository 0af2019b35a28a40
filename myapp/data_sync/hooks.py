"""The hooks TOM Toolkit's "Save data" button runs, run for what save_data stored.

The button (tom_dataproducts.views.DataProductSaveView) calls `data_product_post_save` with
the list of products saved for each product chosen, then `multiple_data_products_post_save`
with all of them: here, a one-product list for each new product, then the record's new
products. They run after the rows and files are committed, so a hook sees a product whole,
and a failing hook fails its record without undoing what was stored.
"""
from tom_common.hooks import run_hook

from myapp.failures import one_line


def after_save(products):
    """Runs the hooks for one record's new products, every one even when one fails; returns
    None, or one line saying which hook failed first and why."""
    failures = [failure for product in products
                if (failure := _run('data_product_post_save', [product], f' for {product.data.name}'))]
    if failure := _run('multiple_data_products_post_save', products, ''):
        failures.append(failure)
    if not failures:
        return None
    more = f' (and {len(failures) - 1} more)' if len(failures) > 1 else ''
    return failures[0] + more


def _run(name, products, about):
    try:
        run_hook(name, products)
    except Exception as error:
        return one_line(f'hook {name} failed{about}: {type(error).__name__}: {error}')
    return None
