"""A test-only app whose migrations are applied from a temporary copy (see tests/settings/checksum.py).

Editing an applied migration file on disk is the one way to prove that the checksums
are of the file's content: the tests edit the copy, never the file in the repository.
"""

from django.db import models


class Entry(models.Model):
    id = models.BigAutoField(primary_key=True)
    text = models.CharField(max_length=50)

    def __str__(self):
        return self.text
