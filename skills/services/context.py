"""What a running skill sees: its steps, its model calls (priced and settled against the budget as
they happen), its deadline and its last good result."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import F
from django.utils import timezone

from skills.errors import SkillError
from skills.models import SkillRun, SkillRunStep
from skills.providers import LlmProvider, LlmRequest, LlmResponse

if TYPE_CHECKING:
    from skills.contracts import SkillContract


class SlaTimeout(SkillError):
    """The run passed its SLA's maximum: the contract's timeout action applies."""

    code = "sla_timeout"


class DataUnavailable(SkillError):
    """The skill's source could not be read: the contract's data_unavailable fallback applies."""

    code = "data_unavailable"


class RunContext:
    """One attempt's view of its run. Skills call ``step``, ``llm``/``llm_json`` and ``checkpoint``."""

    def __init__(
        self,
        *,
        run: SkillRun,
        contract: SkillContract,
        provider: LlmProvider,
        deadline: float,
        instructions: str = "",
        clock=time.monotonic,
        charge: bool = True,
    ):
        self.run = run
        self.contract = contract
        self.provider = provider
        self.deadline = deadline
        self.instructions = instructions
        self.attempt = 1
        self.partial: dict[str, Any] | None = None
        self.last_step = ""
        self._clock = clock
        self._charge = charge  # False only in skills.testing: golden tests price nothing
        self._order = SkillRunStep.objects.filter(run=run).count()
        self._step: SkillRunStep | None = None

    # time ---------------------------------------------------------------------------------------
    def remaining_seconds(self) -> float:
        return self.deadline - self._clock()

    def check_deadline(self) -> None:
        if self._clock() >= self.deadline:
            raise SlaTimeout(
                f"{self.contract.slug} passed its SLA maximum of {self.contract.sla.max_seconds} s"
                + (f" during “{self.last_step}”" if self.last_step else "")
                + "."
            )

    # steps --------------------------------------------------------------------------------------
    @contextmanager
    def step(self, name: str) -> Iterator[SkillRunStep]:
        """A named step: timed, its model calls and cost added up, its failure recorded."""
        self.check_deadline()
        self._order += 1
        started = self._clock()
        step = SkillRunStep.objects.create(run=self.run, order=self._order, name=name, attempt=self.attempt)
        previous, self._step, self.last_step = self._step, step, name
        try:
            yield step
        except SlaTimeout as exc:
            self._close(step, started, "timed_out", str(exc))
            raise
        except BaseException as exc:
            self._close(step, started, "failed", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        else:
            self._close(step, started, "ok", "")
        finally:
            self._step = previous

    def _close(self, step: SkillRunStep, started: float, status: str, error: str) -> None:
        step.status = status
        step.error = error
        step.finished_at = timezone.now()
        step.duration_ms = max(0, int((self._clock() - started) * 1000))
        step.save(update_fields=["status", "error", "finished_at", "duration_ms"])

    def checkpoint(self, partial: dict[str, Any]) -> None:
        """The result so far: what a time-out or a later failure returns (partial_success)."""
        self.partial = partial

    # models -------------------------------------------------------------------------------------
    def llm(self, request: LlmRequest) -> LlmResponse:
        """Ask the provider; price the call from the price in force now and settle it against the
        run's reservation before returning, so the budget always knows what was spent."""
        self.check_deadline()
        limit = self.contract.llm.max_output_tokens
        if request.max_tokens > limit:
            raise SkillError(f"max_tokens {request.max_tokens} is above the contract's {limit}.")
        if not request.model and self.contract.llm.model:
            request = LlmRequest(**{**request.__dict__, "model": self.contract.llm.model})
        response = self.provider.complete(request)
        usd = Decimal("0")
        if self._charge:
            from tenants.budget import budget_settle, cost_of

            usd = cost_of(
                model=response.model,
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
                cached_input_tokens=response.cached_input_tokens,
                at=timezone.now(),
            )
            tokens = response.input_tokens + response.output_tokens + response.cached_input_tokens
            budget_settle(key=self.run.budget_key, usd=usd, tokens=tokens)
        self._count(response, usd)
        return response

    def llm_json(self, request: LlmRequest) -> Any:
        """``llm`` whose answer must be JSON fitting ``request.response_schema``: anything else
        raises ProviderOutputInvalid, a failed attempt within the retry budget."""
        return self.llm(request).json(request.response_schema)

    def _count(self, response: LlmResponse, usd: Decimal) -> None:
        SkillRun.objects.filter(pk=self.run.pk).update(
            cost_usd=F("cost_usd") + usd,
            input_tokens=F("input_tokens") + response.input_tokens,
            output_tokens=F("output_tokens") + response.output_tokens,
            cached_input_tokens=F("cached_input_tokens") + response.cached_input_tokens,
            provider=response.provider,
            model=response.model,
        )
        if self._step is not None:
            SkillRunStep.objects.filter(pk=self._step.pk).update(
                llm_calls=F("llm_calls") + 1,
                input_tokens=F("input_tokens") + response.input_tokens,
                output_tokens=F("output_tokens") + response.output_tokens,
                cached_input_tokens=F("cached_input_tokens") + response.cached_input_tokens,
                cost_usd=F("cost_usd") + usd,
            )
