"""What the job runtime keeps (every run of every job, the schedule the cron container runs,
the runs people asked for from the Jobs page) and what the data sync engine keeps (when it
last asked an archive for the products of each observation)."""
from django.conf import settings
from django.db import models


class JobRun(models.Model):
    """One run of a job through `manage.py jobs run`."""

    class Outcome(models.TextChoices):
        RUNNING = 'running'
        SUCCEEDED = 'succeeded'
        FAILED = 'failed'
        TIMED_OUT = 'timed out'
        SKIPPED = 'skipped'      # another run held the job's lock, or had done this tick's work
        LOST = 'lost'            # its runner died without finishing (its heartbeat stopped)

    class Trigger(models.TextChoices):
        SCHEDULE = 'schedule'
        CATCH_UP = 'catch-up'
        MANUAL = 'manual'
        RUN_NOW = 'run now'       # asked for on the Jobs page

    name = models.CharField(max_length=200)
    command = models.TextField(help_text='the management command and its arguments')
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text='the cron tick this run is for')
    lock = models.CharField(max_length=200, blank=True,
                            help_text="the lock it held: the job's name, or the one its command shares")
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text='seconds')
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    exit_status = models.IntegerField(null=True, blank=True)
    summary = models.TextField(blank=True, help_text="the job's last summary line")
    output_tail = models.TextField(blank=True, help_text='the last lines of its output')

    class Meta:
        ordering = ['-started_at']
        indexes = [
            models.Index(fields=['name', '-started_at']),
            models.Index(fields=['outcome']),
            models.Index(fields=['lock', 'outcome']),
        ]

    def __str__(self):
        return f'{self.name} run {self.pk} ({self.outcome})'


class JobRunCount(models.Model):
    """Runs per job and outcome since the job first ran: counters that pruning the history
    does not lower (Prometheus reads a lower counter as a reset)."""

    name = models.CharField(max_length=200)
    outcome = models.CharField(max_length=10, choices=JobRun.Outcome.choices)
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=['name', 'outcome'], name='one_count_per_job_outcome')]


class CrontabLoad(models.Model):
    """A crontab the cron container loaded, or an edit of it that it rejected."""

    loaded_at = models.DateTimeField()
    host = models.CharField(max_length=255)
    text = models.TextField()
    accepted = models.BooleanField()
    bad_line = models.TextField(blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ['-loaded_at']
        get_latest_by = 'loaded_at'

    def __str__(self):
        what = 'loaded' if self.accepted else 'rejected'
        return f'crontab {what} on {self.host} at {self.loaded_at:%Y-%m-%d %H:%M:%S}'


class ScheduledJob(models.Model):
    """A job name some loaded crontab has run, and when it first appeared: a job that has
    never succeeded is overdue only counting from then, and a new job does not catch up."""

    name = models.CharField(max_length=200, unique=True)
    first_seen = models.DateTimeField()

    def __str__(self):
        return self.name


class JobRequest(models.Model):
    """A "Run now" pressed on the Jobs page: the cron container picks it up within seconds
    and runs the job through `jobs run`, whose run it links here."""

    name = models.CharField(max_length=200)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    requested_at = models.DateTimeField()
    picked_at = models.DateTimeField(null=True, blank=True, help_text='when a cron container took it')
    host = models.CharField(max_length=255, blank=True, help_text='the cron container that took it')
    run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL)
    error = models.TextField(blank=True, help_text='why it could not be run')
    arguments = models.JSONField(default=list, blank=True,
                                 help_text="added to the job's command, e.g. save_data's --target_id N")
    target = models.ForeignKey('tom_targets.BaseTarget', null=True, blank=True, on_delete=models.SET_NULL,
                               related_name='job_requests', help_text='the target it was asked for')
    waiting = models.TextField(blank=True, help_text='what its run waits for (the lock another run holds)')

    class Meta:
        ordering = ['-requested_at']

    def __str__(self):
        return f'run now of {self.name} by {self.requested_by} at {self.requested_at:%Y-%m-%d %H:%M:%S}'


class ProductListing(models.Model):
    """The last time save_data asked an archive for the products of one observation record.

    A record is listed again only while its products may still change: until its listing
    and downloads succeeded once after its settle window (SAVE_DATA_SETTLE_HOURS after the
    observation ended, or after its first listing when the facility gives no end time).
    """

    record = models.OneToOneField('tom_observations.ObservationRecord', on_delete=models.CASCADE,
                                  primary_key=True, related_name='product_listing')
    first_listed_at = models.DateTimeField()
    listed_at = models.DateTimeField(help_text='the last listing')
    succeeded = models.BooleanField(help_text='the last listing, its downloads and hooks all succeeded')
    products = models.PositiveIntegerField(default=0, help_text='how many products the archive listed')
    error = models.TextField(blank=True, help_text='why the last listing failed')

    class Meta:
        ordering = ['-listed_at']

    def __str__(self):
        return f'products of {self.record_id} listed {self.listed_at:%Y-%m-%d %H:%M}'


