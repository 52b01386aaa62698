"""A test-only app whose second migration fails until BROKENAPP_FIXED=1 (see tests/settings/broken.py)."""

from django.db import models


class Widget(models.Model):
    name = models.CharField(max_length=50)


class Gadget(models.Model):
    name = models.CharField(max_length=50)
