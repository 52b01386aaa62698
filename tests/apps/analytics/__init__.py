"""A test-only app routed to its own database alias, ``analytics`` (multi-database tests)."""
