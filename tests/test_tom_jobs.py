"""The TOM's own jobs that replace TOM Toolkit's silent ones: a failing cadence strategy or
saved query makes a failed run, where TOM Toolkit's commands exit 0."""
from tom_dataservices.models import DataServiceQuery
from tom_observations.models import DynamicCadence, ObservationGroup

from myapp.models import JobRun
from tests.conftest import make_record, make_target, run_job


def test_failing_cadences_fail_the_job_by_name(tom_env):
    group = ObservationGroup.objects.create(name='nightly')
    group.observation_records.add(make_record(make_target(), 3001, status='PENDING'))
    # TOM Toolkit's own strategy, on the facility a new TOM has: it crashes there.
    resume = DynamicCadence.objects.create(observation_group=group,
                                           cadence_strategy='ResumeCadenceAfterFailureStrategy',
                                           cadence_parameters={'cadence_frequency': 24}, active=True)
    unknown = DynamicCadence.objects.create(observation_group=group, cadence_strategy='NoSuchStrategy',
                                            cadence_parameters={}, active=True)
    DynamicCadence.objects.create(observation_group=group, cadence_strategy='NoSuchStrategy',
                                  cadence_parameters={}, active=False)

    upstream = run_job(tom_env, 'runcadencestrategies')
    ours = run_job(tom_env, 'jobs', 'run', 'run_cadence_strategies')

    assert upstream.returncode == 0
    assert ours.returncode == 1
    failed = [line for line in ours.stderr.splitlines() if line.startswith('FAILED')]
    assert failed == [
        f"FAILED cadence {resume.pk} ('ResumeCadenceAfterFailureStrategy', group nightly): AttributeError: "
        "'LCORedirectFacility' object has no attribute 'update_observation_status'",
        f"FAILED cadence {unknown.pk} ('NoSuchStrategy', group nightly): ImportError: Could not a find a cadence "
        "strategy with that name. Did you add it to TOM_CADENCE_STRATEGIES?",
    ]
    run = JobRun.objects.get()
    assert (run.outcome, run.exit_status) == ('failed', 1)
    assert run.summary.startswith('done: 2 cadence(s), 0 observation(s) submitted, 2 failure(s)')


def test_failing_saved_queries_fail_the_job_by_name(tom_env):
    unconfigured = DataServiceQuery.objects.create(name='bright SNe', data_service='TNS', parameters={})
    gone = DataServiceQuery.objects.create(name='old', data_service='NoSuchService', parameters={})

    upstream = run_job(tom_env, 'rundataquery', str(unconfigured.pk))
    ours = run_job(tom_env, 'jobs', 'run', 'run_saved_queries')

    assert upstream.returncode == 0
    assert ours.returncode == 1
    failed = [line for line in ours.stderr.splitlines() if line.startswith('FAILED')]
    assert failed[0] == (f"FAILED data service query 'bright SNe' (TNS, id {unconfigured.pk}): building the query: "
                         "NotConfiguredError: 'Settings' object has no attribute 'DATA_SERVICES'")
    assert failed[1].startswith(f"FAILED data service query 'old' (NoSuchService, id {gone.pk}): data service: "
                                "ImportError: Could not a find a data Service with named NoSuchService.")
    assert len(failed) == 2
    assert JobRun.objects.get().outcome == 'failed'


def test_no_saved_query_and_no_cadence_is_a_success(tom_env):
    for command in ('run_saved_queries', 'run_cadence_strategies'):
        job = run_job(tom_env, 'jobs', 'run', command)

        assert job.returncode == 0, job.stderr
    assert set(JobRun.objects.values_list('outcome', flat=True)) == {'succeeded'}
