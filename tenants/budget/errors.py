"""Why the budget said no: refused by a limit, unreadable (fail closed), or a model with no price.

Each carries ``message``, a sentence a person can act on; the skills runner records it as the
run's refusal reason.
"""

from __future__ import annotations

from decimal import Decimal

from mh1.errors import DomainError


def usd(value: Decimal) -> str:
    """Dollars as a person reads them: cents when the amount has no finer part, else every digit."""
    value = Decimal(value)
    if value == value.quantize(Decimal("0.01")):
        return f"${value:,.2f}"
    return f"${value.normalize():,f}"


class BudgetError(DomainError):
    code = "budget_error"
    status_code = 409


# limit → how the message names it, and whether its amounts are dollars
LIMIT_LABELS: dict[str, tuple[str, bool]] = {
    "daily_usd": ("Daily USD budget", True),
    "monthly_usd": ("Monthly USD budget", True),
    "monthly_tokens": ("Monthly token budget", False),
    "daily_runs": ("Daily run limit", False),
    "per_run_usd": ("Per-run USD limit", True),
}


class BudgetRefused(BudgetError):
    """A limit would be exceeded: nothing was reserved."""

    code = "budget_refused"

    def __init__(
        self,
        *,
        limit: str,
        spent: Decimal | int,
        reserved: Decimal | int,
        asked: Decimal | int,
        allowed: Decimal | int,
    ):
        self.limit, self.spent, self.reserved, self.asked, self.allowed = (
            limit,
            spent,
            reserved,
            asked,
            allowed,
        )
        label, money = LIMIT_LABELS[limit]
        fmt = usd if money else (lambda n: f"{int(n):,}")
        if limit == "per_run_usd":
            message = f"{label} exceeded: this run may cost up to {fmt(asked)}, limit {fmt(allowed)}"
        elif limit == "daily_runs":
            message = f"{label} reached: {int(spent):,} runs today, limit {fmt(allowed)}"
        else:
            message = (
                f"{label} exceeded: spent {fmt(spent)}, reserved {fmt(reserved)}, asked {fmt(asked)}, "
                f"limit {fmt(allowed)}"
            )
        super().__init__(message)


class BudgetUnavailable(BudgetError):
    """The spend could not be read or reserved (database error): nothing runs (fail closed)."""

    code = "budget_unavailable"
    status_code = 503

    def __init__(self, message: str = ""):
        super().__init__(
            message or "The budget could not be checked (database unavailable): nothing runs until it can."
        )


class Unpriced(BudgetError):
    """No price is in force for the model: its cost cannot be known, so nothing runs."""

    code = "unpriced"

    def __init__(self, model: str, at=None):
        self.model = model
        when = f" at {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
        super().__init__(
            f"No price is in force for model {model!r}{when}: add one under Platform > Model prices."
        )
