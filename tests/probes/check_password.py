"""Run in a subprocess: whether the user EMAIL logs in with the password read from stdin.

Prints JSON: ``{"matches": bool}`` (Django's ``User.check_password``, the admin login's own check);
the password comes on stdin so that it is never in a process listing.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

user = get_user_model().objects.with_email(sys.argv[1]).get()
print(json.dumps({"matches": user.check_password(sys.stdin.read().rstrip("\n"))}))
