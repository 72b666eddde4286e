"""The one HTTP path to every vendor: shared rate limit, circuit breaker, retries, classified errors.

A call goes, per attempt: our rate limit for (tenant, vendor), shared by every worker through
Redis -> the circuit breaker of (tenant, vendor) -> httpx. Retryable failures (429, 5xx, time-outs,
connection errors) are retried with exponential backoff and jitter, waiting at least what the
vendor's ``Retry-After`` asks. What is left at the end is raised as a ``ConnectorError``.

A request that is not idempotent (POST, and PATCH unless the caller says it is) is retried only
when it certainly never arrived: the connection never opened (connect error, connect or pool
time-out), or the vendor refused it unprocessed (429, 503 with ``Retry-After``). Any other failure
once it may have been sent (read/write errors and time-outs, a dropped connection, 500/502/504)
raises ``OutcomeUnknownError``: the caller's ledger marks it unknown and reconciles by reading.
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pybreaker
from limits import RateLimitItemPerMinute
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from connectors.egress import url_refusal
from connectors.errors import (
    CircuitOpenError,
    ConnectorError,
    FatalError,
    OutcomeUnknownError,
    RateLimitedLocally,
    RetryableError,
    error_from_response,
)

logger = logging.getLogger("connectors.http")

CIRCUIT_FAIL_MAX = 5
CIRCUIT_RESET_TIMEOUT = 60  # seconds

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class ClientConfig:
    """Everything one client needs for one tenant's account at one vendor."""

    system: str
    base_url: str
    token: str = field(repr=False)
    tenant_key: str
    timeout: float = 30.0
    requests_per_minute: int | None = None
    redis_url: str | None = None
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # Vendor specifics, e.g. GoHighLevel's ``location_id``.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold a URL that is a secret
    # Longest we block a worker waiting for our own rate limit before giving the slot back to Celery.
    rate_limit_max_wait: float = 10.0
    rate_limit_prefix: str = "mh1-vendor-rl"


# --- circuit breakers: one per (tenant, vendor) per process --------------------------------------

