"""Running a study: a run request, the worker processes and their trial loop, heartbeats, failing
and retrying trials, progress and the end-of-run summary."""

from search.execution.handle import StudyHandle
from search.execution.heartbeat import Heartbeat, fail_stale_trials, stale_trial_ids
from search.execution.loop import Ending, finish_trial, run_trials, take_trial
from search.execution.progress import show_progress
from search.execution.request import RunRequest
from search.execution.runner import METRIC, run
from search.execution.summary import dashboard_command
from search.execution.trials import fail_and_retry, retry

__all__ = [
    "METRIC",
    "Ending",
    "Heartbeat",
    "RunRequest",
    "StudyHandle",
    "dashboard_command",
    "fail_and_retry",
    "fail_stale_trials",
    "finish_trial",
    "retry",
    "run",
    "run_trials",
    "show_progress",
    "stale_trial_ids",
    "take_trial",
]
