"""The product's settings, with test values for what they require from the environment."""
import os
import tempfile

os.environ.setdefault('SECRET_KEY', 'tests-only-not-a-secret')
os.environ.setdefault('DATA_DIR', tempfile.mkdtemp(prefix='mytom-tests-'))

from mytom.settings import *  # noqa: E402,F403

# Logins in tests need not cost what they cost an attacker: the slowest hasher is for production.
PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']
