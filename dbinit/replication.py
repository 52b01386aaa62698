"""How far a PostgreSQL standby is behind its primary: one query on the standby, O(1).

The lag is the standard measure, computed on the standby alone (it needs no connection to
the primary and no privilege beyond connecting):

* everything received is replayed (``pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()``)
  while a WAL receiver streams from the primary: the lag is 0. An idle primary writes no
  transactions, so the last replayed one grows old without the standby being behind: its age
  must not read as lag.
* otherwise (WAL waiting to be replayed, replay paused, or no WAL receiver connected): the age
  of the last replayed transaction, ``now() - pg_last_xact_replay_timestamp()``. That is an
  upper bound: in the moment it takes to replay the first transaction after a long idle spell
  it reads as the length of the spell. The timestamps come from the primary's clock, so a
  skewed clock shifts it (a negative age reads as 0).
* no transaction replayed since the standby started and it is not caught up: unknown.

A server not in recovery has no lag (a read-only role, a database with
``default_transaction_read_only``, a copy); nor has SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass

# pg_get_wal_replay_pause_state() raises outside recovery: every column is guarded by it.
LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() END,
       CASE WHEN pg_is_in_recovery() THEN EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END,
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver)
"""


@dataclass(frozen=True)
class Lag:
    """A standby's replication lag as :data:`LAG_SQL` reads it."""

    seconds: float | None  # None: unknown (nothing replayed yet, and not caught up)
    paused: bool  # replay paused (pg_wal_replay_pause()), or a pause requested
    receiving: bool  # a WAL receiver is connected to the primary

    def describe(self) -> str:
        """``1.5 s`` or ``unknown``, with what explains it (``replay paused``)."""
        text = "unknown" if self.seconds is None else f"{self.seconds:.1f} s"
        notes = (["replay paused"] if self.paused else []) + ([] if self.receiving else ["no WAL receiver"])
        return text + (f" ({', '.join(notes)})" if notes else "")

    def over(self, limit: float) -> bool:
        return self.seconds is not None and self.seconds > limit


def measure(connection) -> Lag | None:
    """The replication lag of the server behind ``connection``, or None if it is not a standby."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(LAG_SQL)
        in_recovery, caught_up, age, pause_state, receiving = cursor.fetchone()
    if not in_recovery:
        return None
    paused = pause_state not in (None, "not paused")
    if caught_up and receiving:
        seconds = 0.0
    else:
        seconds = None if age is None else max(0.0, float(age))
    return Lag(seconds=seconds, paused=paused, receiving=bool(receiving))
