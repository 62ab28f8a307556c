from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    """Exception rules, lifecycle and queues (issue 5 builds it out)."""

    name = "exceptions_app"
    verbose_name = "Exceptions"
    default_auto_field = "django.db.models.BigAutoField"
