"""Run in a subprocess: set the password of the user EMAIL to PASSWORD (as changepassword would).

A missing user is created as an active staff superuser first (``--create``).
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

email, password = sys.argv[1], sys.argv[2]
User = get_user_model()
if "--create" in sys.argv[3:]:
    User.objects.create_superuser(email=email, password=password)
else:
    user = User.objects.with_email(email).get()
    user.set_password(password)
    user.save(update_fields=["password"])
