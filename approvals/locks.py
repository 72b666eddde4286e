"""Row locks of the approval queue, in one place."""

from approvals.models import ActionRequest


def request_for_update(request_id: int) -> ActionRequest:
    return ActionRequest.objects.select_for_update().get(pk=request_id)
