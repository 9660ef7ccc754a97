"""Background jobs: what runs on a schedule (catalog), when it runs next and who runs it now
(schedule, in SQL), and the two ways to run them: in this process (the embedded default) or as
Celery tasks on any number of workers (``FLYWHEEL_BROKER_URL``)."""
