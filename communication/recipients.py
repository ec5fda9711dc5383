"""Recipient validation and normalisation, per channel.

Emails are checked for syntax only (email-validator without DNS lookups) and de-duplicated
case-insensitively; phone numbers are parsed with phonenumbers, written as E.164 and
de-duplicated after normalisation. A number is accepted when it is *possible* for its region
(right length and country code): the provider is the judge of ranges newer than the library.

Validating 100,000 addresses with email-validator alone takes seconds, so plain ASCII addresses
go through a strict regular expression first. It accepts only a subset of what email-validator
accepts and normalises exactly as it does (domain lower-cased, RFC 2142 role mailboxes
lower-cased); anything it does not accept is judged by email-validator, which also gives the
reason for a rejection. tests/communication/test_recipients.py proves the two agree.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from .models import Channel


@dataclass
class Recipients:
    valid: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def reject(self, recipient: str, reason: str) -> None:
        self.rejected.append({"recipient": recipient, "reason": reason})


# RFC 5322 atext, written out in ASCII: no IGNORECASE and no \w or \d, which match non-ASCII.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# A host name label: 1-63 letters, digits or hyphens, not starting or ending with a hyphen.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FAST_EMAIL = re.compile(
    rf"(?P<local>{_ATEXT}{{1,64}}(?:\.{_ATEXT}{{1,64}})*)"  # dot-atom; its length checked below
    rf"@(?P<domain>(?:{_LABEL}\.)+[A-Za-z]{{2,63}})"  # at least two labels, alphabetic TLD
)
_LOCAL_MAX_LENGTH = 64
_EMAIL_MAX_LENGTH = 254
_ROLE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


# email-validator rejects these names and their subdomains (localhost, test, invalid, onion, …).
_SPECIAL_USE_SUFFIXES = tuple(
    suffix for name in email_validator.SPECIAL_USE_DOMAIN_NAMES for suffix in (name, f".{name}")
)


def _fast_normalise_email(value: str) -> str | None:
    """The normalised address when it is a plain one the regex vouches for, else None."""
    if len(value) > _EMAIL_MAX_LENGTH:
        return None
    match = _FAST_EMAIL.fullmatch(value)
    if match is None:
        return None
    local, domain = match["local"], match["domain"].lower()
    if len(local) > _LOCAL_MAX_LENGTH or "--" in domain:  # "xn--" and other R-LDH labels
        return None
    if domain.endswith(_SPECIAL_USE_SUFFIXES):
        return None
    if local.lower() in _ROLE_MAILBOXES:
        local = local.lower()
    return f"{local}@{domain}"


def normalise_email(value: str) -> str:
    """The normalised address; raises ValueError with the reason when it is not valid."""
    normalised = _fast_normalise_email(value)
    if normalised is not None:
        return normalised
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise ValueError(str(err)) from err


def normalise_phone(value: str, region: str) -> str:
    """The number in E.164; raises ValueError with the reason when it is not a possible number."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as err:
        raise ValueError(f"not a phone number: {err}") from err
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def recipients_parse(values: Iterable[str], *, channel: str, region: str = "GH") -> Recipients:
    """Validate, normalise and de-duplicate recipients in their given order.

    Emails are de-duplicated case-insensitively, numbers after E.164 normalisation; the first
    spelling of a duplicate is kept. Invalid entries are listed in `rejected` with the reason.
    """
    result = Recipients()
    seen: set[str] = set()
    normalise = (
        normalise_email if channel == Channel.EMAIL else partial(normalise_phone, region=region)
    )
    for raw in values:
        value = raw.strip() if isinstance(raw, str) else ""
        if not value:
            result.reject(str(raw), "empty recipient")
            continue
        try:
            normalised = normalise(value)
        except ValueError as err:
            result.reject(raw, str(err))
            continue
        key = normalised.lower()
        if key not in seen:
            seen.add(key)
            result.valid.append(normalised)
    return result
