import os
import signal

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def die(sender, **kwargs):
    """After the first app's content types and permissions: a death in the middle of post-migrate."""
    if os.environ.get("POSTMIGRATE_KILL") == "1":
        os.kill(os.getpid(), signal.SIGKILL)


class PostMigrateKillConfig(AppConfig):
    name = "tests.apps.postmigratekill"
    label = "postmigratekill"

    def ready(self):
        # Connected after contenttypes' and auth's receivers (this app is installed last), so
        # they have run once, for the first app, when this one fires.
        post_migrate.connect(die, dispatch_uid="tests.postmigratekill.die")