_breakers: dict[tuple[str, str], pybreaker.CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def _not_a_vendor_failure(exc: BaseException) -> bool:
    # Only the vendor misbehaving (429, 5xx, time-outs) counts; our own refusals and 4xx do not.
    vendor_failure = isinstance(exc, (RetryableError, OutcomeUnknownError))
    return not vendor_failure or isinstance(exc, (CircuitOpenError, RateLimitedLocally))


def circuit_breaker_for(tenant_key: str, system: str) -> pybreaker.CircuitBreaker:
    key = (tenant_key, system)
    with _breakers_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = pybreaker.CircuitBreaker(
                fail_max=CIRCUIT_FAIL_MAX,
                reset_timeout=CIRCUIT_RESET_TIMEOUT,
                exclude=[_not_a_vendor_failure],
                name=f"{system}:{tenant_key}",
                # The call that trips the breaker raises its own, more useful, vendor error.
                throw_new_error_on_trip=False,
            )
            _breakers[key] = breaker
        return breaker


def reset_circuit_breakers() -> None:
    """Forget every breaker (tests, or an operator after fixing a vendor account)."""
    with _breakers_lock:
        _breakers.clear()


# --- rate limit storage: one per (url, prefix) per process, so connection pools are shared -------

_storages: dict[tuple[str, str], Storage] = {}
_storages_lock = threading.Lock()


def _storage_for(redis_url: str | None, prefix: str) -> Storage:
    # Without Redis the limit is per process only: fine for development, not for several workers.
    uri = redis_url or "memory://"
    key = (uri, prefix)
    with _storages_lock:
        storage = _storages.get(key)
        if storage is None:
            options = {"key_prefix": prefix} if redis_url else {}
            storage = storage_from_string(uri, **options)
            _storages[key] = storage
        return storage


def reset_rate_limits() -> None:
    """Forget every shared rate-limit window (tests: each starts with a vendor's full quota)."""
    with _storages_lock:
        storages = list(_storages.values())
    for storage in storages:
        try:
            storage.reset()
        except Exception:  # a storage on a Redis that is gone (a test's) has nothing to reset
            logger.debug("rate-limit storage could not be reset", exc_info=True)


# --- helpers ------------------------------------------------------------------------------------


# Repeating these cannot create a second effect. PATCH is not among them: a PATCH that appends
# or increments is not; a caller whose PATCH is (HubSpot's upsert by email) says so with
# ``idempotent=True``, as does one whose POST only reads (a search) or sets a state (pause).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# The request certainly never left: no connection was opened, or none was free in the pool.
NEVER_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _refused_unprocessed(status_code: int, retry_after: float | None) -> bool:
    """The vendor turned the request away before acting on it: safe to repeat any request.

    429 is a refusal by definition; a 503 is only when it says when to come back (a load shedder
    or maintenance page), a bare 503 can come from a proxy after the backend applied the write.
    """
    return status_code == 429 or (status_code == 503 and retry_after is not None)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_EMAIL_IN_PATH = re.compile(r"[^/?&=]+@[^/?&=]+")


def _loggable_path(path: str) -> str:
    # A full URL (Clay's webhook source) is itself a credential: log only where it goes.
    parts = urlsplit(path)
    if parts.scheme:
        return f"{parts.scheme}://{parts.netloc}/[redacted]"
    # HubSpot addresses contacts by email in the path: keep personal data out of the logs.
    return _EMAIL_IN_PATH.sub("<email>", path)


class VendorHTTP:
    """An ``httpx.Client`` for one tenant's account at one vendor, with the protections above.

    Subclasses set ``system`` and ``default_base_url`` and may add headers in ``default_headers``.
    """

    system: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.time,
    ):
        if self.system and config.system != self.system:
            raise ValueError(f"{type(self).__name__} needs a {self.system!r} config, got {config.system!r}")
        # Checked again here (the model checks on save): a URL written straight into the table, or a
        # setting changed since, never gets the tenant's token.
        if refusal := url_refusal(config.system, config.base_url):
            raise FatalError(config.system, refusal)
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._client = httpx.Client(
            base_url=config.base_url or self.default_base_url,
            headers=self.default_headers(),
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
        )
        self._breaker = circuit_breaker_for(config.tenant_key, config.system)
        self._storage = _storage_for(config.redis_url, config.rate_limit_prefix)
        self._limiter = MovingWindowRateLimiter(self._storage)

    def default_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.token}",
            "Accept": "application/json",
            "User-Agent": "mh1-console",
        }

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> VendorHTTP:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the call ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        ok_statuses: Collection[int] = (),
        endpoint_limit: tuple[str, int] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one logical request; return the response (2xx or one of ``ok_statuses``).

        ``ok_statuses`` lets a client handle e.g. 404 or 409 itself instead of getting an error.
        ``endpoint_limit`` is ``(name, per_minute)`` for a vendor endpoint with its own, lower
        limit (Instantly's ``GET /api/v2/emails``: 20/min), taken on top of the system-wide one.
        ``idempotent`` overrides what the method implies: ``True`` where the vendor's semantics
        make repeating harmless (a search sent as POST, an upsert by key, pausing a campaign).
        Raises ``ConnectorError`` (retryable, validation or fatal), or ``OutcomeUnknownError``
        when a request that is not idempotent failed after it may have been applied.
        """
        # An absolute URL (Clay's webhook source) leaves the base URL: it must pass the same check.
        if urlsplit(path).scheme and (refusal := url_refusal(self.config.system, path)):
            raise FatalError(self.config.system, refusal)
        repeatable = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(_retry_in_process),
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )
        for attempt in retrying:
            with attempt:
                return self._attempt(
                    method,
                    path,
                    attempt.retry_state.attempt_number,
                    json=json,
                    params=params,
                    headers=headers,
                    ok_statuses=ok_statuses,
                    endpoint_limit=endpoint_limit,
                    repeatable=repeatable,
                )
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        path: str,
        attempt_number: int,
        *,
        json: Any,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
        ok_statuses: Collection[int],
        endpoint_limit: tuple[str, int] | None,
        repeatable: bool,
    ) -> httpx.Response:
        # An open circuit sends nothing, so it must not spend (or wait for) a rate-limit token.
        if self._breaker.current_state != pybreaker.STATE_OPEN:
            self._take_token(endpoint_limit)
        try:
            with self._breaker.calling():
                return self._send(
                    method, path, attempt_number, json, params, headers, ok_statuses, repeatable
                )
        except pybreaker.CircuitBreakerError:
            logger.warning(
                "vendor circuit open",
                extra={"vendor": self.config.system, "tenant": self.config.tenant_key},
            )
            raise CircuitOpenError(
                self.config.system,
                f"circuit open after repeated failures; retry in up to {CIRCUIT_RESET_TIMEOUT}s",
                retry_after=float(CIRCUIT_RESET_TIMEOUT),
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        attempt_number: int,
        json: Any,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
        ok_statuses: Collection[int],
        repeatable: bool,
    ) -> httpx.Response:
        log_fields = {
            "vendor": self.config.system,
            "tenant": self.config.tenant_key,
            "method": method,
            "path": _loggable_path(path),
            "attempt": attempt_number,
        }
        started = time.monotonic()
        try:
            response = self._client.request(method, path, json=json, params=params, headers=headers)
        except NEVER_SENT_ERRORS as exc:
            name = type(exc).__name__
            if isinstance(exc, httpx.TimeoutException):
                logger.warning("vendor call timed out", extra={**log_fields, "error": name})
                raise RetryableError(
                    self.config.system, f"timed out after {self.config.timeout:g}s before sending ({name})"
                ) from exc
            logger.warning("vendor call failed", extra={**log_fields, "error": name})
            raise RetryableError(self.config.system, f"connection failed ({name})") from exc
        except httpx.TransportError as exc:
            # The request may have reached the vendor: only one safe to repeat is retried.
            timed_out = isinstance(exc, httpx.TimeoutException)
            name = type(exc).__name__
            logger.warning(
                "vendor call timed out" if timed_out else "vendor call failed",
                extra={**log_fields, "error": name},
            )
            what = f"no answer after {self.config.timeout:g}s" if timed_out else "the connection broke"
            if not repeatable:
                raise OutcomeUnknownError(
                    self.config.system, f"{what} to {method} ({name}); the write may have been applied"
                ) from exc
            if timed_out:
                raise RetryableError(
                    self.config.system, f"timed out after {self.config.timeout:g}s ({name})"
                ) from exc
            raise RetryableError(self.config.system, f"connection failed ({name})") from exc
        log_fields.update(status=response.status_code, elapsed_ms=round((time.monotonic() - started) * 1000))
        if response.is_success or response.status_code in ok_statuses:
            logger.info("vendor call", extra=log_fields)
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error = error_from_response(self.config.system, response, retry_after=retry_after)
        if (
            not repeatable
            and isinstance(error, RetryableError)
            and not _refused_unprocessed(response.status_code, retry_after)
        ):
            error = OutcomeUnknownError(
                self.config.system,
                f"{error.vendor_message} (the {method} may have been applied: read before repeating it)",
                status_code=error.status_code,
                vendor_code=error.vendor_code,
                retry_after=retry_after,
            )
        self._redact(error)
        logger.warning(
            "vendor call refused",
            extra={**log_fields, "kind": error.kind, "vendor_message": error.vendor_message},
        )
        raise error

    def _redact(self, error: ConnectorError) -> None:
        # A vendor that echoes the credential back must not put it into our logs or the admin.
        token = self.config.token
        if token and token in error.vendor_message:
            error.vendor_message = error.vendor_message.replace(token, "[redacted]")
            error.args = (error.message,)

    # --- rate limit -------------------------------------------------------------------------------

    def _take_token(self, endpoint_limit: tuple[str, int] | None) -> None:
        if self.config.requests_per_minute:
            self._take(RateLimitItemPerMinute(self.config.requests_per_minute), "all")
        if endpoint_limit is not None:
            name, per_minute = endpoint_limit
            self._take(RateLimitItemPerMinute(per_minute), name)

    def _take(self, item: RateLimitItemPerMinute, scope: str) -> None:
        identifiers = (self.config.system, self.config.tenant_key, scope)
        waited = 0.0
        while True:
            try:
                if self._limiter.hit(item, *identifiers):
                    return
                reset_at, _remaining = self._limiter.get_window_stats(item, *identifiers)
            except self._storage.base_exceptions as exc:
                # Fail closed: without the shared count we could exceed the vendor's limit for everyone.
                raise RetryableError(self.config.system, "our rate limiter is unavailable (Redis)") from exc
            wait = max(0.05, reset_at - self._clock())
            if waited + wait > self.config.rate_limit_max_wait:
                logger.info(
                    "vendor rate limit reached locally",
                    extra={
                        "vendor": self.config.system,
                        "tenant": self.config.tenant_key,
                        "scope": scope,
                        "retry_after": round(wait, 2),
                    },
                )
                raise RateLimitedLocally(self.config.system, retry_after=wait)
            self._sleep(wait)
            waited += wait

    # --- retry policy -----------------------------------------------------------------------------

    def _backoff(self) -> wait_exponential_jitter:
        return wait_exponential_jitter(
            multiplier=self.config.backoff_base, max=self.config.backoff_max, jitter=self.config.backoff_base
        )

    def _wait(self, retry_state: RetryCallState) -> float:
        backoff = self._backoff()(retry_state)
        retry_after = _retry_after_of(retry_state)
        if retry_after is not None:
            return min(max(backoff, retry_after), self.config.backoff_max)
        return backoff

    def _stop(self, retry_state: RetryCallState) -> bool:
        if stop_after_attempt(self.config.max_attempts)(retry_state):
            return True
        # A vendor asking for more than we may wait here: waiting less would only fail again and burn
        # quota, so hand the error (with its retry_after) to the caller, whose task can retry later.
        retry_after = _retry_after_of(retry_state)
        return retry_after is not None and retry_after > self.config.backoff_max

    def _log_retry(self, retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        logger.info(
            "vendor call retrying",
            extra={
                "vendor": self.config.system,
                "tenant": self.config.tenant_key,
                "attempt": retry_state.attempt_number,
                "wait_s": round(retry_state.upcoming_sleep, 2),
                "status": getattr(exc, "status_code", None),
            },
        )


class VendorClient:
    """Base of the vendor clients: owns a ``VendorHTTP`` (or takes one, for sharing or tests)."""

    http_class: ClassVar[type[VendorHTTP]] = VendorHTTP

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        http: VendorHTTP | None = None,
    ):
        self.config = config
        self.http = http or self.http_class(config, transport=transport, sleep=sleep)

    @property
    def system(self) -> str:
        return self.config.system

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> VendorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> Any:
        """The body as JSON; a 2xx that is not JSON is a vendor contract break, not a retry."""
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise FatalError(
                self.system,
                f"expected JSON from {response.request.method} {response.request.url.path}, "
                f"got {response.headers.get('content-type', 'no content type')}",
                status_code=response.status_code,
            ) from exc


def _retry_in_process(exc: BaseException) -> bool:
    # Our own refusals are retryable for the caller's task, but pointless to retry right here.
    return isinstance(exc, RetryableError) and not isinstance(exc, (CircuitOpenError, RateLimitedLocally))


def _retry_after_of(retry_state: RetryCallState) -> float | None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    return exc.retry_after if isinstance(exc, ConnectorError) else None
