"""Downloading a data product's file, for the users who may see its target.

With DEBUG off Django serves no media, and data products can be proprietary: this view
replaces the public `MEDIA_URL` route that TOM Toolkit adds only in DEBUG."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from tom_dataproducts.models import DataProduct
from tom_targets.models import Target
from tom_targets.permissions import targets_for_user


@login_required
def data_product_file(request, path):
    product = DataProduct.objects.filter(data=path).select_related('target').first()
    if product is None or not _may_view(request.user, product):
        raise Http404('No such data product')  # the same answer whether it exists or not
    try:
        return FileResponse(product.data.open('rb'), filename=product.data.name.rsplit('/', 1)[-1])
    except FileNotFoundError:
        raise Http404('The data product has no file')


def _may_view(user, product):
    if settings.TARGET_PERMISSIONS_ONLY:
        return targets_for_user(user, Target.objects.filter(pk=product.target_id), 'view_target').exists()
    return user.has_perm('tom_dataproducts.view_dataproduct', product)
