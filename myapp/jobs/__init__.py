"""The job runtime: every scheduled job runs through `manage.py jobs run`, which locks it,
bounds it in time, records it, and reports it (see the README's "The jobs")."""
