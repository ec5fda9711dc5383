"""How email provider errors map onto the service's retry rules (SPEC §4)."""

import smtplib

from anymail.exceptions import AnymailRecipientsRefused

from ...exceptions import CommunicationError, RecipientsRefused
from ..http import http_status_error

# smtplib errors raised before any recipient was looked at: a greeting or HELO refused, or the
# server hanging up. Whatever their code, the next connection may fare better.
_SMTP_CONNECTION_ERRORS = (
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    smtplib.SMTPServerDisconnected,
)


def classify_email_error(err: Exception, provider: str) -> CommunicationError:
    """Turn an exception raised while sending one email into a `CommunicationError`.

    SMTP replies 4xx are transient and 5xx permanent (a 5xx for the recipient gives
    `RecipientsRefused`); connection trouble and timeouts are transient; an HTTP API backend
    (anymail) is transient on 429 and 5xx only, and its `Retry-After` is kept. Anything else is
    permanent: retrying a bug does not fix it.
    """
    if isinstance(err, CommunicationError):
        return err
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(err.recipients.values()), (550, b"refused"))
        error_class = RecipientsRefused if code >= 500 else CommunicationError
        return _smtp_reply_error(error_class, code, reply, provider)
    if isinstance(err, _SMTP_CONNECTION_ERRORS):
        code = getattr(err, "smtp_code", None)
        return CommunicationError(
            f"SMTP connection error: {err}",
            provider=provider,
            status_code=code if isinstance(code, int) and code > 0 else None,
            retryable=True,
        )
    if isinstance(err, smtplib.SMTPResponseException):
        return _smtp_reply_error(CommunicationError, err.smtp_code, err.smtp_error, provider)
    if isinstance(err, smtplib.SMTPException):
        # e.g. SMTPNotSupportedError: the server lacks a feature we need; retrying won't add it.
        return CommunicationError(f"SMTP error: {err}", provider=provider)
    if _is_recipients_refused(err):
        return RecipientsRefused(str(err), provider=provider)
    status = getattr(err, "status_code", None)
    if status is None:  # requests.HTTPError keeps it on its response
        status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(status, int):
        return http_status_error(
            str(err), status=status, response=getattr(err, "response", None), provider=provider
        )
    if isinstance(err, OSError):  # refused, reset, timeouts, DNS, TLS; requests' errors too
        return CommunicationError(f"connection error: {err}", provider=provider, retryable=True)
    return CommunicationError(f"{type(err).__name__}: {err}", provider=provider)


def _smtp_reply_error(
    error_class: type[CommunicationError], code: int, reply: bytes | str, provider: str
) -> CommunicationError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return error_class(
        f"SMTP {code}: {text}", provider=provider, status_code=code, retryable=400 <= code < 500
    )


def _is_recipients_refused(err: Exception) -> bool:
    # anymail raises AnymailRecipientsRefused when the ESP rejected every recipient.
    return isinstance(err, AnymailRecipientsRefused)
