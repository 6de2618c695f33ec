"""Run a peer library's script (RecBole, torch-rechub) in its own virtual environment.

The peers pin versions that clash with ours (RecBole 1.2.1 needs numpy < 2), so they live in a
separate environment, ``<repo>/.venv-peers`` by default or the interpreter named by
``$PARETOREC_PEERS_PYTHON``. A benchmark writes its split as files, calls :func:`run_peer` with
one of the scripts in ``benchmarks/peers/`` and reads back the JSON the script wrote.

The peer scripts never import paretorec; this module never imports the peers.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEERS_PYTHON_ENV = "PARETOREC_PEERS_PYTHON"
#: Microsoft Recommenders 1.2.1 and Cornac live in a second environment (their pins clash
#: with RecBole's): ``<repo>/.venv-msr`` or ``$PARETOREC_MSR_PYTHON``.
MSR_PYTHON_ENV = "PARETOREC_MSR_PYTHON"
MSR_SETUP_COMMANDS = (
    "python3 -m venv .venv-msr",
    ".venv-msr/bin/pip install torch==2.13.0 recommenders cornac",
)

SETUP_COMMANDS = (
    "python3 -m venv .venv-peers",
    ".venv-peers/bin/pip install torch==2.13.0 recbole torch-rechub",
    '.venv-peers/bin/pip install "numpy<2" "pandas<2.3" "scipy<1.14" "setuptools>=77" "pyarrow<20"',
)

#: How many trailing lines of each stream are kept (and how many go into an error message).
TAIL_LINES = 400
ERROR_TAIL_LINES = 40


class PeerError(RuntimeError):
    """A peer script failed, timed out, or wrote no readable result."""


class PeersUnavailable(PeerError):
    """The peers' interpreter is missing or cannot import the peer libraries."""


