"""manage.py dbinit_docs: print the error-code reference page generated from the catalogue."""

from django.core.management.base import BaseCommand

from dbinit.errors import reference_markdown


class Command(BaseCommand):
    help = "Print docs/error-codes.md, generated from dbinit's error catalogue (make docs writes it)."
    requires_system_checks = []

    def handle(self, *args, **options):
        self.stdout.write(reference_markdown(), ending="")
