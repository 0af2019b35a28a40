"""Notifications (JOBS_NOTIFY, JOBS_NOTIFY_EMAIL_STAFF) through real channels on 127.0.0.1:
Apprise's `json://` posts to an HTTP endpoint, and e-mail to an SMTP server. A message when a
job turns failing (after --alert-after failed runs in a row) or overdue, one when it
recovers, none in between; once across two cron programs; a channel down is a line and a
count, and is tried again."""
import shlex
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from myapp.jobs import schedule
from myapp.models import JobAlert, JobPause, ScheduledJob
from tests.conftest import run_job, wait_for
from tests.notify_endpoint import JsonEndpoint, SmtpServer

# A job that fails while its flag file exists.
FLAKY = ('python manage.py jobs run --alert-after 2 --name flaky shell -c '
         '"import os, sys; print(\'checked the archive\'); sys.exit(3 if os.path.exists(\'{flag}\') else 0)"')


@pytest.fixture
def endpoint():
    server = JsonEndpoint()
    yield server
    server.stop()


@pytest.fixture
def flaky(tom_env, tmp_path, endpoint):
    """(env, flag file, the job's `jobs run` words) with JOBS_NOTIFY at the endpoint."""
    flag = tmp_path / 'failing'
    line = FLAKY.format(flag=flag)
    schedule.record_load(f'@yearly {line}\n')
    env = {**tom_env, 'JOBS_NOTIFY': endpoint.apprise_url, 'TOM_BASE_URL': 'https://tom.example.org/'}
    return env, flag, line.split(' ', 4)[4]


def run_flaky(env, words):
    return run_job(env, 'jobs', 'run', *shlex.split(words))


def test_one_message_when_it_turns_failing_after_alert_after_runs_and_one_when_it_recovers(flaky, endpoint):
    env, flag, words = flaky
    flag.touch()

    assert run_flaky(env, words).returncode == 3
    assert endpoint.posts == []  # one failure of --alert-after 2: not failing yet
    second = run_flaky(env, words)
    assert second.returncode == 3  # the job's own status: telling people changes nothing
    assert 'told JOBS_NOTIFY that flaky is failing' in second.stdout  # at once, by the run itself
    check = run_job(env, 'jobs', 'check')
    assert check.returncode == 0 and 'FAILING flaky: its last 2 run(s) failed' in check.stdout
    assert run_flaky(env, words).returncode == 3
    flag.unlink()
    assert run_flaky(env, words).returncode == 0
    assert run_flaky(env, words).returncode == 0
    run_job(env, 'jobs', 'check')

    assert endpoint.titles() == ['mytom: flaky is failing', 'mytom: flaky has recovered']
    failing, recovered = (post['message'] for post in endpoint.posts)
    assert failing.startswith('flaky failed with exit status 3 (run started ')
    assert '2 runs in a row have failed' in failing and 'checked the archive' in failing
    assert failing.rstrip().endswith('Its page: https://tom.example.org/jobs/flaky/')
    assert recovered.startswith('flaky is failing no longer: it succeeded at ')


def test_an_overdue_job_is_told_once_and_a_paused_one_not_at_all(flaky, endpoint):
    env, flag, words = flaky
    schedule.record_load(f'* * * * * {FLAKY.format(flag=flag).replace("--alert-after 2", "--grace 1m")}\n')
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(minutes=30))
    assert run_job(env, 'jobs', 'pause', 'flaky').returncode == 0
    run_job(env, 'jobs', 'check')
    assert endpoint.posts == []

    JobPause.objects.all().delete()  # as if it had never been paused: overdue now
    assert run_job(env, 'jobs', 'check').returncode == 1
    assert run_job(env, 'jobs', 'check').returncode == 1

    assert endpoint.titles() == ['mytom: flaky is overdue']
    assert endpoint.posts[0]['message'].startswith('OVERDUE flaky (* * * * *): last success never; due ')