class TaskRecord(models.Model):
    """What the TOM keeps of a queued task (django-tasks' DBTaskResult) beyond that row:
    which worker ran it, its output, how it ended in our words, and, for a task queued again
    from the Jobs page, who asked, when, and which failed task it retries."""

    class Outcome(models.TextChoices):
        SUCCEEDED = 'succeeded'
        FAILED = 'failed'        # raised, returned False, or its process died
        TIMED_OUT = 'timed out'  # stopped past TASKS_TIMEOUT
        LOST = 'lost'            # its worker died while it ran (container killed, node lost)

    result = models.OneToOneField('django_tasks_database.DBTaskResult', on_delete=models.CASCADE,
                                  primary_key=True, related_name='record')
    host = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=100, blank=True, help_text='the worker program that took it')
    pid = models.IntegerField(null=True, blank=True, help_text="the task's process")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text='seconds')
    error = models.TextField(blank=True, help_text='why it failed, in one line')
    output_tail = models.TextField(blank=True, help_text='the last lines of its output')
    retry_of = models.ForeignKey('django_tasks_database.DBTaskResult', null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name='retries')
    retried_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    retried_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f'task {self.result_id} ({self.outcome or "not ended"})'


class TaskRunCount(models.Model):
    """Tasks ended per task and outcome, counters that pruning the results does not lower."""

    task = models.CharField(max_length=300)
    outcome = models.CharField(max_length=10, choices=TaskRecord.Outcome.choices)
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=['task', 'outcome'], name='one_count_per_task_outcome')]


class JobPause(models.Model):
    """A job paused by a person (a facility's downtime, say) without editing the schedule:
    its scheduled runs are skipped and it is not overdue until it is resumed, or its end.
    The job's latest pause is kept once it has ended: the overdue rule counts from its end."""

    name = models.CharField(max_length=200, unique=True)
    paused_by = models.CharField(max_length=150, help_text='who paused it: a user, or the shell user of `jobs pause`')
    paused_at = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True, help_text='when the pause ends by itself; empty: when resumed')
    reason = models.TextField(blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.CharField(max_length=150, blank=True)

    def __str__(self):
        return f'{self.name} paused by {self.paused_by}'


class JobAlert(models.Model):
    """Whether a job is ok, failing or overdue, as last told to people (JOBS_NOTIFY): a change
    is recorded here first, by one process (compare and set), and sent once."""

    class State(models.TextChoices):
        OK = 'ok'
        FAILING = 'failing'
        OVERDUE = 'overdue'
        DOWN = 'down'            # an alert stream: no process of it connected
        SILENT = 'silent'        # an alert stream: no message for longer than it allows

    name = models.CharField(max_length=200, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    previous = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    changed_at = models.DateTimeField()
    message = models.TextField(blank=True, help_text='what is (or was) sent about the change')
    title = models.CharField(max_length=300, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text='when it was last sent; empty: not yet')
    sending_until = models.DateTimeField(null=True, blank=True, help_text='a sender has it in hand until then')

    def __str__(self):
        return f'{self.name}: {self.state}'

    @classmethod
    def change(cls, name, new, alert, now, compose):
        """Records that name (a job, `stream NAME`) is now in state new, alert being its row as
        read (None: none yet); compose(alert) gives the (title, message) to send. Compare and
        set: of the processes that see the same change, one records it. True when this one did."""
        if alert is None:
            if new == cls.State.OK:
                return False  # nothing to tell
            alert, _ = cls.objects.get_or_create(name=name, defaults={'changed_at': now})
        if alert.state == new:
            return False
        title, message = compose(alert)
        return bool(cls.objects.filter(pk=alert.pk, state=alert.state).update(
            state=new, previous=alert.state, changed_at=now, title=title, message=message,
            notified_at=None, sending_until=None))


class NotificationCount(models.Model):
    """Notifications sent, and those that could not be (a channel down), for /metrics."""

    outcome = models.CharField(max_length=10, unique=True)
    total = models.BigIntegerField(default=0)


class BackupSnapshot(models.Model):
    """A snapshot of the TOM in its backup repository (myapp/backups), as restic lists it:
    kept here so that the Jobs page, /metrics and `jobs check` read it without restic. Brought
    up to date from the repository by each backup, restore, verify and `backup list`."""

    class Kind(models.TextChoices):
        SCHEDULED = 'scheduled'
        PRE_UPGRADE = 'pre-upgrade'        # taken by the web container before it migrates
        BEFORE_RESTORE = 'before-restore'  # what was there before `backup restore --force`
        MANUAL = 'manual'

    snapshot_id = models.CharField(max_length=64, unique=True)
    taken_at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MANUAL)
    size = models.BigIntegerField(default=0, help_text='bytes it holds')
    files = models.IntegerField(default=0)
    rows = models.BigIntegerField(default=0, help_text='database rows it holds')
    added = models.BigIntegerField(null=True, blank=True, help_text='bytes it added to the repository')
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_ok = models.BooleanField(null=True, blank=True)
    verify_detail = models.TextField(blank=True, help_text='what the last verify found')

    class Meta:
        ordering = ['-taken_at']

    def __str__(self):
        return f'snapshot {self.snapshot_id[:8]} ({self.kind})'


class StreamState(models.Model):
    """One alert stream of the TOM's declaration (streams.toml, ALERT_STREAMS), as the cron
    program that runs it recorded it and its processes on every replica report it: for the
    Jobs page, /metrics and the checks, which read no file."""

    name = models.CharField(max_length=200, unique=True)
    declared = models.BooleanField(default=True, help_text='active in the declaration the cron program runs')
    class_path = models.CharField(max_length=300, blank=True)
    topics = models.JSONField(default=list, blank=True)
    longest_silence = models.FloatField(null=True, blank=True, help_text='seconds; empty: silence is no problem')
    first_started_at = models.DateTimeField(help_text='when a process of it first ran: where "latest" starts')
    connected_at = models.DateTimeField(null=True, blank=True, help_text='when a process of it last connected')
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text='a connected process was last heard then')
    host = models.CharField(max_length=255, blank=True, help_text='the host of the process last heard')
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text='why a process of it last failed, in one line')
    last_error_at = models.DateTimeField(null=True, blank=True)
    messages = models.BigIntegerField(default=0, help_text='messages handled: stored, or kept as dead letters')
    dead_letters = models.BigIntegerField(default=0)
    restarts = models.BigIntegerField(default=0)
    paused_by = models.CharField(max_length=150, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True, help_text='empty: not paused')
    pause_reason = models.TextField(blank=True)

    def __str__(self):
        return f'stream {self.name}'


