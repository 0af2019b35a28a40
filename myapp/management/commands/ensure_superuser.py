"""`manage.py ensure_superuser`: create the first admin from DJANGO_SUPERUSER_USERNAME,
_PASSWORD (or the file DJANGO_SUPERUSER_PASSWORD_FILE names) and _EMAIL unless that user
exists. The web container runs it on every start,
so unlike `createsuperuser --no-input` it must succeed when there is nothing to do."""
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mytom.settings import env_or_file


class Command(BaseCommand):
    help = 'Creates the superuser named by DJANGO_SUPERUSER_USERNAME if it does not exist.'

    def handle(self, *args, **options):
        username = os.environ.get('DJANGO_SUPERUSER_USERNAME', '')
        password = env_or_file('DJANGO_SUPERUSER_PASSWORD')
        if not username or not password:
            raise CommandError('set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD')
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f'superuser {username!r} exists; left as it is')
            return
        users.create_superuser(username, os.environ.get('DJANGO_SUPERUSER_EMAIL', ''), password)
        self.stdout.write(f'created superuser {username!r}')
