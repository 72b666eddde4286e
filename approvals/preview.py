"""How an action will look when it happens: the email as rendered, the CRM record before → after."""

from __future__ import annotations

import difflib
import re
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


_WORDS = re.compile(r"(\s+)")


def _word_diff(before: str, after: str) -> str:
    """``before`` → ``after`` word by word: removed words struck through, added ones marked."""
    old, new = _WORDS.split(before), _WORDS.split(after)
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(format_html("{}", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            parts.append(format_html("<del>{}</del>", "".join(old[i1:i2])))
        if j2 > j1:
            parts.append(format_html("<ins>{}</ins>", "".join(new[j1:j2])))
    return format_html_join("", "{}", ((part,) for part in parts))


def edit_diff(payload_diff: dict[str, Any]) -> str:
    """A person's edits before approval, one field each, as a readable word diff (not JSON)."""
    rows = []
    for key, change in sorted((payload_diff or {}).items()):
        change = change if isinstance(change, dict) else {}
        before, after = change.get("before"), change.get("after")
        if isinstance(before, str | None) and isinstance(after, str | None):
            shown = _word_diff(before or "", after or "")
        else:
            shown = format_html("<del>{}</del> <ins>{}</ins>", before, after)
        rows.append((key, shown))
    return format_html_join("", '<tr><th>{}</th><td class="mh1-worddiff">{}</td></tr>', rows)
