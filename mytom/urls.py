"""URLs of the TOM: everything TOM Toolkit provides, data product files behind a login, the
Jobs pages and their API, and the job metrics for Prometheus."""
from django.conf import settings
from django.urls import include, path

from myapp.urls import api_urlpatterns
from myapp.views import data_product_file, job_metrics

urlpatterns = [
    # Before TOM Toolkit's URLs, whose DEBUG-only media route would serve files to anyone.
    path(f'{settings.MEDIA_URL.strip("/")}/<path:path>', data_product_file, name='data-product-file'),
    path('metrics', job_metrics, name='job-metrics'),
    path('jobs/', include('myapp.urls')),
    # Before TOM Toolkit's api/ routes, which would take any api/ path.
    path('api/jobs/', include((api_urlpatterns, 'jobs-api'))),
    path('', include('tom_common.urls')),
]
