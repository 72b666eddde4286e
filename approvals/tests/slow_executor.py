"""Test-only executor, loaded by a crash-test worker with --include: it records the effect, then
stalls the first time so the test can SIGKILL the worker mid-task."""

import os
import time
from pathlib import Path

from approvals import executors

MARKER = Path(os.environ.get("MH1_CRASH_MARKER", "/tmp/mh1-crash-marker"))


def slow_executor(request, payload):
    result = executors.log_executor(request, payload)
    if not MARKER.exists():
        MARKER.write_text(str(os.getpid()))
        time.sleep(60)  # killed here by the test
    return result


executors.register("campaign.pause", slow_executor)