def repo_root() -> Path:
    """The source checkout holding ``benchmarks/peers`` (this file lives in ``src/paretorec/``)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "benchmarks" / "peers").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    return here.parents[3]


def peer_script(name: str) -> Path:
    """Path of ``benchmarks/peers/<name>`` (``.py`` may be left out)."""
    if not name.endswith(".py"):
        name += ".py"
    path = repo_root() / "benchmarks" / "peers" / name
    if not path.is_file():
        raise PeerError(f"no peer script {path}")
    return path


def _setup_hint(root: Path) -> str:
    cmds = "\n".join(f"    {c}" for c in SETUP_COMMANDS)
    return (
        f"Create the peers environment from {root}:\n{cmds}\n"
        f"or point ${PEERS_PYTHON_ENV} at a Python that has recbole and torch-rechub "
        "(see benchmarks/peers/README.md)."
    )


def _interpreter(env_var: str, venv: str, hint: str, *, required: bool) -> Path | None:
    env = os.environ.get(env_var)
    if env:
        path = Path(env).expanduser()
        origin = f"${env_var}={env}"
    else:
        sub = ("Scripts", "python.exe") if os.name == "nt" else ("bin", "python")
        path = repo_root() / venv / Path(*sub)
        origin = "the default location"
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if not required:
        return None
    raise PeersUnavailable(f"{venv} Python not found at {path} ({origin}).\n" + hint)


def peers_python(*, required: bool = True) -> Path | None:
    """The peers' interpreter: ``$PARETOREC_PEERS_PYTHON``, else ``<repo>/.venv-peers/bin/python``.

    Raises :class:`PeersUnavailable` (naming the setup commands) when it does not exist, or
    returns ``None`` when ``required`` is false.
    """
    return _interpreter(
        PEERS_PYTHON_ENV, ".venv-peers", _setup_hint(repo_root()), required=required
    )


def msr_python(*, required: bool = True) -> Path | None:
    """Microsoft Recommenders / Cornac interpreter: ``$PARETOREC_MSR_PYTHON``, else
    ``<repo>/.venv-msr/bin/python`` (``None`` when missing and not ``required``)."""
    cmds = "\n".join(f"    {c}" for c in MSR_SETUP_COMMANDS)
    hint = (
        f"Create it from {repo_root()}:\n{cmds}\nor point ${MSR_PYTHON_ENV} at a Python that "
        "has recommenders 1.2.1 and cornac (see benchmarks/peers/README.md)."
    )
    return _interpreter(MSR_PYTHON_ENV, ".venv-msr", hint, required=required)


def check_peers(modules: Sequence[str] = ("recbole", "torch_rechub"), timeout: float = 300) -> dict:
    """Import ``modules`` in the peers' interpreter; return their versions.

    Raises :class:`PeersUnavailable` with the interpreter's error and the setup commands when
    an import fails.
    """
    python = peers_python()
    code = (
        "import importlib, json, sys\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for m in {list(modules)!r}:\n"
        "    mod = importlib.import_module(m)\n"
        "    out[m] = getattr(mod, '__version__', 'unknown')\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env=peer_env(),
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise PeersUnavailable(
            f"{python} cannot import {', '.join(modules)}:\n"
            + _tail(proc.stderr.splitlines(), ERROR_TAIL_LINES)
            + "\n"
            + _setup_hint(repo_root())
        )
    versions: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return versions


def peer_env(threads: int | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a peer process.

    Our own interpreter's ``PYTHONPATH``/``PYTHONHOME`` are dropped (the peer must not see our
    packages); thread counts are pinned when ``threads`` is given; RecBole's trainer reloads its
    own checkpoint with ``torch.load``, which PyTorch >= 2.6 refuses without
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (set for the peer process only); progress bars are
    turned off and output is unbuffered so it can be streamed.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def cli_args(options: Mapping[str, Any] | Sequence[Any]) -> list[str]:
    """Command-line arguments from a list, or from ``{"epochs": 5, "save_preds": path}``.

    Mapping keys become ``--kebab-case`` options; ``True`` is a bare flag, ``False``/``None``
    are left out, lists and tuples are joined with commas.
    """
    if not isinstance(options, Mapping):
        return [str(a) for a in options]
    out: list[str] = []
    for key, value in options.items():
        flag = key if key.startswith("-") else "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            out += [flag, ",".join(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def _tail(lines: Sequence[str] | collections.deque, n: int) -> str:
    lines = list(lines)[-n:]
    return "\n".join(lines)


@dataclass
class PeerRun:
    """What a peer run produced."""

    result: dict[str, Any]
    command: list[str]
    returncode: int
    seconds: float
    stdout_tail: list[str] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)


def run_peer(
    script: str | Path,
    options: Mapping[str, Any] | Sequence[Any] = (),
    *,
    out: str | Path | None = None,
    threads: int | None = 2,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stream: bool | Callable[[str], None] = True,
    python: str | Path | None = None,
    cwd: str | Path | None = None,
) -> PeerRun:
    """Run ``script`` under the peers' Python and return its parsed JSON result.

    ``script`` is a path or the name of a script in ``benchmarks/peers/``. ``options`` are the
    script's arguments (see :func:`cli_args`); ``--out`` is added, pointing at ``out`` or a
    temporary file, and, when ``threads`` is given, ``--threads`` too (unless present).
    Output lines are passed to ``stream`` (``True``: echoed to our stderr, prefixed with the
    script name; ``False``: kept quiet) and the last lines of each stream are kept.

    Raises :class:`PeerError` with the tail of the peer's stderr when it exits non-zero, runs
    past ``timeout`` seconds (it is then killed), or writes no readable JSON.
    """
    path = Path(script)
    if not path.is_file():
        path = peer_script(str(script))
    interpreter = Path(python) if python is not None else peers_python()
    assert interpreter is not None
    args = cli_args(options)
    tmpdir = None
    if out is None:
        tmpdir = tempfile.mkdtemp(prefix="peer_")
        out_path = Path(tmpdir) / "result.json"
    else:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.exists():
        out_path.unlink()
    if "--out" not in args:
        args += ["--out", str(out_path.resolve())]
    if threads is not None and "--threads" not in args:
        args += ["--threads", str(threads)]
    command = [str(interpreter), str(path.resolve()), *args]

    sink: Callable[[str], None] | None
    if stream is True:
        name = path.stem

        def echo(line: str) -> None:
            sys.stderr.write(f"[{name}] {line}\n")
            sys.stderr.flush()

        sink = echo
    elif stream is False:
        sink = None
    else:
        sink = stream

    tails: dict[str, collections.deque[str]] = {
        "stdout": collections.deque(maxlen=TAIL_LINES),
        "stderr": collections.deque(maxlen=TAIL_LINES),
    }
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            env=peer_env(threads, env),
            cwd=str(cwd) if cwd is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise PeersUnavailable(f"cannot start {interpreter}: {exc}") from exc

    lock = threading.Lock()

    def pump(stream_name: str) -> None:
        pipe = proc.stdout if stream_name == "stdout" else proc.stderr
        assert pipe is not None
        for raw in pipe:
            line = raw.rstrip("\n")
            tails[stream_name].append(line)
            if sink is not None:
                with lock:
                    sink(line)

    readers = [threading.Thread(target=pump, args=(s,), daemon=True) for s in tails]
    for t in readers:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
    except BaseException:
        _kill(proc)
        raise
    finally:
        for t in readers:
            t.join(timeout=10)
    seconds = time.perf_counter() - start
    run = PeerRun(
        result={},
        command=command,
        returncode=proc.returncode,
        seconds=seconds,
        stdout_tail=list(tails["stdout"]),
        stderr_tail=list(tails["stderr"]),
    )
    try:
        if timed_out:
            raise PeerError(
                f"peer {path.name} timed out after {timeout:g}s and was killed\n"
                f"command: {_quote(command)}\n--- stderr (last lines) ---\n"
                + _tail(tails["stderr"] or tails["stdout"], ERROR_TAIL_LINES)
            )
        if proc.returncode != 0:
            raise PeerError(
                f"peer {path.name} failed with exit code {proc.returncode}\n"
                f"command: {_quote(command)}\n--- stderr (last lines) ---\n"
                + _tail(tails["stderr"] or tails["stdout"], ERROR_TAIL_LINES)
            )
        try:
            run.result = json.loads(out_path.read_text())
        except (OSError, ValueError) as exc:
            raise PeerError(
                f"peer {path.name} exited 0 but its result {out_path} is unreadable: {exc}\n"
                f"command: {_quote(command)}\n--- stderr (last lines) ---\n"
                + _tail(tails["stderr"] or tails["stdout"], ERROR_TAIL_LINES)
            ) from exc
        if not isinstance(run.result, dict):
            raise PeerError(f"peer {path.name} wrote {type(run.result).__name__}, not an object")
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return run


def _kill(proc: subprocess.Popen) -> None:
    """Stop the peer and anything it started (it runs in its own session/process group)."""
    if proc.poll() is not None:
        return
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover
            proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


def _quote(command: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(c) for c in command)


def run_recbole_sasrec(data_dir: str | Path, **options: Any) -> PeerRun:
    """``benchmarks/peers/recbole_sasrec.py --data-dir DATA_DIR ...`` (see that script)."""
    run_kw = {
        k: options.pop(k)
        for k in ("out", "threads", "env", "timeout", "stream", "python")
        if k in options
    }
    return run_peer("recbole_sasrec", {"data_dir": data_dir, **options}, **run_kw)


#: Where finished peer runs are kept between benchmark runs (and sessions):
#: ``$PARETOREC_PEER_CACHE``, else ``~/.cache/paretorec/peer_runs``.
PEER_CACHE_ENV = "PARETOREC_PEER_CACHE"


def peer_cache_dir() -> Path:
    """The folder holding cached peer runs (see :func:`cached_peer_run`)."""
    configured = os.environ.get(PEER_CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "paretorec" / "peer_runs"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _peer_versions(interpreter: str) -> str:
    """The peers' interpreter's Python, torch and peer-library versions (part of a cache key)."""
    code = (
        "import sys, importlib.metadata as m\n"
        "names = ('recbole', 'torch-rechub', 'torch', 'numpy', 'cornac', 'obp')\n"
        "out = [sys.version.split()[0]]\n"
        "for n in names:\n"
        "    try: out.append(n + '=' + m.version(n))\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(' '.join(out))\n"
    )
    done = subprocess.run(
        [interpreter, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def peer_cache_key(
    script: str,
    options: Mapping[str, Any],
    data_files: Sequence[str | Path],
    *,
    threads: int | None,
    python: str | Path | None = None,
) -> dict[str, Any]:
    """Everything a peer run's outcome depends on: the script's bytes, its options, the
    bytes of the data files it reads, its thread count and the peers' package versions."""
    interpreter = Path(python) if python is not None else peers_python()
    assert interpreter is not None
    return {
        "script": script,
        "script_sha256": _file_sha256(peer_script(script)),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(options.items())},
        "data_sha256": {Path(f).name: _file_sha256(Path(f)) for f in sorted(map(str, data_files))},
        "threads": threads,
        "versions": _peer_versions(str(interpreter)),
    }


