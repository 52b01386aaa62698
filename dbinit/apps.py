from django.apps import AppConfig


class DbinitConfig(AppConfig):
    """Registers dbinit's system checks and signal receivers; touches no database."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "dbinit"
    verbose_name = "Database initialisation"

    def ready(self):
        from . import checks, signals  # noqa: F401 - importing registers them

        signals.connect(self)
