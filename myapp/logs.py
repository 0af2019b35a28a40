"""The runtime's own lines (the job runner, the cron program, the task worker) go through
Python's logging, configured in settings.LOGGING: by default the readable lines of old, what
went as planned on stdout and what did not on stderr; with LOG_FORMAT=json one JSON object
per line whose keys carry the job or task, its run id and, at its end, outcome and duration.
The jobs' and tasks' own output is passed through as it comes, not through here."""
import logging

RUNTIME = 'tom'     # the loggers tom.jobs, tom.cron and tom.tasks


class Say:
    """One part of the runtime's lines, with the fields every line of it carries."""

    def __init__(self, part='jobs', **fields):
        self.logger = logging.getLogger(f'{RUNTIME}.{part}')
        self.fields = fields

    def bind(self, **fields):
        """The same part, its lines carrying these fields too (a run's id, say)."""
        said = Say.__new__(Say)
        said.logger, said.fields = self.logger, {**self.fields, **fields}
        return said

    def out(self, line, **fields):
        """What went as planned."""
        self.logger.info(line, extra={**self.fields, **fields})

    def err(self, line, level=logging.WARNING, **fields):
        """What did not: a failure, a retry, a refusal."""
        self.logger.log(level, line, extra={**self.fields, **fields})


class BelowWarning(logging.Filter):
    """Keeps the records a person reads on stdout: the others go to stderr."""

    def filter(self, record):
        return record.levelno < logging.WARNING
