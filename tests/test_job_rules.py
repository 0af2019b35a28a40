"""The job runtime's rules, called in-process with a fixed clock: the overdue rule, the
failing and recovered flips, the catch-up window, a pause's start and end, the lost-runner
rule and the handshake. No process is started: these run in the quick tier."""
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from myapp.jobs import alerts, catchup, history, notify, pauses, schedule
from myapp.jobs.handshake import BadHandshake, Handshake, Trigger
from myapp.logs import BelowWarning, Say
from myapp.models import CrontabLoad, JobAlert, JobPause, JobRun, ScheduledJob
from myapp.overview import report as overview

pytestmark = pytest.mark.django_db
T = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)   # the fixed clock: a Monday, 10:00 UTC
HOURLY = '0 * * * * python manage.py jobs run --grace 10m --alert-after 2 --name hourly clearsessions\n'
S = timedelta(seconds=1)


def deploy(text=HOURLY, loaded_at=T - timedelta(days=1), first_seen=T - timedelta(days=1)):
    schedule.record_load(text)
    CrontabLoad.objects.update(loaded_at=loaded_at)
    ScheduledJob.objects.update(first_seen=first_seen)


def ran(outcome, started_at, name='hourly', seconds=5, **fields):
    ended = {} if outcome == JobRun.Outcome.RUNNING else {
        'finished_at': started_at + timedelta(seconds=seconds), 'duration': seconds}
    return JobRun.objects.create(name=name, command='clearsessions', host='h', pid=1, outcome=outcome,
                                 started_at=started_at, heartbeat_at=started_at, **ended, **fields)


def job(now, name='hourly'):
    return next(state for state in overview.report(now=now, check_commands=False).jobs if state.name == name)


# The overdue rule: due at the first scheduled time after the last success, late past the grace.

def test_a_job_is_overdue_once_its_next_time_after_its_last_success_and_grace_have_passed():
    deploy()
    ran(JobRun.Outcome.SUCCEEDED, T + 5 * S)            # the 10:00 run
    due, late_at = T + timedelta(hours=1), T + timedelta(hours=1, minutes=10)

    assert (job(late_at).due, job(late_at).late_at) == (due, late_at)
    assert not job(late_at).overdue(late_at)
    assert not job(late_at - S).overdue(late_at - S)
    assert job(late_at + S).overdue(late_at + S)


def test_a_failed_run_does_not_reset_the_clock_a_success_does():
    deploy()
    ran(JobRun.Outcome.SUCCEEDED, T + 5 * S)
    ran(JobRun.Outcome.FAILED, T + timedelta(hours=1, seconds=5))
    late = T + timedelta(hours=1, minutes=11)

    assert job(late).overdue(late)
    ran(JobRun.Outcome.SUCCEEDED, T + timedelta(hours=1, minutes=10, seconds=30))
    assert not job(late).overdue(late)
    assert job(late).due == T + timedelta(hours=2)


def test_a_job_that_never_succeeded_counts_from_when_the_schedule_first_had_it():
    deploy(first_seen=T + 2 * S)

    assert job(T + timedelta(hours=1, minutes=10)).overdue(T + timedelta(hours=1, minutes=10)) is False
    assert job(T + timedelta(hours=1, minutes=10, seconds=1)).overdue(T + timedelta(hours=1, minutes=10, seconds=1))


def test_jobs_check_names_the_overdue_job_and_says_ok_otherwise():
    deploy()
    ran(JobRun.Outcome.SUCCEEDED, T + 5 * S)

    lines, verdict = overview.verdict(overview.report(now=T + timedelta(minutes=30), check_commands=False))
    assert (lines, verdict) == ([], 'ok: 1 job(s) on time')
    lines, verdict = overview.verdict(overview.report(now=T + timedelta(hours=2), check_commands=False))
    assert lines[0].startswith('OVERDUE hourly (0 * * * *): last success ')
    assert verdict == '1 job(s) overdue, 0 crontab problem(s)'


# A pause: not overdue while it holds; once it ends, due at the first time after its end.

def test_a_paused_job_is_not_overdue_and_is_due_after_its_pause_ends():
    deploy()
    ran(JobRun.Outcome.SUCCEEDED, T + 5 * S)
    JobPause.objects.create(name='hourly', paused_by='pi', paused_at=T + timedelta(minutes=30),
                            until=T + timedelta(hours=5, minutes=30))
    during = T + timedelta(hours=3)

    assert job(during).pause is not None and not job(during).overdue(during)
    assert pauses.in_force(JobPause.objects.get(), during)
    after = T + timedelta(hours=5, minutes=31)
    assert job(after).pause is None
    assert job(after).due == T + timedelta(hours=6)  # not 11:00, five hours before the pause ended
    assert not job(after).overdue(after)
    assert job(T + timedelta(hours=6, minutes=11)).overdue(T + timedelta(hours=6, minutes=11))


