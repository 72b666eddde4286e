"""Who may do what on the approval queue's HTTP surface, and on the sign-in and platform actions
around it: the one table the role-by-action suite (tests/test_permission_matrix.py) walks and the
README's roles section is rendered from.

The permissions behind it are tenants/roles.py; this table states the outcome a person sees on an
``email.send`` request proposed by a skill run. "delegate" is an AE to whom that request was
delegated: a delegation hands over the work, never a scope, so a delegate can do what their role
can (here: an AE's). "operator" is a platform operator on the public host, where the tenants and
access grants are managed; tenant people have no login there, and operators none in a tenant
unless granted one.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN, REVOPS, AE, VIEWER, DELEGATE = "tenant_admin", "revops", "ae", "viewer", "delegate"
OPERATOR = "operator"
TENANT_PEOPLE = (ADMIN, REVOPS, AE, VIEWER, DELEGATE)
ROLES = (*TENANT_PEOPLE, OPERATOR)
ROLE_LABELS = {
    ADMIN: "Tenant admin",
    REVOPS: "RevOps",
    AE: "AE",
    VIEWER: "Viewer",
    DELEGATE: "Delegate",
    OPERATOR: "Platform operator",
}

_DECIDERS = frozenset({ADMIN, AE, DELEGATE})
_EVERYONE = frozenset(TENANT_PEOPLE)  # everyone signed in to the tenant


@dataclass(frozen=True)
class Entry:
    key: str
    surface: str  # "admin button", "admin action" or "API"
    what: str
    allowed: frozenset[str]


MATRIX: tuple[Entry, ...] = (
    # the request page's buttons (approvals/admin.py decide_view)
    Entry("button_approve", "admin button", "Approve", _DECIDERS),
    Entry("button_reject", "admin button", "Reject (with a reason)", _DECIDERS),
    Entry("button_delegate", "admin button", "Delegate to a colleague whose role may approve", _DECIDERS),
    Entry("button_edit", "admin button", "Edit the email before approving", _DECIDERS),
    Entry("button_requeue", "admin button", "Re-queue a failed request", frozenset({ADMIN})),
    Entry("button_resolve", "admin button", "Resolve an unknown outcome", frozenset({ADMIN})),
    # the queue's bulk actions
    Entry("action_approve", "admin action", "Approve selected requests", _DECIDERS),
    Entry("action_reject", "admin action", "Reject selected requests", _DECIDERS),
    Entry("action_delegate", "admin action", "Delegate selected requests", _DECIDERS),
    # /api/v1/approvals/requests/
    Entry("api_list", "API", "GET requests/ (the queue)", _EVERYONE),
    Entry("api_detail", "API", "GET requests/{id}/", _EVERYONE),
    Entry("api_propose", "API", "POST requests/ (propose)", frozenset({ADMIN, REVOPS, AE, DELEGATE})),
    Entry("api_approve", "API", "POST requests/{id}/approve/", _DECIDERS),
    Entry("api_reject", "API", "POST requests/{id}/reject/", _DECIDERS),
    Entry("api_delegate", "API", "POST requests/{id}/delegate/", _DECIDERS),
    Entry("api_delegates", "API", "GET requests/{id}/delegates/ (who it can go to)", _DECIDERS),
    Entry("api_edit", "API", "POST requests/{id}/edit/", _DECIDERS),
    # a person's own API tokens
    Entry("admin_my_tokens", "admin page", "My API tokens: create one for myself", _EVERYONE),
    # logins: each person sets only their own password (else a tenant admin could sign in as an AE)
    Entry("admin_set_other_password", "admin page", "Set another person's password", frozenset()),
    Entry("api_root", "API", "GET /api/v1/ (the list of endpoints)", _EVERYONE),
    # sign-in: django-axes lockouts on the person's own host
    Entry("admin_unlock_login", "admin action", "Unlock a locked-out login", frozenset({ADMIN, OPERATOR})),
    # the platform (public host)
    Entry(
        "platform_deactivate",
        "admin action",
        "Deactivate a tenant (after its confirmation page)",
        frozenset({OPERATOR}),
    ),
    Entry("platform_reactivate", "admin button", "Reactivate a tenant", frozenset({OPERATOR})),
    Entry(
        "platform_grant_link",
        "admin page",
        "Grant access (viewer by default; emails a set-password link)",
        frozenset({OPERATOR}),
    ),
)


def markdown() -> str:
    """The table as the README shows it (between the permission-matrix markers)."""
    header = "| where | what | " + " | ".join(ROLE_LABELS[r] for r in ROLES) + " |"
    rule = "| --- | --- | " + " | ".join(":-:" for _ in ROLES) + " |"
    rows = [
        f"| {e.surface} | {e.what} | " + " | ".join("✓" if r in e.allowed else "—" for r in ROLES) + " |"
        for e in MATRIX
    ]
    return "\n".join([header, rule, *rows])
