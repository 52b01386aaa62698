"""Who may see the details of the health probes.

Anonymous clients (load balancers, the internet) learn only whether each check passed:
details name roles, databases, hosts, tables and server messages. Staff users and
holders of ``DBINIT_HEALTH_TOKEN`` (sent as ``Authorization: Bearer TOKEN``) see them.
Every probe view asks :func:`may_see_details`; it does no hashing and at most the
session lookup Django's authentication middleware does anyway.
"""

from __future__ import annotations

import hmac

from django.conf import settings


def _bearer_token(request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def may_see_details(request) -> bool:
    """Whether ``request`` may see health details: a staff user, or the configured token."""
    expected = getattr(settings, "DBINIT_HEALTH_TOKEN", "") or ""
    given = _bearer_token(request)
    # compare_digest: the time taken does not tell how much of a guess was right.
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)