def test_a_resumed_pause_ends_at_its_resumption():
    deploy()
    pause = JobPause.objects.create(name='hourly', paused_by='pi', paused_at=T, resumed_at=T + timedelta(hours=2))

    assert pauses.ended_at(pause, T + timedelta(hours=1)) == T + timedelta(hours=2)
    assert not pauses.in_force(pause, T + timedelta(hours=1))
    held = JobPause(name='x', paused_by='pi', paused_at=T, until=T + timedelta(hours=2))
    assert pauses.in_force(held, T + timedelta(hours=2) - S) and pauses.ended_at(held, T + timedelta(hours=1)) is None
    assert not pauses.in_force(held, T + timedelta(hours=2))


# Failing and recovered: told once when the state changes, never again while it stays.

def test_failing_after_alert_after_runs_in_a_row_told_once_then_recovered():
    deploy(HOURLY.replace('--grace 10m', '--grace 6h'))   # failing, not yet overdue
    now = T + timedelta(minutes=30)
    ran(JobRun.Outcome.SUCCEEDED, T - timedelta(hours=3))
    ran(JobRun.Outcome.FAILED, T - timedelta(hours=1))
    assert alerts.record_changes(overview.report(now=now, check_commands=False)) == []  # 1 of 2

    ran(JobRun.Outcome.TIMED_OUT, T)
    assert job(now).failing and job(now).failures == 2
    assert alerts.record_changes(overview.report(now=now, check_commands=False)) == ['hourly']
    alert = JobAlert.objects.get()
    assert (alert.state, alert.previous, alert.title) == ('failing', 'ok', f'{settings.TOM_NAME}: hourly is failing')

    ran(JobRun.Outcome.FAILED, T + timedelta(minutes=1))
    assert alerts.record_changes(overview.report(now=now, check_commands=False)) == []  # no reminder per run

    ran(JobRun.Outcome.SUCCEEDED, T + timedelta(minutes=2))
    assert alerts.record_changes(overview.report(now=now, check_commands=False)) == ['hourly']
    alert.refresh_from_db()
    assert (alert.state, alert.previous, alert.title) == ('ok', 'failing', f'{settings.TOM_NAME}: hourly has recovered')


def test_an_overdue_job_is_told_overdue_and_a_paused_one_is_not_told():
    deploy()
    late = T + timedelta(hours=1, minutes=11)
    assert alerts.record_changes(overview.report(now=late, check_commands=False)) == ['hourly']
    assert JobAlert.objects.get().state == 'overdue'

    JobAlert.objects.all().delete()
    JobPause.objects.create(name='hourly', paused_by='pi', paused_at=T)
    assert alerts.record_changes(overview.report(now=late, check_commands=False)) == []


def test_a_running_run_counts_as_a_failure_only_once_its_runner_is_lost():
    deploy()
    ran(JobRun.Outcome.FAILED, T - timedelta(hours=1))
    ran(JobRun.Outcome.RUNNING, T)

    assert job(T + timedelta(seconds=59)).failures == 1
    assert job(T + timedelta(seconds=61)).failures == 2
    assert job(T + timedelta(seconds=61)).last_run.outcome == 'lost'   # shown lost, not recorded
    assert JobRun.objects.get(outcome='running')


# The lost-runner rule: no heartbeat for LOST_AFTER.

def test_a_runner_silent_for_a_minute_is_lost_and_recorded_so_once():
    running = ran(JobRun.Outcome.RUNNING, T)

    assert not history.gone(running, T + timedelta(seconds=60))
    assert history.gone(running, T + timedelta(seconds=60, microseconds=1))
    assert history.mark_lost(now=T + timedelta(seconds=30)) == 0
    assert history.mark_lost(now=T + timedelta(seconds=61)) == 1
    running.refresh_from_db()
    assert running.outcome == 'lost' and running.finished_at == T
    assert history.mark_lost(now=T + timedelta(seconds=61)) == 0
    assert history.counts() == {('hourly', 'lost'): 1}


# Catch-up: the last tick missed before the cron container started, within one interval.

def test_the_tick_missed_while_no_cron_container_ran_is_caught_up_within_its_window():
    deploy(loaded_at=T + timedelta(minutes=30))   # started at 10:30: the 10:00 run was missed

    assert [(line.name, tick) for line, tick in catchup.missed(T + timedelta(minutes=31))] == [('hourly', T)]
    assert catchup.missed(T + timedelta(hours=1, seconds=1)) == []   # the window is one interval


