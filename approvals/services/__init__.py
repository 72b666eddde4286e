"""Every state change of an action request: one service call, one event, one audit entry.

States: pending → approved → executing → executed | failed | unknown; pending → rejected |
expired | cancelled; approved → cancelled | expired (a gate closed before execution); proposals
in shadow phase end as shadowed and blocked ones as blocked. An illegal transition raises
IllegalTransition and changes nothing.

The package: ``common`` (transition table, the one transition function, scheduling, routing),
``proposal``, ``decisions``, ``execution`` and ``sweeps``; everything public is imported here.
"""

from approvals.gates import can_decide
from approvals.services.common import MAX_ETA, SYSTEM, TRANSITIONS
from approvals.services.decisions import (
    action_approve,
    action_cancel,
    action_delegate,
    action_edit_payload,
    action_reject,
    delegation_check_actor,
)
from approvals.services.execution import (
    RESOLVE_PERMISSION,
    action_execute,
    action_requeue,
    action_resolve,
    execution_is_live,
    execution_lease,
)
from approvals.services.proposal import PROPOSE_PERMISSION, action_propose
from approvals.services.sweeps import (
    STALE_APPROVED,
    STALE_EXECUTING,
    delegations_fall_back,
    requests_escalate,
    requests_expire,
    requests_redispatch_stale,
    requests_release_deferred,
)

__all__ = [
    "MAX_ETA",
    "PROPOSE_PERMISSION",
    "RESOLVE_PERMISSION",
    "STALE_APPROVED",
    "STALE_EXECUTING",
    "SYSTEM",
    "TRANSITIONS",
    "action_approve",
    "action_cancel",
    "action_delegate",
    "action_edit_payload",
    "action_execute",
    "action_propose",
    "action_reject",
    "action_requeue",
    "action_resolve",
    "can_decide",
    "delegation_check_actor",
    "delegations_fall_back",
    "execution_is_live",
    "execution_lease",
    "requests_escalate",
    "requests_expire",
    "requests_redispatch_stale",
    "requests_release_deferred",
]
