"""Settings come from the environment, and a bad value is one line and a non-zero exit."""
import json
import os

import pytest

from tests.conftest import run_job

SHOW = (
    'import json; from django.conf import settings as s; from django.db import connection as c; '
    'print(json.dumps({"db": s.DATABASES["default"], "debug": s.DEBUG, "hosts": s.ALLOWED_HOSTS, '
    '"tz": s.TIME_ZONE, "media": str(s.MEDIA_ROOT), "timeout": s.TOM_HTTP_TIMEOUT, '
    '"lco": s.FACILITIES["LCO"], "journal": c.cursor().execute("PRAGMA journal_mode").fetchone()[0] '
    'if c.vendor == "sqlite" else None}, default=str))'
)


@pytest.fixture
def clean_env(tmp_path):
    """The environment of a new user: none of the TOM's variables, a fresh DATA_DIR."""
    names = ('SECRET_KEY', 'DEBUG', 'DATABASE_URL', 'ALLOWED_HOSTS', 'TZ', 'TIME_ZONE', 'TOM_HTTP_TIMEOUT',
             'JOB_TIMEOUT', 'LCO_API_KEY', 'LCO_PORTAL_URL', 'LCO_ARCHIVE_URL', 'DJANGO_SETTINGS_MODULE',
             'TASKS_BACKEND', 'ATLAS_API_KEY', 'ATLAS_URL', 'SKY_SURVEY_URL')
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, 'DATA_DIR': str(tmp_path / 'data'), 'SECRET_KEY': 'k'}


def show(env, code=SHOW):
    job = run_job(env, 'shell', '-c', code)
    assert job.returncode == 0, job.stderr
    return json.loads(job.stdout.strip().splitlines()[-1])


def test_defaults_are_an_sqlite_file_under_data_dir_ready_for_two_processes(clean_env):
    shown = show(clean_env)

    assert shown['db']['NAME'] == os.path.join(clean_env['DATA_DIR'], 'db.sqlite3')
    assert shown['journal'] == 'wal'
    assert shown['db']['OPTIONS']['transaction_mode'] == 'EXCLUSIVE'  # IMMEDIATE, in WAL mode
    assert shown['db']['OPTIONS']['timeout'] == 20
    assert shown['media'] == os.path.join(clean_env['DATA_DIR'], 'media')
    assert shown['debug'] is False
    assert shown['timeout'] == 30.0
    assert shown['lco']['portal_url'] == 'https://observe.lco.global'
    assert shown['lco']['archive_url'] == 'https://archive-api.lco.global/'


def test_environment_overrides_the_defaults(clean_env):
    shown = show({
        **clean_env,
        'DATABASE_URL': 'postgres://tom:pw@db.example:5433/tomdb',
        'ALLOWED_HOSTS': 'tom.example.org,127.0.0.1',
        'TZ': 'America/Santiago',
        'TOM_HTTP_TIMEOUT': '7.5',
        'LCO_API_KEY': 'abc',
        'LCO_ARCHIVE_URL': 'http://archive.test/',
    })

    assert shown['db']['ENGINE'] == 'django.db.backends.postgresql'
    assert (shown['db']['HOST'], shown['db']['PORT'], shown['db']['NAME']) == ('db.example', 5433, 'tomdb')
    assert shown['hosts'] == ['tom.example.org', '127.0.0.1']
    assert shown['tz'] == 'America/Santiago'
    assert shown['timeout'] == 7.5
    assert shown['lco']['api_key'] == 'abc' and shown['lco']['archive_url'] == 'http://archive.test/'


