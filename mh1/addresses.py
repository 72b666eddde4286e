"""The one place an email address or a domain is parsed, validated and made canonical.

Everything that compares addresses (suppression add and lookup, the recipient locks, the sending
counters, the unsubscribe link, the payload schema, webhooks, imports) calls these helpers at the
boundary and stores what they return, so every later check compares canonical values:

- an address is the bare ``local@domain``: no display name, no angle brackets, no comment; lower
  case (mailbox providers treat the local part case-insensitively, and a suppression must match
  however the address was typed); the domain in its IDNA (``xn--``) form;
- a display name is kept apart (``Address.name``) and only ever put back into a header by
  ``email.utils.formataddr``, which quotes a comma or a bracket in it.

A value that is not exactly one valid address raises ``AddressInvalid`` with a message a person
can act on; nothing is guessed.
"""

from __future__ import annotations

import email.utils
import functools
from dataclasses import dataclass
from email.headerregistry import HeaderRegistry

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from mh1.errors import DomainError

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit, minus the brackets
MAX_DOMAIN_LENGTH = 253
_HEADERS = HeaderRegistry()


class AddressInvalid(DomainError, ValueError):
    """The value is not one valid email address (or domain); the message says why."""

    code = "address_invalid"


@dataclass(frozen=True)
class Address:
    """A canonical address and the display name that came with it (may be empty)."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1]

    def header(self) -> str:
        """The address as a To/From header value, the name quoted as RFC 5322 needs."""
        return email.utils.formataddr((self.name, self.email)) if self.name else self.email


def domain_normalize(raw: object) -> str:
    """A domain in canonical form (lower case, IDNA, no leading ``@`` or trailing dot)."""
    if not isinstance(raw, str):
        raise AddressInvalid(f"A domain must be text, not {type(raw).__name__}.")
    value = raw.strip().removeprefix("@").rstrip(".").lower()
    if not value:
        raise AddressInvalid("The domain is empty.")
    if any(ch.isspace() or ch in '<>@,;:"()[]\\/' or ord(ch) < 32 for ch in value):
        raise AddressInvalid(f"{raw!r} is not a domain.")
    try:
        ascii_domain = value.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise AddressInvalid(f"{raw!r} is not a valid domain name ({exc}).") from None
    if len(ascii_domain) > MAX_DOMAIN_LENGTH or "." not in ascii_domain:
        raise AddressInvalid(f"{raw!r} is not a valid domain name.")
    labels = ascii_domain.split(".")
    if any(not label or len(label) > 63 or label.startswith("-") or label.endswith("-") for label in labels):
        raise AddressInvalid(f"{raw!r} is not a valid domain name.")
    return ascii_domain


def address_parse(raw: object) -> Address:
    """Parse one address, with or without a display name (``Bob <bob@acme.example>``)."""
    if not isinstance(raw, str):
        raise AddressInvalid(f"An email address must be text, not {type(raw).__name__}.")
    return _address_parse(raw)


@functools.lru_cache(maxsize=4096)  # pure, and on the execution path twice per attempt
def _address_parse(raw: str) -> Address:
    value = raw.strip()
    if not value:
        raise AddressInvalid("The email address is empty.")
    if len(value) > 2 * MAX_EMAIL_LENGTH or any(ord(ch) < 32 for ch in value):
        raise AddressInvalid("The email address is too long or holds control characters.")
    # The stdlib's RFC 5322 header parser (not getaddresses' lenient split): a comma outside
    # quotes makes two addresses, a stray bracket is a defect.
    try:
        header = _HEADERS("To", value)
    except (IndexError, ValueError, TypeError):
        raise AddressInvalid(f"{raw!r} is not an email address.") from None
    addresses = header.addresses
    if header.defects or len(addresses) != 1:
        raise AddressInvalid(f"{raw!r} is not exactly one email address.")
    name, local, domain = addresses[0].display_name, addresses[0].username, addresses[0].domain
    if not local or not domain:
        raise AddressInvalid(f"{raw!r} has no domain (expected name@domain).")
    canonical = f"{local.lower()}@{domain_normalize(domain)}"
    if len(canonical) > MAX_EMAIL_LENGTH:
        raise AddressInvalid(f"The email address is longer than {MAX_EMAIL_LENGTH} characters.")
    try:
        validate_email(canonical)
    except ValidationError:
        raise AddressInvalid(f"{raw!r} is not a valid email address.") from None
    return Address(email=canonical, name=" ".join(name.split()))


def email_normalize(raw: object) -> str:
    """The canonical bare address of ``raw`` (a display name, if any, is dropped)."""
    return address_parse(raw).email


def domain_of(address: str) -> str:
    """The domain of an address already made canonical by ``email_normalize``."""
    return address.rsplit("@", 1)[-1] if "@" in address else ""
