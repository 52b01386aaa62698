"""WSGI entry point (gunicorn aisecretary.wsgi).

The application is built only after dbinit's start-up step (DBINIT_STARTUP:
init, check or off) succeeded in this worker; a critical failure exits with
its dbinit id and resolution, so no worker serves a broken database.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

from dbinit.startup import wsgi_application  # noqa: E402

application = wsgi_application()
