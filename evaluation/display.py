"""How an evaluation reads on a page: each dimension's score, weight and why."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html, format_html_join


def dimensions_table(dimensions: dict[str, Any] | None):
    """Each dimension's score (mean and lowest run), weight and reasons: for the evaluation, run and
    request pages."""
    rows = (
        (
            data.get("label", name),
            f"{data.get('score', 0):.2f}",
            f"{data.get('low', data.get('score', 0)):.2f}",
            f"{data.get('weight', 0):.2f}",
            "; ".join(data.get("reasons") or []),
        )
        for name, data in (dimensions or {}).items()
    )
    return format_html(
        '<table class="mh1-dimensions"><thead><tr><th>Dimension</th><th>Score</th><th>Lowest run</th>'
        "<th>Weight</th><th>Why</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
    )
