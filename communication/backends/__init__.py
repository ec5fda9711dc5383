"""Provider lookup: the one place that maps settings to backend instances.

Keeping lookup here means the move to Django 6.x's `MAILERS` touches this module only.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

from ..conf import get_setting
from ..exceptions import ProviderConfigurationError
from .sms.base import BaseSmsBackend

SMS_BACKEND_ALIASES = {
    "console": "communication.backends.sms.console.SmsBackend",
    "locmem": "communication.backends.sms.locmem.SmsBackend",
    "file": "communication.backends.sms.file.SmsBackend",
    "webhook": "communication.backends.sms.webhook.SmsBackend",
    "twilio": "communication.backends.sms.twilio.SmsBackend",
    "arkesel": "communication.backends.sms.arkesel.SmsBackend",
}


def get_email_backend() -> BaseEmailBackend:
    """A Django email backend per `EMAIL_BACKEND`; errors raise instead of passing silently."""
    return get_connection(fail_silently=False)


def email_provider_name() -> str:
    """A short name of the email provider, used to key its rate limiter (`smtp`, `ses`, …)."""
    module = settings.EMAIL_BACKEND.rsplit(".", 1)[0]
    return module.rsplit(".", 1)[-1]


def sms_backend_path(name: str | None = None) -> str:
    name = name or get_setting("SMS_BACKEND")
    return SMS_BACKEND_ALIASES.get(name, name)


def sms_backend_class(name: str | None = None) -> type[BaseSmsBackend]:
    """The class for an alias or dotted path; ProviderConfigurationError when there is none."""
    path = sms_backend_path(name)
    try:
        backend_class = import_string(path)
    except ImportError as err:
        raise ProviderConfigurationError(
            f"SMS_BACKEND {path!r} cannot be imported (use one of "
            f"{', '.join(SMS_BACKEND_ALIASES)} or a dotted path): {err}"
        ) from err
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseSmsBackend)):
        raise ProviderConfigurationError(f"SMS_BACKEND {path!r} is not a BaseSmsBackend subclass")
    return backend_class


def get_sms_backend(name: str | None = None) -> BaseSmsBackend:
    """An SMS backend by alias (`webhook`, `twilio`, …) or dotted path; default `SMS_BACKEND`.

    Raises ProviderConfigurationError naming the missing or wrong setting.
    """
    backend_class = sms_backend_class(name)
    try:
        return backend_class()
    except ProviderConfigurationError:
        raise
    except ImproperlyConfigured as err:
        raise ProviderConfigurationError(str(err), provider=backend_class.provider_name) from err


def sms_provider_name() -> str:
    return sms_backend_class().provider_name
