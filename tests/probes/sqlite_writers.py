"""Run in a subprocess against DATABASE_URL: read-then-write transactions, as views do.

Usage: ``sqlite_writers.py COUNT GO_FILE``. Prints ``ready`` once Django is set up, then waits
(up to 60 s) until GO_FILE exists, so that every process starts together, then runs COUNT ``transaction.atomic()`` blocks that each read
the counter row (dbinit's metadata key ``bench.counter``) and write it back plus one. Prints
one JSON line: committed and locked transactions, and the seconds the loop took. Any error
other than "database is locked" ends the process with a traceback (a test failure).
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import django  # noqa: E402

django.setup()

from django.db import OperationalError, transaction  # noqa: E402

from dbinit.models import Metadata  # noqa: E402

KEY = "bench.counter"
count, go = int(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.01)

committed = locked = 0
start = time.perf_counter()
for _ in range(count):
    try:
        with transaction.atomic():
            value = int(Metadata.objects.get(key=KEY).value)  # read first ...
            Metadata.objects.filter(key=KEY).update(value=str(value + 1))  # ... then write
        committed += 1
    except OperationalError as exc:
        if "locked" not in str(exc):
            raise
        locked += 1
print(json.dumps({"committed": committed, "locked": locked, "seconds": time.perf_counter() - start}))
