"""Project settings plus popular third-party apps: what a real project installs.

About 300 migrations from PyPI packages pinned in requirements/dev.txt, chosen
for the constructs they use rather than for the apps themselves:

* wagtail (CMS): an SQLite FTS5 virtual table whose model maps its primary key
  to the implicit ``rowid`` (wagtailsearch), GIN indexes and ``tsvector`` columns
  on PostgreSQL, squashed migrations (wagtailimages ``0001_squashed_0021``),
  swappable image and document models, generic relations, M2M through tables
  (taggit), conditional unique constraints (workflows).
* django-allauth (auth suite): a functional index (``UPPER(email)``) and
  conditional unique constraints.
* django-celery-beat (task scheduler): many small AlterField migrations.
* django-oauth-toolkit: swappable models (``OAUTH2_PROVIDER_*_MODEL``).

* tests.apps.constructs (test-only): GeneratedField, db_default, comments, a db_table
  override, unmanaged and proxy models, an M2M through model, a generic relation,
  functional, partial and deferrable constraints.

``AUTH_USER_MODEL`` is the project's own, so ``auth.User`` is a swapped model too.
"""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + [  # noqa: F405
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "allauth.usersessions",
    "django_celery_beat",
    "oauth2_provider",
    "tests.apps.constructs",
]

MIDDLEWARE = MIDDLEWARE + ["allauth.account.middleware.AccountMiddleware"]  # noqa: F405
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
WAGTAIL_SITE_NAME = "AI Secretary (third-party test settings)"
WAGTAILADMIN_BASE_URL = "http://localhost"
# The project's user has no username: tell allauth so.
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
