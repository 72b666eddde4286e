"""Tenant-schema policy that RevOps edit: rollout and kill switch, ICP, quotas, sending limits."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from solo.models import SingletonModel

from campaigns.icp_choices import GEOGRAPHY_LIST, INDUSTRY_LIST
from mh1.addresses import AddressInvalid, domain_normalize, email_normalize


class RolloutPhase(models.TextChoices):
    SHADOW = "shadow", "Shadow: nothing external runs; intended actions are recorded"
    PARALLEL = "parallel", "Parallel: people decide everything; AI decisions recorded beside"
    ASSISTED = "assisted", "Assisted: people approve every action"
    AUTONOMOUS = "autonomous", "Autonomous: auto-delivered actions run without a person"


class RolloutSettings(SingletonModel):
    """How much the AI may do on its own in this tenant, and the tenant's kill switch."""

    phase = models.CharField(max_length=16, choices=RolloutPhase.choices, default=RolloutPhase.SHADOW)
    kill_switch = models.BooleanField(
        default=False, help_text="When on, no external action of this tenant executes."
    )
    kill_switch_reason = models.CharField(max_length=500, blank=True)
    safe_mode = models.BooleanField(
        default=False,
        help_text="When on, approved actions record what they would have sent and send nothing.",
    )
    agreement_override_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Needed to move to assisted or autonomous while the AI agrees with people less "
        "than 75% of the time in the parallel phase: why it is moved anyway (kept in the audit log).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "rollout and kill switch"
        verbose_name_plural = "rollout and kill switch"

    def __str__(self) -> str:
        return "Rollout and kill switch"

    def clean(self) -> None:
        if self.kill_switch and not self.kill_switch_reason.strip():
            raise ValidationError({"kill_switch_reason": "Say why the kill switch is on."})