def cached_peer_run(
    key: Mapping[str, Any],
    run: Callable[[Path], PeerRun],
    *,
    artifacts: Mapping[str, Path] = {},
    use_cache: bool = True,
) -> tuple[PeerRun, dict[str, Any]]:
    """Run a peer once per ``key`` and keep its result (and the files named in ``artifacts``)
    in :func:`peer_cache_dir`, so a long peer fit (RecBole: about 50 minutes) computed in an
    earlier run or session is reused instead of repeated.

    ``run(folder)`` performs the run; the files it writes at the ``artifacts`` paths are
    copied into the cache, and copied back to those paths on a hit. Returns the run and its
    provenance: whether it came from the cache, and the commit, date and seconds of the run
    that computed it. A caller whose key another thread or process is computing waits for
    that run (a ``flock`` under ``.locks/`` in the cache) and reuses it.
    """
    from ._harness import git_commit

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    entry = peer_cache_dir() / str(key.get("script", "peer")) / digest
    locks = peer_cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    # One computation per key at a time, across threads and processes: a second caller
    # (e.g. the benchmark while `--peers-only` fills the cache) waits, then reuses the entry.
    with _entry_lock(locks / f"{entry.parent.name}-{digest}.lock", key):
        if use_cache:
            hit = _cache_hit(entry, key, artifacts)
            if hit is not None:
                return hit[0], {**hit[1], "cache_entry": digest}
        # the code that starts the run (HEAD may move while it runs)
        return _compute_entry(entry, key, digest, run, artifacts, git_commit())


