"""What a skill is: a contract and three methods. The runner (``skills.services.runner``) does the
rest: budget, data requirements, time-outs, retries, evaluation, release and proposal.

A skill reads through read clients and selectors, and returns ``ProposedAction`` values; it never
proposes or writes itself (``tests/test_skill_boundaries.py`` proves it cannot import a write path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from skills.contracts import SkillContract
    from skills.services.context import RunContext


@dataclass(frozen=True)
class ProposedAction:
    """An action the skill wants; the runner proposes it with the run's evaluation."""

    kind: str
    payload: dict[str, Any]
    key: str  # stable within the run (e.g. the lead id): the request's idempotency key is run + key
    summary: str = ""
    reasoning: str = ""


@dataclass
class Records:
    """The data a run works on, for the contract's data requirements."""

    items: list[dict[str, Any]]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationSubject:
    """What the evaluation looks at.

    ``texts`` are the customer-facing texts (subject and body of each email, a reply draft):
    brand voice, forbidden claims, AI-washing, spam words, PII and CAN-SPAM are checked on them.
    ``facts`` maps each item's key to the data it may cite (the lead's fields): a claim or number
    in the item's text that the facts do not support is a factuality issue.
    """

    kind: str  # "emails", "scores", "report", "reply"
    items: list[dict[str, Any]]
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    expected_count: int | None = None  # completeness: how many items the inputs asked for
    is_customer_facing: bool = False


class Skill:
    """Subclass, set ``contract`` and implement the three methods."""

    contract: ClassVar[SkillContract]
    # inputs that fit the input schema for a small run: the canary and the boundary test use them
    example_inputs: ClassVar[dict[str, Any]] = {}

    def load(self, ctx: RunContext, inputs: dict[str, Any]) -> Records:
        """Read what the run needs (selectors, read clients). Raise ``DataUnavailable`` when the
        source cannot be read: the contract's fallback applies."""
        raise NotImplementedError

    def run(self, ctx: RunContext, inputs: dict[str, Any], records: Records) -> dict[str, Any]:
        """Do the work in named steps (``with ctx.step("name"):``), asking models via ``ctx.llm``;
        ``ctx.checkpoint(partial)`` after each step keeps the last good result for a time-out."""
        raise NotImplementedError

    def subject(self, output: dict[str, Any], records: Records) -> EvaluationSubject:
        """What the evaluation checks of ``output``."""
        raise NotImplementedError

    def apply(self, ctx: RunContext, output: dict[str, Any], records: Records) -> None:
        """In execute mode, unless blocked: write the output to the console's own tables (e.g. ICP
        scores onto leads). Never a vendor effect: those are ``actions``, through the queue."""

    def actions(self, ctx: RunContext, output: dict[str, Any], records: Records) -> list[ProposedAction]:
        """The external actions the output calls for (none for a report)."""
        return []

    def canary_inputs(self, lead: Any) -> dict[str, Any]:
        """Inputs that run this skill over the canary's synthetic lead (``manage.py canary``)."""
        return dict(self.example_inputs)
