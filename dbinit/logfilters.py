"""Logging filter that keeps database passwords out of every log line."""

import logging

from .configuration import scrub


class ScrubSecretsFilter(logging.Filter):
    """Rewrites the record's message with passwords masked (drivers may echo DSNs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not a reason to drop it
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