@contextlib.contextmanager
def _entry_lock(path: Path, key: Mapping[str, Any]) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (held until the block ends; the OS drops it if the
    process dies). Says so when another caller holds it, and waits."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"peer run {key.get('script', 'peer')} {dict(key.get('options', {}))}: "
                f"another run is computing it ({path}); waiting for it",
                flush=True,
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cache_hit(
    entry: Path, key: Mapping[str, Any], artifacts: Mapping[str, Path]
) -> tuple[PeerRun, dict[str, Any]] | None:
    """The cached run at ``entry`` (its artifacts copied back), or None."""
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("key") != json.loads(json.dumps(key)) or not all(
        (entry / name).is_file() for name in artifacts
    ):
        return None
    for name, target in artifacts.items():
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry / name, target)
    peer = PeerRun(
        result=meta["result"], command=meta["command"], returncode=0, seconds=float(meta["seconds"])
    )
    return peer, {**meta["computed"], "cached": True}


def _compute_entry(
    entry: Path,
    key: Mapping[str, Any],
    digest: str,
    run: Callable[[Path], PeerRun],
    artifacts: Mapping[str, Path],
    commit: str | None,
) -> tuple[PeerRun, dict[str, Any]]:
    """Perform the run and keep it (whole entries only) at ``entry``."""
    with tempfile.TemporaryDirectory(prefix="peer_cache_") as folder:
        peer = run(Path(folder))
    computed = {
        "commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(peer.seconds, 1),
    }
    partial = entry.with_name(entry.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        for name, source in artifacts.items():
            shutil.copyfile(source, partial / name)
        (partial / "meta.json").write_text(
            json.dumps(
                {
                    "key": key,
                    "result": peer.result,
                    "command": peer.command,
                    "seconds": peer.seconds,
                    "computed": computed,
                },
                indent=1,
                default=str,
            )
        )
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(entry, ignore_errors=True)
    partial.rename(entry)  # whole entries only: a killed run leaves no half entry behind
    return peer, {**computed, "cached": False, "cache_entry": digest}


def run_rechub_multitask(
    train: str | Path, valid: str | Path, test: str | Path, **options: Any
) -> PeerRun:
    """``benchmarks/peers/rechub_multitask.py --train ... --valid ... --test ...``."""
    run_kw = {
        k: options.pop(k)
        for k in ("out", "threads", "env", "timeout", "stream", "python")
        if k in options
    }
    return run_peer(
        "rechub_multitask", {"train": train, "valid": valid, "test": test, **options}, **run_kw
    )


__all__ = [
    "MSR_PYTHON_ENV",
    "MSR_SETUP_COMMANDS",
    "PEERS_PYTHON_ENV",
    "PEER_CACHE_ENV",
    "SETUP_COMMANDS",
    "PeerError",
    "PeerRun",
    "PeersUnavailable",
    "cached_peer_run",
    "check_peers",
    "cli_args",
    "msr_python",
    "peer_cache_dir",
    "peer_cache_key",
    "peer_env",
    "peer_script",
    "peers_python",
    "repo_root",
    "run_peer",
    "run_recbole_sasrec",
    "run_rechub_multitask",
]
