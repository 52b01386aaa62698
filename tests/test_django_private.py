"""The private Django names dbinit relies on still exist (fails loudly on a Django upgrade that drops one)."""

from importlib import import_module

import pytest
from django.db import connection

from dbinit import django_private


@pytest.mark.parametrize(("path", "attribute"), django_private.NAMES)
def test_private_django_name_still_exists(path, attribute):
    module, _, name = path.rpartition(".")
    owner = getattr(import_module(module), name)
    assert callable(getattr(owner, attribute, None)), (
        f"Django no longer has {path}.{attribute}: update dbinit/django_private.py for this Django version"
    )


def test_atomic_block_state_attributes_still_exist():
    missing = [a for a in django_private.ATOMIC_STATE if not hasattr(connection, a)]
    assert missing == [], f"Django's connection no longer has {missing}: update discard_broken_transaction"
