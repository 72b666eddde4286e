"""Row locks of the approval queue, in one place."""

from approvals.errors import RequestNotFound
from approvals.models import ActionRequest


def request_for_update(request_id: int) -> ActionRequest:
    request = ActionRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise RequestNotFound(f"Action request #{request_id} does not exist.")
    return request
