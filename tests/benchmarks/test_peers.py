"""The peer launcher, driven with fake peer scripts under our own interpreter.

Nothing here needs ``.venv-peers``; the one check that does is skipped without it.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from paretorec.benchmarks import _peers
from paretorec.benchmarks._peers import (
    PeerError,
    PeersUnavailable,
    cli_args,
    peer_env,
    peers_python,
    run_peer,
)

FAKE = textwrap.dedent(
    """
    import argparse, json, os, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--mode", default="ok")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--cols", default="")
    p.add_argument("--flag", action="store_true")
    a = p.parse_args()
    print("starting", a.mode, flush=True)
    if a.mode == "fail":
        for i in range(100):
            print(f"noise {i}", file=sys.stderr)
        print("ValueError: the real reason", file=sys.stderr)
        sys.exit(3)
    if a.mode == "sleep":
        time.sleep(60)
    if a.mode == "noresult":
        sys.exit(0)
    if a.mode == "badjson":
        open(a.out, "w").write("{not json")
        sys.exit(0)
    env = {k: os.environ.get(k) for k in (
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",
        "PYTHONPATH", "TQDM_DISABLE", "EXTRA")}
    json.dump({"args": sys.argv[1:], "threads": a.threads, "epochs": a.epochs,
               "cols": a.cols, "flag": a.flag, "env": env}, open(a.out, "w"))
    print("done", flush=True)
    """
)


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    path = tmp_path / "fake_peer.py"
    path.write_text(FAKE)
    return path


def run_fake(fake: Path, options, **kw):
    return run_peer(fake, options, python=sys.executable, **kw)


def test_result_args_and_environment(fake: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/src")
    lines: list[str] = []
    run = run_fake(
        fake,
        {"epochs": 4, "cols": ["a", "b"], "flag": True, "mode": None},
        out=tmp_path / "sub" / "r.json",
        threads=3,
        env={"EXTRA": "x"},
        stream=lines.append,
    )
    r = run.result
    assert r["epochs"] == 4 and r["cols"] == "a,b" and r["flag"] is True and r["threads"] == 3
    assert r["env"] == {
        "OMP_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "3",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "PYTHONPATH": None,
        "TQDM_DISABLE": "1",
        "EXTRA": "x",
    }
    assert lines == ["starting ok", "done"] and run.stdout_tail == lines
    assert run.returncode == 0 and run.seconds > 0
    assert (tmp_path / "sub" / "r.json").is_file()


def test_temporary_result_file_is_removed(fake: Path) -> None:
    run = run_fake(fake, ["--epochs", "2"], stream=False, threads=None)
    out = Path(run.result["args"][run.result["args"].index("--out") + 1])
    assert run.result["epochs"] == 2 and "--threads" not in run.result["args"]
    assert not out.exists() and not out.parent.exists()


def test_failure_raises_with_stderr_tail(fake: Path) -> None:
    with pytest.raises(PeerError) as info:
        run_fake(fake, {"mode": "fail"}, stream=False)
    msg = str(info.value)
    assert "exit code 3" in msg and "ValueError: the real reason" in msg
    assert "noise 99" in msg and "noise 0\n" not in msg  # only the tail
    assert "--mode fail" in msg


@pytest.mark.parametrize("mode", ["noresult", "badjson"])
def test_missing_or_bad_result_raises(fake: Path, mode: str) -> None:
    with pytest.raises(PeerError, match="unreadable"):
        run_fake(fake, {"mode": mode}, stream=False)


def test_stale_result_is_not_read(fake: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"old": True}))
    with pytest.raises(PeerError, match="unreadable"):
        run_fake(fake, {"mode": "noresult"}, out=out, stream=False)


def test_timeout_kills_the_peer(fake: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(PeerError, match="timed out"):
        run_fake(fake, {"mode": "sleep"}, timeout=1.0, stream=False)
    assert time.perf_counter() - start < 30


def test_peers_python_from_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(_peers.PEERS_PYTHON_ENV, sys.executable)
    assert peers_python() == Path(sys.executable)
    missing = tmp_path / "nope" / "python"
    monkeypatch.setenv(_peers.PEERS_PYTHON_ENV, str(missing))
    with pytest.raises(PeersUnavailable) as info:
        peers_python()
    msg = str(info.value)
    assert str(missing) in msg and "python3 -m venv .venv-peers" in msg
    assert "pip install torch==2.13.0 recbole torch-rechub" in msg
    assert peers_python(required=False) is None


def test_default_location_is_the_repo_venv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(_peers.PEERS_PYTHON_ENV, raising=False)
    monkeypatch.setattr(_peers, "repo_root", lambda: tmp_path)
    with pytest.raises(PeersUnavailable, match=r"\.venv-peers"):
        peers_python()
    py = tmp_path / ".venv-peers" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text("#!/bin/sh\n")
    py.chmod(0o755)
    assert peers_python() == py


def test_msr_python_from_environment_or_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(_peers.MSR_PYTHON_ENV, sys.executable)
    assert _peers.msr_python() == Path(sys.executable)
    monkeypatch.delenv(_peers.MSR_PYTHON_ENV)
    monkeypatch.setattr(_peers, "repo_root", lambda: tmp_path)
    with pytest.raises(PeersUnavailable) as info:
        _peers.msr_python()
    msg = str(info.value)
    assert ".venv-msr" in msg and "pip install torch==2.13.0 recommenders cornac" in msg
    assert "PARETOREC_MSR_PYTHON" in msg
    assert _peers.msr_python(required=False) is None


def test_run_peer_without_interpreter_names_setup(fake: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(_peers.PEERS_PYTHON_ENV, str(tmp_path / "missing"))
    with pytest.raises(PeersUnavailable, match=r"venv-peers"):
        run_peer(fake, {}, stream=False)


def test_cli_args() -> None:
    assert cli_args({"data_dir": Path("/d"), "n_layers": 2, "dry": False, "x": None}) == [
        "--data-dir",
        "/d",
        "--n-layers",
        "2",
    ]
    assert cli_args({"--raw": 1, "v": True}) == ["--raw", "1", "--v"]
    assert cli_args(["--a", 1]) == ["--a", "1"]


def test_peer_scripts_exist_and_never_import_paretorec() -> None:
    for name in ("recbole_sasrec", "rechub_multitask", "msr_stratified_split", "cornac_movielens"):
        text = _peers.peer_script(name).read_text()
        assert not re.search(r"^\s*(import|from)\s+paretorec", text, re.MULTILINE), name
    with pytest.raises(PeerError):
        _peers.peer_script("no_such_peer")


def test_peer_env_threads_optional(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert peer_env()["OMP_NUM_THREADS"] == "7"
    assert peer_env(2)["OMP_NUM_THREADS"] == "2"


@pytest.mark.skipif(peers_python(required=False) is None, reason="no peers environment")
def test_peers_environment_imports() -> None:
    versions = _peers.check_peers()
    assert versions["recbole"] == "1.2.1"


def _counting_run(calls: list[int], artifact: Path, value: int):
    def run(folder: Path) -> _peers.PeerRun:
        calls.append(value)
        artifact.write_text(f"topk {value}\n")
        return _peers.PeerRun(result={"ndcg": value}, command=["peer"], returncode=0, seconds=1.5)

    return run


def test_peer_runs_are_cached_with_their_artifacts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(_peers.PEER_CACHE_ENV, str(tmp_path / "cache"))
    key = {"script": "recbole_sasrec", "options": {"seed": 1}}
    calls: list[int] = []
    artifact = tmp_path / "out" / "topk.csv"
    artifact.parent.mkdir()
    first, where = _peers.cached_peer_run(
        key, _counting_run(calls, artifact, 1), artifacts={"topk.csv": artifact}
    )
    assert calls == [1] and not where["cached"] and first.result == {"ndcg": 1}
    assert where["commit"] and where["date"] and where["seconds"] == 1.5
    artifact.unlink()
    again, where_again = _peers.cached_peer_run(
        key, _counting_run(calls, artifact, 2), artifacts={"topk.csv": artifact}
    )
    assert calls == [1], "a cached run must not run again"
    assert where_again["cached"] and where_again["commit"] == where["commit"]
    assert again.result == {"ndcg": 1} and artifact.read_text() == "topk 1\n"
    # another key, or use_cache=False, runs the peer
    _peers.cached_peer_run(
        {**key, "options": {"seed": 2}},
        _counting_run(calls, artifact, 3),
        artifacts={"topk.csv": artifact},
    )
    _peers.cached_peer_run(
        key, _counting_run(calls, artifact, 4), artifacts={"topk.csv": artifact}, use_cache=False
    )
    assert calls == [1, 3, 4]
    entries = [e for e in (tmp_path / "cache" / "recbole_sasrec").iterdir() if e.suffix != ".lock"]
    assert len(entries) == 2 and not any(e.name.endswith(".partial") for e in entries)


def test_a_failed_peer_run_leaves_no_cache_entry(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(_peers.PEER_CACHE_ENV, str(tmp_path / "cache"))

    def failing(folder: Path) -> _peers.PeerRun:
        raise _peers.PeerError("boom")

    with pytest.raises(_peers.PeerError, match="boom"):
        _peers.cached_peer_run({"script": "x"}, failing)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("meta.json"))


def test_peer_cache_key_changes_with_data_options_and_threads(tmp_path: Path) -> None:
    data = tmp_path / "a.inter"
    data.write_text("1\t2\n")
    base = _peers.peer_cache_key(
        "recbole_sasrec", {"seed": 1}, [data], threads=1, python=sys.executable
    )
    assert base["script_sha256"] and base["versions"].startswith(sys.version.split()[0])
    assert base == _peers.peer_cache_key(
        "recbole_sasrec", {"seed": 1}, [data], threads=1, python=sys.executable
    )
    assert base != _peers.peer_cache_key(
        "recbole_sasrec", {"seed": 2}, [data], threads=1, python=sys.executable
    )
    assert base != _peers.peer_cache_key(
        "recbole_sasrec", {"seed": 1}, [data], threads=2, python=sys.executable
    )
    data.write_text("1\t3\n")
    assert base != _peers.peer_cache_key(
        "recbole_sasrec", {"seed": 1}, [data], threads=1, python=sys.executable
    )


def test_a_run_without_its_artifact_leaves_no_partial_entry(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(_peers.PEER_CACHE_ENV, str(tmp_path / "cache"))

    def no_file(folder: Path) -> _peers.PeerRun:
        return _peers.PeerRun(result={}, command=[], returncode=0, seconds=0.0)

    with pytest.raises(FileNotFoundError):
        _peers.cached_peer_run({"script": "x"}, no_file, artifacts={"a.csv": tmp_path / "none"})
    left = [
        p.name
        for p in (tmp_path / "cache").rglob("*")
        if (p.is_file() and p.suffix != ".lock") or "partial" in p.name
    ]
    assert left == []


def test_a_second_caller_waits_for_the_run_in_progress(tmp_path: Path, monkeypatch, capsys) -> None:
    """Two callers of one key (the benchmark while `--peers-only` fills the cache): the second
    waits for the first's fit and reuses it instead of fitting again."""
    monkeypatch.setenv(_peers.PEER_CACHE_ENV, str(tmp_path / "cache"))
    key = {"script": "recbole_sasrec", "options": {"seed": 7}}
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(folder: Path) -> _peers.PeerRun:
        calls.append("first")
        started.set()
        assert release.wait(30)
        return _peers.PeerRun(result={"ndcg": 7}, command=["fit"], returncode=0, seconds=2.0)

    def must_not_run(folder: Path) -> _peers.PeerRun:
        calls.append("second")
        return _peers.PeerRun(result={"ndcg": -1}, command=["fit"], returncode=0, seconds=0.0)

    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.update(a=_peers.cached_peer_run(key, slow)))
    first.start()
    assert started.wait(30)
    second = threading.Thread(
        target=lambda: results.update(b=_peers.cached_peer_run(key, must_not_run))
    )
    second.start()
    time.sleep(0.3)  # the second caller is now past any cache check: it must be waiting
    assert second.is_alive(), "the second caller did not wait for the run in progress"
    release.set()
    first.join(30)
    second.join(30)
    assert calls == ["first"]
    assert results["b"][0].result == {"ndcg": 7} and results["b"][1]["cached"]
    assert "another run is computing it" in capsys.readouterr().out
