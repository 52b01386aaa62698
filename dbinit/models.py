"""dbinit's own bookkeeping: migration file checksums and the history of initdb runs."""

from django.db import models


class MigrationChecksum(models.Model):
    """SHA-256 of a migration file when it was applied (Flyway's ``validate`` idea)."""

    app = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    checksum = models.CharField(max_length=64)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="dbinit_checksum_unique")]

    def __str__(self):
        return f"{self.app}.{self.name}"


class InitializationRun(models.Model):
    """One run of initdb (or of start-up initialisation): when, where, how it ended, each step."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    trigger = models.CharField(max_length=20, default="initdb")
    outcome = models.CharField(max_length=20)
    error_code = models.CharField(max_length=20, blank=True)
    steps = models.JSONField(default=list)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "started_at"

    def __str__(self):
        return f"{self.trigger} {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class Metadata(models.Model):
    """What the database itself remembers about how it was set up (Rails' ``ar_internal_metadata``).

    One row per key, e.g. the environment that initialised it; read with one primary-key lookup.
    """

    key = models.CharField(max_length=64, primary_key=True)
    value = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "metadata"

    def __str__(self):
        return f"{self.key}={self.value}"