def test_no_catch_up_for_a_tick_done_or_a_job_not_yet_scheduled_then():
    deploy(loaded_at=T + timedelta(minutes=30))
    ran(JobRun.Outcome.FAILED, T + 3 * S)   # it ran (a failure is still a run)
    assert catchup.missed(T + timedelta(minutes=31)) == []

    JobRun.objects.all().delete()
    ScheduledJob.objects.update(first_seen=T + timedelta(minutes=1))
    assert catchup.missed(T + timedelta(minutes=31)) == []


def test_a_daily_job_catches_up_within_a_day_at_most():
    deploy('30 2 * * * python manage.py jobs run --name nightly clearsessions\n',
           loaded_at=T, first_seen=T - timedelta(days=3))
    tick = T.replace(hour=2, minute=30)

    assert [tick_ for _, tick_ in catchup.missed(T + S)] == [tick]
    assert catchup.missed(tick + timedelta(days=1, seconds=1)) == []


# The handshake between the cron program and `jobs run`.

@pytest.mark.parametrize('handshake', [Handshake(), Handshake.scheduled(), Handshake.catch_up(T),
                                       Handshake.run_now(42)])
def test_the_handshake_reads_back_what_was_written(handshake):
    assert Handshake.from_environment(handshake.environment()) == handshake


def test_a_cronjobs_pod_runs_for_the_minute_its_job_is_named_after_and_a_job_made_by_hand_is_manual():
    # What the chart sets in each CronJob's pod; the CronJob controller names a Job it starts
    # after the scheduled minute since the epoch, `kubectl create job NAME --from` after NAME.
    pod = {'TOM_JOBS_TRIGGER': 'schedule', 'TOM_JOBS_CRONJOB': 'tom-mytom-save-data'}
    minute = int(datetime(2026, 12, 6, 14, 5, tzinfo=UTC).timestamp()) // 60

    scheduled = Handshake.from_environment({**pod, 'TOM_JOBS_KUBERNETES_JOB': f'tom-mytom-save-data-{minute}'})
    by_hand = Handshake.from_environment({**pod, 'TOM_JOBS_KUBERNETES_JOB': 'save-data-now'})
    look_alike = Handshake.from_environment({**pod, 'TOM_JOBS_KUBERNETES_JOB': 'tom-mytom-save-data-again'})

    assert scheduled == Handshake(Trigger.SCHEDULE, tick=datetime(2026, 12, 6, 14, 5, tzinfo=UTC))
    assert by_hand == Handshake() and look_alike == Handshake()  # manual: runs whatever ran this hour


def test_a_bad_handshake_names_the_variable():
    with pytest.raises(BadHandshake, match="TOM_JOBS_TRIGGER='sometimes' is none of schedule, catch-up"):
        Handshake.from_environment({'TOM_JOBS_TRIGGER': 'sometimes'})
    with pytest.raises(BadHandshake, match='TOM_JOBS_TICK'):
        Handshake.from_environment({'TOM_JOBS_TRIGGER': 'catch-up', 'TOM_JOBS_TICK': 'yesterday'})


def test_a_reminder_is_due_every_JOBS_NOTIFY_REPEAT_while_a_job_stays_failing_never_once_ok(settings):
    settings.JOBS_NOTIFY_REPEAT = 24 * 3600
    told = JobAlert.objects.create(name='hourly', state='failing', changed_at=T, notified_at=T)
    JobAlert.objects.create(name='fine', state='ok', previous='failing', changed_at=T, notified_at=T)
    JobAlert.objects.create(name='new', state='overdue', changed_at=T + timedelta(hours=30))   # not yet told

    assert {alert.name for alert in notify.due(T + timedelta(hours=23))} == {'new'}
    assert {alert.name for alert in notify.due(T + timedelta(hours=24, seconds=1))} == {'hourly', 'new'}
    told.sending_until = T + timedelta(hours=25)   # another sender has it in hand
    told.save()
    assert {alert.name for alert in notify.due(T + timedelta(hours=24, seconds=1))} == {'new'}
    settings.JOBS_NOTIFY_REPEAT = None
    assert {alert.name for alert in notify.due(T + timedelta(days=9))} == {'new'}


def test_the_runtime_logs_its_lines_with_their_fields_as_the_record_s():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('tom.jobs')
    logger.addHandler(handler)
    try:
        say = Say('jobs', job='save_data').bind(run=42)
        say.out('jobs: save_data run 42 started')
        say.err('jobs: save_data run 42 failed', logging.ERROR, outcome='failed', duration=2.5)
    finally:
        logger.removeHandler(handler)

    assert [(record.levelname, record.getMessage()) for record in records] == [
        ('INFO', 'jobs: save_data run 42 started'), ('ERROR', 'jobs: save_data run 42 failed')]
    assert (records[1].job, records[1].run, records[1].outcome, records[1].duration) == ('save_data', 42, 'failed', 2.5)
    assert BelowWarning().filter(records[0]) and not BelowWarning().filter(records[1])
