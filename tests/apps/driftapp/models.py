"""A test-only app whose model has a field its migrations lack (what makemigrations --check catches)."""

from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=50)
    pinned = models.BooleanField(default=False)  # not in 0001_initial on purpose
