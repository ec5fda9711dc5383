"""Recipient validation and normalisation, per channel.

Emails are checked for syntax only (email-validator without DNS lookups) and de-duplicated
case-insensitively; phone numbers are parsed with phonenumbers, written as E.164 and
de-duplicated after normalisation. A number is accepted when it is *possible* for its region
(right length and country code): the provider is the judge of ranges newer than the library.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from .models import Channel


@dataclass
class Recipients:
    valid: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def reject(self, recipient: str, reason: str) -> None:
        self.rejected.append({"recipient": recipient, "reason": reason})


def normalise_email(value: str) -> str:
    """The normalised address; raises ValueError with the reason when it is not valid."""
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
    """Validate, normalise and de-duplicate recipients in their given order."""
    result = Recipients()
    seen: set[str] = set()
    for raw in values:
        value = raw.strip()
        try:
            if channel == Channel.EMAIL:
                normalised = normalise_email(value)
            else:
                normalised = normalise_phone(value, region)
        except ValueError as err:
            result.reject(raw, str(err))
            continue
        key = normalised.lower()
        if key not in seen:
            seen.add(key)
            result.valid.append(normalised)
    return result
