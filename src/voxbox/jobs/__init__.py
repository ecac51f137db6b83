"""Background work: named jobs deferred in the transaction that needs them, periodic jobs once
per period per deployment, and work bound to this process (see ``queue``)."""

from voxbox.jobs.queue import JobQueue, JobRow, make_job_queue
from voxbox.jobs.runner import LocalRunner

__all__ = ["JobQueue", "JobRow", "LocalRunner", "make_job_queue"]