class StreamOffset(models.Model):
    """The last message of a partition that a stream's handler has stored (or dead-lettered),
    written in the same transaction as what the handler stored: a message redelivered by Kafka
    (its commit lost with a killed process) is recognised here and not handled twice."""

    stream = models.CharField(max_length=200)
    topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    offset = models.BigIntegerField(null=True, help_text='empty: none handled yet')
    handled_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=['stream', 'topic', 'partition'],
                                               name='one_offset_per_partition')]


class StreamHour(models.Model):
    """Messages a stream handled in one hour (UTC), for messages per hour."""

    stream = models.CharField(max_length=200)
    hour = models.DateTimeField()
    messages = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=['stream', 'hour'], name='one_count_per_stream_hour')]


class KafkaMessageRecord(models.Model):
    """A Kafka message whole, as a stream read it: which it is (its stream, topic, partition
    and offset) and what it held."""

    stream = models.CharField(max_length=200)
    topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    key = models.BinaryField(null=True, blank=True)
    value = models.BinaryField(null=True, blank=True)
    headers = models.JSONField(default=list, blank=True, help_text='[name, value as text] pairs')
    produced_at = models.DateTimeField(null=True, blank=True, help_text="the message's Kafka timestamp")

    class Meta:
        abstract = True


class StreamAlert(KafkaMessageRecord):
    """An alert as the shipped handler (myapp.streams.handlers.save_alert) stores it, once."""

    stored_at = models.DateTimeField()

    class Meta:
        ordering = ['-stored_at']
        constraints = [models.UniqueConstraint(fields=['stream', 'topic', 'partition', 'offset'],
                                               name='one_alert_per_message')]

    def __str__(self):
        return f'alert {self.topic}[{self.partition}]@{self.offset}'


class DeadLetter(KafkaMessageRecord):
    """A message whose handler raised (or ran past the stream's HANDLER_TIMEOUT): kept whole
    with the error, so that nothing is lost and staff can retry it once the cause is fixed."""

    handler = models.CharField(max_length=300)
    error = models.TextField(help_text='why the handler failed, in one line')
    traceback = models.TextField(blank=True)
    failed_at = models.DateTimeField()
    attempts = models.IntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text='when a retry stored it')
    resolved_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ['-failed_at']
        constraints = [models.UniqueConstraint(fields=['stream', 'topic', 'partition', 'offset'],
                                               name='one_dead_letter_per_message')]

    def __str__(self):
        return f'dead letter {self.topic}[{self.partition}]@{self.offset}'
