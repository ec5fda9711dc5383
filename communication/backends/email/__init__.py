"""How email provider errors map onto the service's retry rules (SPEC §4)."""

import smtplib
import socket

from ...exceptions import CommunicationError, RecipientsRefused


def classify_email_error(err: Exception, provider: str) -> CommunicationError:
    """Turn an exception raised while sending one email into a `CommunicationError`.

    SMTP replies 4xx are transient and 5xx permanent; connection trouble and timeouts are
    transient; an HTTP API backend (anymail) is transient on 429 and 5xx only.
    """
    if isinstance(err, CommunicationError):
        return err
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(err.recipients.values()), (550, b"refused"))
        return _smtp_reply_error(RecipientsRefused, code, reply, provider)
    if isinstance(err, smtplib.SMTPResponseException):
        return _smtp_reply_error(CommunicationError, err.smtp_code, err.smtp_error, provider)
    if isinstance(err, smtplib.SMTPServerDisconnected | socket.timeout | OSError):
        return CommunicationError(f"connection error: {err}", provider=provider, retryable=True)
    status = getattr(err, "status_code", None)
    if isinstance(status, int):
        retryable = status == 429 or status >= 500
        return CommunicationError(
            str(err), provider=provider, status_code=status, retryable=retryable
        )
    return CommunicationError(f"{type(err).__name__}: {err}", provider=provider)


def _smtp_reply_error(
    error_class: type[CommunicationError], code: int, reply: bytes | str, provider: str
) -> CommunicationError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return error_class(
        f"SMTP {code}: {text}", provider=provider, status_code=code, retryable=400 <= code < 500
    )
