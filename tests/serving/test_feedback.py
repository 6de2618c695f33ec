"""FeedbackStore on SQLite and on a real PostgreSQL server, with two writer processes."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from paretorec import ParetorecError
from paretorec.serving import FeedbackStore

REPO = Path(__file__).resolve().parents[2]


def _event(key: str, **extra: object) -> dict:
    return {"kind": "click", "item_id": "m1", "idempotency_key": key, "user_id": "u1", **extra}


def test_sqlite_is_wal_with_full_sync_and_idempotent(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.db")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    first = store.add([_event("a"), _event("b"), _event("a")])
    assert first.stored == ["a", "b"] and first.duplicates == ["a"]
    second = store.add([_event("b"), _event("c", kind="rating", value=4.0, point_id=3)])
    assert second.stored == ["c"] and second.duplicates == ["b"]
    assert store.count() == 3 and sorted(store.keys()) == ["a", "b", "c"]
    assert store.counts_by_point() == {"none": {"click": 2}, "3": {"rating": 1}}
    assert [e["idempotency_key"] for e in store.events(user_id="u1")] == ["a", "b", "c"]
    store.close()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (_event("k", kind="hover"), "kind must be one of impression, click"),
        (_event(""), "idempotency_key must be a non-empty string"),
        (_event("x" * 201), "at most 200 characters"),
        (_event("k", kind="rating"), "a rating without a value"),
        (_event("k", timestamp="yesterday"), "timestamp must be a number"),
        (_event("k", value=float("nan")), "value must be a finite number"),
        (_event("k", point_id=2**40), "point_id must be an int in 0..2147483647"),
        (_event("k", propensity=1.5), "propensity must be a probability"),
        (_event("k\x00"), "no NUL"),
        ({"kind": "click", "idempotency_key": "k"}, "item_id is missing"),
        ("not an event", "must be an object"),
    ],
)
def test_bad_events_are_refused(tmp_path: Path, event: object, message: str) -> None:
    store = FeedbackStore(tmp_path / "feedback.db")
    with pytest.raises(ParetorecError, match=message):
        store.add([event])  # type: ignore[list-item]
    assert store.count() == 0


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from fastapi.testclient import TestClient
    from paretorec.serving import ServiceSettings, create_app
    url, bundle, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    settings = ServiceSettings(feedback_url=url, handle_sighup=False)
    with TestClient(create_app(bundle, settings)) as client:
        for first in range(start, stop, 10):
            events = [
                {{"kind": "click", "item_id": "m1", "idempotency_key": f"key-{{i}}",
                  "user_id": "u1", "timestamp": float(i)}}
                for i in range(first, min(first + 10, stop))
            ]
            response = client.post("/feedback", json={{"events": events}})
            assert response.status_code == 200, response.text
            assert response.json()["committed"] is True
    """
)


def _two_services_write(url: str, bundle: Path, tmp_path: Path) -> None:
    """Two service processes post overlapping keys at once; each key is stored once."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    ranges = [(0, 150), (100, 250)]
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(bundle), str(a), str(b)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for a, b in ranges
    ]
    for writer in writers:
        _, error = writer.communicate(timeout=180)
        assert writer.returncode == 0, error.decode()[-3000:]
    store = FeedbackStore(url)
    keys = store.keys()
    assert len(keys) == 250 == len(set(keys)) == store.count()
    assert set(keys) == {f"key-{i}" for i in range(250)}
    store.close()


def test_two_service_processes_on_sqlite(tiny_bundle: Path, tmp_path: Path) -> None:
    _two_services_write(f"sqlite:///{tmp_path / 'shared.db'}", tiny_bundle, tmp_path)


def test_a_table_created_by_another_process_meanwhile_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkfirst-then-CREATE races with a second process opening the same store; the loser
    sees "table already exists" and must retry (the retry's check finds the table)."""
    import sqlite3

    from sqlalchemy import MetaData
    from sqlalchemy.exc import OperationalError

    url = f"sqlite:///{tmp_path / 'race.db'}"
    FeedbackStore(url).close()  # "the other process" created the table
    real = MetaData.create_all
    calls: list[int] = []

    def racing(self, bind, tables=None, checkfirst=True):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:  # as if the check ran before the other process's CREATE
            raise OperationalError(
                "CREATE TABLE feedback_events", {}, sqlite3.OperationalError("already exists")
            )
        return real(self, bind, tables=tables, checkfirst=checkfirst)

    monkeypatch.setattr(MetaData, "create_all", racing)
    store = FeedbackStore(url)
    assert len(calls) == 2
    store.close()


# ---------------------------------------------------------------------------- PostgreSQL
def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port (as user postgres under root)."""
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL binaries (initdb/pg_ctl) found: apt-get install postgresql")
    pytest.importorskip("psycopg", reason="psycopg is needed to reach PostgreSQL")
    root = Path(tempfile.mkdtemp(prefix="paretorec-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    run(
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "log"),
        "-w",
        "start",
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_store_is_idempotent(postgres_url: str) -> None:
    store = FeedbackStore(postgres_url)
    with store.engine.begin() as connection:
        connection.execute(store.table.delete())
    first = store.add([_event("p1"), _event("p2"), _event("p1")])
    assert first.stored == ["p1", "p2"] and first.duplicates == ["p1"]
    assert store.add([_event("p2")]).duplicates == ["p2"] and store.count() == 2
    store.close()


def test_two_service_processes_on_postgres(
    postgres_url: str, tiny_bundle: Path, tmp_path: Path
) -> None:
    store = FeedbackStore(postgres_url)
    with store.engine.begin() as connection:
        connection.execute(store.table.delete())
    store.close()
    _two_services_write(postgres_url, tiny_bundle, tmp_path)
