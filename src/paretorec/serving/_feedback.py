"""``FeedbackStore``: durable, idempotent storage of feedback events (SQLAlchemy).

When an event is safe: :meth:`FeedbackStore.add` returns only after the transaction that
holds the events has committed. On SQLite (the default) the database runs in WAL mode with
``synchronous=FULL``, so a commit is on disk (fsync of the WAL) before ``add`` returns, and
survives a kill -9 of the process or a power cut. Any other SQLAlchemy URL works the same
way (e.g. ``postgresql+psycopg://...`` for several service instances; PostgreSQL commits
durably by default).

Idempotency: every event carries an ``idempotency_key``; the column is unique and rows are
inserted with ``ON CONFLICT DO NOTHING``, so a retried post (same key) is stored once,
also when two processes race with the same key; the content first stored wins.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._validation import ParetorecError, show

#: Feedback kinds the store accepts.
FEEDBACK_KINDS = ("impression", "click", "like", "purchase", "rating")
MAX_KEY_LENGTH = 200
MAX_ID_LENGTH = 200


@dataclass(frozen=True)
class StoreResult:
    """Keys stored by this call and keys already present (duplicates, stored once)."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def _url(url: str | Path) -> str:
    text = str(url)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class FeedbackStore:
    """Feedback events in a SQL table (see the module docstring for durability).

    Args:
        url: a SQLAlchemy URL or a file path (a SQLite database).
        synchronous: SQLite's ``synchronous`` level; ``"FULL"`` (the default) makes every
            commit durable; ``"NORMAL"`` may lose the last commits on a power cut (not on a
            process crash).
    """

    def __init__(self, url: str | Path = "feedback.sqlite3", *, synchronous: str = "FULL") -> None:
        from sqlalchemy import (
            Column,
            Float,
            Integer,
            MetaData,
            String,
            Table,
            create_engine,
            event,
        )

        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ParetorecError(
                f"synchronous must be 'FULL', 'EXTRA' or 'NORMAL', got {show(synchronous)}"
            )
        self.url = _url(url)
        self.dialect = self.url.split(":", 1)[0].split("+", 1)[0]
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "sqlite":
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine = create_engine(self.url, **options)
        if self.dialect == "sqlite":

            @event.listens_for(self.engine, "connect")
            def _pragmas(connection: Any, _record: Any) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

        self.metadata = MetaData()
        self.table = Table(
            "feedback_events",
            self.metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("idempotency_key", String(MAX_KEY_LENGTH), nullable=False, unique=True),
            Column("kind", String(16), nullable=False),
            Column("item_id", String(MAX_ID_LENGTH), nullable=False),
            Column("user_id", String(MAX_ID_LENGTH)),
            Column("request_id", String(MAX_ID_LENGTH)),
            Column("point_id", Integer),
            Column("position", Integer),
            Column("propensity", Float),
            Column("value", Float),
            Column("timestamp", Float, nullable=False),
            Column("received_at", Float, nullable=False),
        )
        self._create_lock = threading.Lock()
        with self._create_lock:
            self._create_tables()

    def _create_tables(self, attempts: int = 5) -> None:
        """Create the table unless it exists. ``checkfirst`` then ``CREATE`` is not atomic:
        another process opening the same store can create it in between (SQLite: "table
        already exists"; PostgreSQL: a duplicate ``pg_type`` key), so such a failure is
        retried, and the retry's check then finds the table."""
        from sqlalchemy.exc import DBAPIError

        for attempt in range(attempts):
            try:
                self.metadata.create_all(self.engine, checkfirst=True)
                return
            except DBAPIError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def __repr__(self) -> str:
        return f"FeedbackStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ write
    def add(self, events: Sequence[Mapping[str, Any]]) -> StoreResult:
        """Store ``events`` in one transaction; returns after the commit (durable)."""
        rows = [self._row(event, i) for i, event in enumerate(events)]
        if not rows:
            return StoreResult()
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            unique.setdefault(row["idempotency_key"], row)
        keys = list(unique)
        with self.engine.begin() as connection:
            inserted = self._insert(connection, list(unique.values()))
        stored = [key for key in keys if key in inserted]
        # a key repeated inside one call is stored once; its repeats count as duplicates
        seen: set[str] = set()
        duplicates = []
        for row in rows:
            key = row["idempotency_key"]
            if key in inserted and key not in seen:
                seen.add(key)
            else:
                duplicates.append(key)
        return StoreResult(stored=stored, duplicates=duplicates)

    def _insert(self, connection: Any, rows: list[dict[str, Any]]) -> set[str]:
        key = self.table.c.idempotency_key
        if self.dialect in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            insert: Any = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
            statement = (
                insert(self.table)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(key)
            )
            return {r[0] for r in connection.execute(statement)}
        # other databases: one row at a time in a savepoint
        from sqlalchemy.exc import IntegrityError

        inserted = set()
        for row in rows:
            try:
                with connection.begin_nested():
                    connection.execute(self.table.insert().values(row))
                inserted.add(row["idempotency_key"])
            except IntegrityError:
                pass
        return inserted

    def _row(self, event: Mapping[str, Any], i: int) -> dict[str, Any]:
        if not isinstance(event, Mapping):
            raise ParetorecError(f"events[{i}] must be an object, got {show(event)}")
        kind = event.get("kind")
        if kind not in FEEDBACK_KINDS:
            raise ParetorecError(
                f"events[{i}].kind must be one of {', '.join(FEEDBACK_KINDS)}; got {show(kind)}"
            )
        key = event.get("idempotency_key")
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise ParetorecError(
                f"events[{i}].idempotency_key must be a non-empty string of at most "
                f"{MAX_KEY_LENGTH} characters (no NUL), got {show(key)}"
            )
        timestamp = event.get("timestamp")
        if timestamp is None:
            timestamp = time.time()
        if (
            isinstance(timestamp, bool)
            or not isinstance(timestamp, (int, float))
            or not math.isfinite(timestamp)
        ):
            raise ParetorecError(f"events[{i}].timestamp must be a number, got {show(timestamp)}")
        value = event.get("value")
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ParetorecError(f"events[{i}].value must be a finite number, got {show(value)}")
        if kind == "rating" and value is None:
            raise ParetorecError(f"events[{i}] is a rating without a value")

        def text(name: str) -> str | None:
            raw = event.get(name)
            if raw is None:
                return None
            out = str(raw)
            if len(out) > MAX_ID_LENGTH or "\x00" in out:
                raise ParetorecError(
                    f"events[{i}].{name} must be at most {MAX_ID_LENGTH} characters long, "
                    "without NUL characters"
                )
            return out

        def integer(name: str) -> int | None:
            raw = event.get(name)
            if raw is None:
                return None
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < 2**31:
                raise ParetorecError(
                    f"events[{i}].{name} must be an int in 0..2147483647, got {show(raw)}"
                )
            return raw

        propensity = event.get("propensity")
        if propensity is not None and (
            isinstance(propensity, bool)
            or not isinstance(propensity, (int, float))
            or not 0 <= propensity <= 1
        ):
            raise ParetorecError(
                f"events[{i}].propensity must be a probability in [0, 1], got {show(propensity)}"
            )

        item = text("item_id")
        if item is None:
            raise ParetorecError(f"events[{i}].item_id is missing")
        return {
            "idempotency_key": key,
            "kind": kind,
            "item_id": item,
            "user_id": text("user_id"),
            "request_id": text("request_id"),
            "point_id": integer("point_id"),
            "position": integer("position"),
            "propensity": None if propensity is None else float(propensity),
            "value": None if value is None else float(value),
            "timestamp": float(timestamp),
            "received_at": time.time(),
        }

    # ------------------------------------------------------------------ read
    def count(self) -> int:
        from sqlalchemy import func, select

        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(self.table)).scalar_one()
            )

    def keys(self) -> list[str]:
        from sqlalchemy import select

        with self.engine.connect() as connection:
            return [r[0] for r in connection.execute(select(self.table.c.idempotency_key))]

    def events(self, *, user_id: Any = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored events, oldest first (optionally one user's)."""
        from sqlalchemy import select

        query = select(self.table).order_by(self.table.c.id)
        if user_id is not None:
            query = query.where(self.table.c.user_id == str(user_id))
        if limit is not None:
            query = query.limit(int(limit))
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]

    def counts_by_point(self) -> dict[str, dict[str, int]]:
        """``{point_id: {kind: count}}`` (point ``"none"`` for events without one)."""
        from sqlalchemy import func, select

        query = select(self.table.c.point_id, self.table.c.kind, func.count()).group_by(
            self.table.c.point_id, self.table.c.kind
        )
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for point, kind, n in connection.execute(query):
                out.setdefault("none" if point is None else str(point), {})[kind] = int(n)
        return out
