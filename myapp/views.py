"""The TOM's own pages: data product files for the users who may see their target, and the
job metrics for Prometheus."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import CONTENT_TYPE_LATEST
from tom_dataproducts.models import DataProduct
from tom_targets.models import Target
from tom_targets.permissions import targets_for_user

from myapp.jobs.metrics import exposition


@login_required
def data_product_file(request, path):
    """With DEBUG off Django serves no media, and data products can be proprietary: this view
    replaces the public `MEDIA_URL` route that TOM Toolkit adds only in DEBUG."""
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


def job_metrics(request):
    """The job history in Prometheus' text format, for a scraper bearing METRICS_TOKEN; not
    served at all (404) while no token is set."""
    if not settings.METRICS_TOKEN:
        raise Http404('No metrics here')
    if not constant_time_compare(request.headers.get('Authorization', ''), f'Bearer {settings.METRICS_TOKEN}'):
        return HttpResponse('a bearer token is required\n', status=401, content_type='text/plain',
                            headers={'WWW-Authenticate': 'Bearer'})
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
