"""`/health/`: answers whether this web process can reach its database, and nothing more:
the driver's error (host, port, user) goes to the log, not to whoever asks."""
import logging

from django.db import connection
from django.http import JsonResponse

from myapp.failures import one_line

logger = logging.getLogger('tom.web')

HEALTH_PATH = '/health/'


class HealthCheckMiddleware:
    """Answers the health URL before any other middleware, so that neither ALLOWED_HOSTS
    (the probe calls 127.0.0.1 inside the container), nor login, nor HTTPS redirects get
    between the container's health check and its answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path != HEALTH_PATH:
            return self.get_response(request)
        try:
            with connection.cursor() as cursor:
                cursor.execute('SELECT 1')
        except Exception as error:
            logger.error('health: the database cannot be reached: %s', one_line(error))
            return JsonResponse({'status': 'error'}, status=503)
        return JsonResponse({'status': 'ok'})