def test_two_cron_programs_tell_each_change_once(flaky, endpoint, tom_env, cron_program):
    env, flag, words = flaky
    daily = FLAKY.format(flag=flag).replace('--alert-after 2', '--grace 1m --no-catch-up')
    schedule.record_load(f'0 0 * * * {daily}\n')
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(days=2))  # overdue since last midnight
    tom_env.update(JOBS_NOTIFY=env['JOBS_NOTIFY'], TOM_BASE_URL=env['TOM_BASE_URL'])  # the programs' environment
    crontab = schedule.current()[0].text

    cron_program(crontab)
    cron_program(crontab)  # each checks the jobs as it starts (and every 30 s): each sees it overdue

    wait_for('the overdue message', lambda: endpoint.posts, 60)
    assert run_job(env, 'jobs', 'run', *shlex.split(daily.split(' ', 4)[4])).returncode == 0
    wait_for('the recovered message', lambda: len(endpoint.posts) >= 2, 60)
    run_job(env, 'jobs', 'check')
    assert endpoint.titles() == ['mytom: flaky is overdue', 'mytom: flaky has recovered']
    assert JobAlert.objects.get().state == 'ok'


def test_staff_are_told_by_the_tom_s_own_email(flaky):
    env, flag, words = flaky
    smtp = SmtpServer()
    try:
        User.objects.create_user('pi', email='pi@example.org', password='x', is_staff=True)
        User.objects.create_user('student', email='student@example.org', password='x')
        env = {**env, 'JOBS_NOTIFY': '', 'JOBS_NOTIFY_EMAIL_STAFF': 'true', 'EMAIL_URL': smtp.url}
        flag.touch()
        run_flaky(env, words)
        second = run_flaky(env, words)

        assert 'told staff by e-mail that flaky is failing' in second.stdout, second.stderr
        [(recipients, content)] = smtp.messages
        assert recipients == ['pi@example.org']
        assert 'Subject: mytom: flaky is failing' in content and 'exit status 3' in content
    finally:
        smtp.stop()


def test_a_channel_down_is_a_line_and_a_count_and_is_tried_again(flaky, endpoint, settings):
    env, flag, words = flaky
    endpoint.status = 503
    flag.touch()
    run_flaky(env, words)

    down = run_flaky(env, words)

    assert down.returncode == 3  # its own status, not the channel's
    assert 'jobs: could not tell that flaky is failing: JOBS_NOTIFY: ' in down.stderr
    assert 'trying again at the next check' in down.stderr
    endpoint.status = 200
    up = run_job(env, 'jobs', 'check')
    assert 'told JOBS_NOTIFY that flaky is failing' in up.stdout
    assert endpoint.titles() == ['mytom: flaky is failing']
    settings.METRICS_TOKEN = 't'
    metrics = Client().get('/metrics', HTTP_AUTHORIZATION='Bearer t').content.decode()
    assert 'tom_job_notifications_total{outcome="failed"} 1.0' in metrics
    assert 'tom_job_notifications_total{outcome="sent"} 1.0' in metrics


def test_a_reminder_every_JOBS_NOTIFY_REPEAT_while_it_stays_failing(flaky, endpoint):
    env, flag, words = flaky
    env['JOBS_NOTIFY_REPEAT'] = '1h'
    flag.touch()
    run_flaky(env, words)
    run_flaky(env, words)
    run_job(env, 'jobs', 'check')
    run_job(env, 'jobs', 'check')
    assert endpoint.titles() == ['mytom: flaky is failing']

    JobAlert.objects.update(notified_at=timezone.now() - timedelta(hours=2))
    run_job(env, 'jobs', 'check')

    assert endpoint.titles() == ['mytom: flaky is failing', 'Still failing: mytom: flaky is failing']


def test_notify_test_sends_a_message_or_says_why_not(flaky, endpoint):
    env, _, _ = flaky

    sent = run_job(env, 'jobs', 'notify', '--test')
    nothing = run_job({**env, 'JOBS_NOTIFY': ''}, 'jobs', 'notify', '--test')
    refused = run_job({**env, 'JOBS_NOTIFY': 'nosuchscheme://x'}, 'jobs', 'notify', '--test')

    assert sent.returncode == 0 and endpoint.titles() == ['mytom: a test of its job notifications']
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == 'CommandError: no channel: set JOBS_NOTIFY or JOBS_NOTIFY_EMAIL_STAFF'
    assert refused.returncode == 1
    assert refused.stderr.strip() == 'CommandError: JOBS_NOTIFY holds no URL that Apprise understands'
