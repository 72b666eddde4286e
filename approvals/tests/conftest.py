from unittest import mock

import pytest

from approvals import executors


@pytest.fixture(autouse=True)
def _log_executor_for_every_kind():
    """Approval mechanics are tested with the `log` executor; connectors test their own."""
    with mock.patch.dict(executors._EXECUTORS, clear=True):
        yield
