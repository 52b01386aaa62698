"""A test-only app (no models) that kills its own process inside post-migrate when POSTMIGRATE_KILL=1.

It leaves exactly the state a ``kill -9`` between the last migration and the end of
post-migrate leaves: every migration applied and recorded, content types and permissions
created for the first app only, no role group, no initialisation run recorded.
"""
