"""How an action will look when it happens: the email as rendered, the CRM record before → after."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html, format_html_join

from approvals.models import ActionRequest


def _email_preview(request: ActionRequest, payload: dict[str, Any]) -> str:
    """The message the executor will send (``connectors.executors.email_message``), as the
    recipient's mail client shows it: the headers that matter, the text part with its unsubscribe
    footer, and an HTML part (when there is one) in a sandboxed frame that runs nothing."""
    from connectors.executors import email_message

    try:
        message = email_message(request, payload, str(payload.get("to", "")))
    except (KeyError, ValueError, TypeError) as exc:
        return format_html('<p class="mh1-gates">This email cannot be built: {}</p>', exc)
    headers = [
        ("From", message.from_email),
        ("To", ", ".join(message.to)),
        ("Subject", message.subject),
        *((name, message.extra_headers[name]) for name in _LIST_HEADERS if name in message.extra_headers),
    ]
    html_parts = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    html = (
        format_html(
            '<iframe class="mh1-html" sandbox="" referrerpolicy="no-referrer" title="HTML part" '
            'srcdoc="{}"></iframe>',
            html_parts[0],
        )
        if html_parts
        else format_html('<p class="help">{}</p>', "Plain text only: no HTML part is sent.")
    )
    return format_html(
        '<div class="mh1-email"><table class="mh1-headers">{}</table>'
        '<div class="mh1-parts"><pre class="mh1-text" aria-label="Text part">{}</pre>{}</div></div>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", headers),
        message.body,
        html,
    )


_LIST_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post")


def render_preview(request: ActionRequest) -> str:
    payload: dict[str, Any] = request.payload or {}
    if request.kind == "email.send":
        return _email_preview(request, payload)
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