@pytest.mark.parametrize('change, message', [
    ({'SECRET_KEY': ''}, 'configuration error: SECRET_KEY must be set when DEBUG is off'),
    ({'TOM_HTTP_TIMEOUT': 'soon'}, "configuration error: TOM_HTTP_TIMEOUT must be a number, not 'soon'"),
    ({'TOM_HTTP_TIMEOUT': '0'}, 'configuration error: TOM_HTTP_TIMEOUT must be a positive number of seconds'),
    ({'DATABASE_URL': 'nosuchdb://x'}, "configuration error: 'nosuchdb' isn't an available database backend"),
    ({'JOB_TIMEOUT': 'soon'}, "configuration error: JOB_TIMEOUT: 'soon' is not a duration: write seconds, or a "
                              "number with s, m or h (90s, 50m, 2h)"),
    ({'TASKS_BACKEND': 'celery'}, "configuration error: TASKS_BACKEND must be database or immediate, not 'celery'"),
    ({'TASKS_TIMEOUT': '0'}, "configuration error: TASKS_TIMEOUT: '0' is not a duration"),
    ({'TASKS_CONCURRENCY': '0'}, 'configuration error: TASKS_CONCURRENCY must be at least 1'),
    ({'BACKUP_KEEP': '7 days'}, "configuration error: BACKUP_KEEP: '7 days' is not a rule: write a count and one "
                                "of last, hourly, daily, weekly, monthly, yearly"),
    ({'BACKUP_MAX_AGE': 'daily'}, "configuration error: BACKUP_MAX_AGE: 'daily' is not a duration"),
    ({'SKY_SURVEY_URL': 'P/DSS2/color'}, "configuration error: SKY_SURVEY_URL: 'P/DSS2/color' is not an http(s) URL "
                                         "of a HiPS survey"),
])
def test_bad_configuration_is_one_line_and_refuses_to_start(clean_env, change, message):
    job = run_job({**clean_env, **change}, 'save_data')

    assert job.returncode == 2
    assert len(job.stderr.strip().splitlines()) == 1 and job.stderr.startswith(message), job.stderr
    assert 'Traceback' not in job.stderr


POLICY = ('import json; from django.conf import settings as s; '
          'print(json.dumps({"survey": s.SKY_SURVEY_URL, **s.CONTENT_SECURITY_POLICY["DIRECTIVES"]}))')


def test_no_sky_survey_by_default_and_a_chosen_one_may_send_images_and_nothing_else(clean_env):
    shown = show(clean_env, POLICY)
    assert shown['survey'] == ''
    assert shown['img-src'] == ["'self'", 'data:', 'blob:'] and shown['connect-src'] == ["'self'", 'data:']

    shown = show({**clean_env, 'SKY_SURVEY_URL': 'https://alasky.cds.unistra.fr/DSS/DSSColor/'}, POLICY)

    assert shown['survey'] == 'https://alasky.cds.unistra.fr/DSS/DSSColor'
    assert shown['img-src'][-1] == shown['connect-src'][-1] == 'https://alasky.cds.unistra.fr'
    assert not [source for source in shown['script-src'] + shown['style-src'] if 'unistra' in source]


def test_debug_runs_without_a_secret_key(clean_env):
    assert show({**clean_env, 'SECRET_KEY': '', 'DEBUG': '1'})['debug'] is True


TASK_SETTINGS = (
    'import json; from django.conf import settings as s; from django_tasks import tasks; b = tasks["default"]; '
    'print(json.dumps({"backend": type(b).__name__, "services": s.SINGLE_TARGET_DATA_SERVICES, '
    '"types": list(s.DATA_PRODUCT_TYPES), "processor": s.DATA_PROCESSORS.get("atlas_photometry")}))'
)


def test_tasks_are_queued_in_the_database_and_atlas_is_off_without_a_key(clean_env):
    shown = show(clean_env, TASK_SETTINGS)

    assert shown['backend'] == 'DatabaseBackend'
    assert shown['services'] == {}
    assert show({**clean_env, 'TASKS_BACKEND': 'immediate'}, TASK_SETTINGS)['backend'] == 'ImmediateBackend'


def test_an_atlas_key_turns_on_the_atlas_service_with_its_product_type_and_processor(clean_env, tmp_path):
    key_file = tmp_path / 'atlas_key'
    key_file.write_text('from-a-file\n')

    shown = show({**clean_env, 'ATLAS_API_KEY': 'k-123'}, TASK_SETTINGS)
    from_file = show({**clean_env, 'ATLAS_API_KEY_FILE': str(key_file), 'ATLAS_URL': 'http://atlas.test/'},
                     TASK_SETTINGS)

    assert shown['services'] == {'ATLAS': {
        'class': 'tom_dataproducts.single_target_data_service.atlas.AtlasForcedPhotometryService',
        'url': 'https://fallingstar-data.com/forcedphot', 'api_key': 'k-123'}}
    assert 'atlas_photometry' in shown['types']
    assert shown['processor'] == 'tom_dataproducts.processors.atlas_processor.AtlasProcessor'
    assert (from_file['services']['ATLAS']['url'], from_file['services']['ATLAS']['api_key']) == (
        'http://atlas.test', 'from-a-file')
