"""Run in a subprocess: count database connections and queries made by django.setup()."""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

from django.db.backends.base import base  # noqa: E402

calls = {"connect": 0, "cursor": 0}
_connect, _cursor = base.BaseDatabaseWrapper.connect, base.BaseDatabaseWrapper._cursor


def connect(self, *args, **kwargs):
    calls["connect"] += 1
    return _connect(self, *args, **kwargs)


def cursor(self, *args, **kwargs):
    calls["cursor"] += 1
    return _cursor(self, *args, **kwargs)


base.BaseDatabaseWrapper.connect, base.BaseDatabaseWrapper._cursor = connect, cursor

import django  # noqa: E402

django.setup()
import aisecretary.urls  # noqa: E402,F401 - the URLconf too (it imports the health backend)

print(json.dumps(calls))
