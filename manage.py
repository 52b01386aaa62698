#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")
    from django.core.management import execute_from_command_line

    from dbinit.errors import ConfigurationError

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load the settings now, so a bad value is reported cleanly
    except ConfigurationError as exc:
        sys.stderr.write(exc.render())
        sys.exit(2)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
