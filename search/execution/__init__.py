"""Running a study: a run request, the worker processes and their trial loop, heartbeats, failing
and retrying trials, progress and the end-of-run summary."""

from search.execution.request import RunRequest
from search.execution.runner import run
from search.execution.summary import dashboard_command

__all__ = [
    "RunRequest",
    "dashboard_command",
    "run",
]
