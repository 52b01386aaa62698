"""ASGI entry point (uvicorn aisecretary.asgi:application).

As for WSGI: dbinit's start-up step (DBINIT_STARTUP) runs before the
application is built, once per worker process.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

from dbinit.startup import asgi_application  # noqa: E402

application = asgi_application()