def _clean_list(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values or []:
        value = value.strip()
        if value:
            seen.setdefault(value, None)
    return list(seen)


class IcpDefinition(SingletonModel):
    """The ideal customer profile that lead scoring uses."""

    company_size_min = models.PositiveIntegerField(
        default=10, help_text="Employees, inclusive.", validators=[MinValueValidator(1)]
    )
    company_size_max = models.PositiveIntegerField(
        default=1000, help_text="Employees, inclusive.", validators=[MinValueValidator(1)]
    )
    industries = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    titles = ArrayField(
        models.CharField(max_length=100), default=list, blank=True, help_text="Job titles to target."
    )
    seniorities = ArrayField(
        models.CharField(max_length=50), default=list, blank=True, help_text="E.g. VP, Director."
    )
    geographies = ArrayField(
        models.CharField(max_length=100), default=list, blank=True, help_text="Countries or regions."
    )
    competitor_domains = ArrayField(
        models.CharField(max_length=253),
        default=list,
        blank=True,
        help_text="Never target these companies' domains.",
    )
    customer_domains = ArrayField(
        models.CharField(max_length=253),
        default=list,
        blank=True,
        help_text="Existing customers: excluded from outbound.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "ICP definition"
        verbose_name_plural = "ICP definition"
        constraints = [
            models.CheckConstraint(
                condition=Q(company_size_min__lte=F("company_size_max")),
                name="%(app_label)s_%(class)s_size_range",
            )
        ]

    def __str__(self) -> str:
        return "ICP definition"

    def clean(self) -> None:
        """The one validation of an ICP, for the admin form, the API and imports alike: domains
        are made canonical by ``mh1.addresses.domain_normalize`` (as recipients are, so the
        exclusion gate compares like with like) and anything that is not a domain is refused;
        industries and geographies by their controlled lists (``campaigns.icp_choices``)."""
        errors: dict[str, str] = {}
        for name in ("titles", "seniorities"):
            setattr(self, name, _clean_list(getattr(self, name)))
        # Industries and geographies: the controlled lists' spelling, other values tidied, and
        # values the scoring would compare as one ("SaaS", "saas ") merged.
        for name, controlled in (("industries", INDUSTRY_LIST), ("geographies", GEOGRAPHY_LIST)):
            try:
                setattr(self, name, controlled.clean(getattr(self, name)))
            except ValueError as exc:
                errors[name] = str(exc)
        for name in ("competitor_domains", "customer_domains"):
            domains: dict[str, None] = {}
            bad = []
            for raw in _clean_list(getattr(self, name)):
                try:
                    domains.setdefault(domain_normalize(raw.lower().removeprefix("www.")), None)
                except AddressInvalid:
                    bad.append(raw)
            if bad:
                errors[name] = f"Not a domain name: {', '.join(bad)}."
            setattr(self, name, list(domains))
        if (
            self.company_size_min is not None
            and self.company_size_max is not None
            and self.company_size_min > self.company_size_max
        ):
            errors["company_size_max"] = "The largest company size must be at least the smallest."
        overlap = set(self.competitor_domains) & set(self.customer_domains)
        if overlap and "customer_domains" not in errors:
            listed = ", ".join(sorted(overlap))
            errors["customer_domains"] = f"Listed both as competitor and customer: {listed}."
        if errors:
            raise ValidationError(errors)


def _default_alert_thresholds() -> list[int]:
    return [80, 95]


class QuotaPolicy(SingletonModel):
    """What the tenant may spend: tokens, runs, dollars, CRM calls."""

    monthly_token_budget = models.PositiveBigIntegerField(default=5_000_000)
    daily_run_limit = models.PositiveIntegerField(default=50)
    daily_usd_limit = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("25.00"), validators=[MinValueValidator(0)]
    )
    per_run_usd_limit = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("2.00"), validators=[MinValueValidator(0)]
    )
    monthly_usd_limit = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("500.00"), validators=[MinValueValidator(0)]
    )
    alert_thresholds = ArrayField(
        models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100)]),
        default=_default_alert_thresholds,
        blank=True,
        help_text="Percent of each limit (daily and monthly USD, monthly tokens) at which the "
        "escalation contacts are emailed, once per period. Comma separated, e.g. 80,95.",
    )
    crm_requests_per_minute = models.PositiveIntegerField(
        default=50, validators=[MinValueValidator(1)], help_text="Shared by every worker."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "quotas and budgets"
        verbose_name_plural = "quotas and budgets"
        constraints = [
            models.CheckConstraint(
                condition=Q(per_run_usd_limit__lte=F("daily_usd_limit")),
                name="%(app_label)s_%(class)s_per_run_within_daily",
            )
        ]

    def __str__(self) -> str:
        return "Quotas and budgets"

    def clean(self) -> None:
        if (
            self.per_run_usd_limit is not None
            and self.daily_usd_limit is not None
            and self.per_run_usd_limit > self.daily_usd_limit
        ):
            raise ValidationError({"per_run_usd_limit": "The per-run limit cannot exceed the daily limit."})
        if (
            self.daily_usd_limit is not None
            and self.monthly_usd_limit is not None
            and self.daily_usd_limit > self.monthly_usd_limit
        ):
            raise ValidationError({"daily_usd_limit": "The daily limit cannot exceed the monthly limit."})
        bad = [t for t in self.alert_thresholds or [] if t is None or not 1 <= t <= 100]
        if bad:
            raise ValidationError({"alert_thresholds": "Each threshold is a percent from 1 to 100."})
        self.alert_thresholds = sorted(set(self.alert_thresholds or []))


class SendingPolicy(SingletonModel):
    """How much email the tenant may send, per month, day, hour and recipient domain."""

    monthly_limit = models.PositiveIntegerField(default=6000)
    daily_limit = models.PositiveIntegerField(default=300)
    hourly_limit = models.PositiveIntegerField(default=50)
    per_domain_hourly_limit = models.PositiveIntegerField(
        default=5, help_text="Emails per recipient domain per hour."
    )
    min_delay_seconds = models.PositiveIntegerField(default=60, help_text="Minimum gap between two sends.")
    sending_mailboxes = ArrayField(
        models.EmailField(),
        default=list,
        blank=True,
        help_text="The only addresses emails may be sent from (the first is the default). "
        "Empty: only the console's default sender.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sending policy"
        verbose_name_plural = "sending policy"
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_limit__lte=F("monthly_limit"))
                & Q(hourly_limit__lte=F("daily_limit"))
                & Q(per_domain_hourly_limit__lte=F("hourly_limit")),
                name="%(app_label)s_%(class)s_limits_nested",
            )
        ]

    def __str__(self) -> str:
        return "Sending policy"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        pairs = (
            ("daily_limit", "monthly_limit", "The daily limit cannot exceed the monthly limit."),
            ("hourly_limit", "daily_limit", "The hourly limit cannot exceed the daily limit."),
            (
                "per_domain_hourly_limit",
                "hourly_limit",
                "The per-domain hourly limit cannot exceed the hourly limit.",
            ),
        )
        for smaller, larger, message in pairs:
            low, high = getattr(self, smaller), getattr(self, larger)
            if low is not None and high is not None and low > high:
                errors[smaller] = message
        mailboxes: dict[str, None] = {}
        for raw in self.sending_mailboxes or []:
            try:
                mailboxes.setdefault(email_normalize(raw), None)
            except AddressInvalid as exc:
                errors["sending_mailboxes"] = str(exc)
        self.sending_mailboxes = list(mailboxes)
        if (
            self.hourly_limit
            and self.min_delay_seconds is not None
            and self.min_delay_seconds * self.hourly_limit > 3600
        ):
            errors["min_delay_seconds"] = (
                f"With {self.min_delay_seconds} s between sends, at most "
                f"{3600 // max(self.min_delay_seconds, 1)} emails fit in an hour: "
                "lower the delay or the hourly limit."
            )
        if errors:
            raise ValidationError(errors)


class Heartbeat(models.Model):
    """One run of the scheduled heartbeat job in this tenant: proof beat → worker → schema works."""

    ran_at = models.DateTimeField(auto_now_add=True, db_index=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ("-ran_at",)
        get_latest_by = "ran_at"

    def __str__(self) -> str:
        return f"Heartbeat at {self.ran_at:%Y-%m-%d %H:%M:%S}"


# The API token model lives beside its authentication class and services.
from tenants.policy.tokens import ApiToken  # noqa: E402, F401
