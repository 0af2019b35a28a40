"""WSGI entry point, served by gunicorn (`mytom.wsgi:application`)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mytom.settings')

application = get_wsgi_application()
