"""Row locks of the approval queue, in one place."""

from approvals.errors import RequestNotFound
from approvals.models import ActionRequest


def request_for_update(request_id: int) -> ActionRequest:
    request = ActionRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise RequestNotFound(f"Action request #{request_id} does not exist.")
    return request


def request_locked_or_none(request_id: int) -> ActionRequest | None:
    """The request under its row lock, or None; a raw query (no ORM compilation) for the
    execution path, which takes it on every attempt."""
    found = list(
        ActionRequest.objects.raw(
            "SELECT * FROM approvals_actionrequest WHERE id = %s FOR UPDATE", [request_id]
        )
    )
    return found[0] if found else None
