"""How an action will look when it happens: the email as rendered, the CRM record before → after."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html, format_html_join, linebreaks

from approvals.models import ActionRequest


def render_preview(request: ActionRequest) -> str:
    payload: dict[str, Any] = request.payload or {}
    if request.kind == "email.send":
        return format_html(
            '<div class="mh1-email"><p><strong>From:</strong> {}</p><p><strong>To:</strong> {} &lt;{}&gt;</p>'
            "<p><strong>Subject:</strong> {}</p><hr>{}</div>",
            payload.get("from_mailbox", ""),
            payload.get("to_name", ""),
            payload.get("to", ""),
            payload.get("subject", ""),
            linebreaks(payload.get("body", ""), autoescape=True),
        )
    if request.kind == "crm.upsert_contact":
        before = payload.get("before") or {}
        after = payload.get("properties") or {}
        rows = [
            (
                key,
                before.get(key, "—"),
                after.get(key, "—"),
                "changed" if before.get(key) != after.get(key) else "",
            )
            for key in sorted(set(before) | set(after))
        ]
        return format_html(
            '<table class="mh1-diff"><thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            format_html_join("", '<tr class="{3}"><td>{0}</td><td>{1}</td><td>{2}</td></tr>', rows),
        )
    return format_html_join(
        "", "<p><strong>{}:</strong> {}</p>", ((key, value) for key, value in sorted(payload.items()))
    )
