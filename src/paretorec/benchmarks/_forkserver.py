"""A fork server for the serving benchmark's crash loop.

Each crash cycle needs a fresh server process to SIGKILL. Starting one from scratch imports
the whole stack (torch, scipy, FastAPI: 5-10 s on this 2-core machine), so 200 cycles
would take half an hour of imports. This parent process imports the code and loads the
bundle once (read-only), then forks one server process per cycle on request: each child
builds the app, opens the feedback store itself (SQLite WAL recovery included) and serves
on its own port until it is killed. What the crash test checks (the store and the
acknowledge-after-commit protocol) runs entirely in the child.

Protocol on stdin / stdout, one line each: the parent prints ``ready`` once loaded; then
``start PORT`` -> ``PID`` (the child serving on 127.0.0.1:PORT), ``wait PID`` -> ``done``
(reaps the killed child). Run as ``python -m paretorec.benchmarks._forkserver BUNDLE URL``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from .._validation import ParetorecError


def _serve_child(recommender: Any, feedback_url: str, port: int) -> None:
    import uvicorn

    from ..serving._app import ServiceSettings, create_app

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    settings = ServiceSettings(feedback_url=feedback_url, handle_sighup=False)
    app = create_app(recommender, settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main(argv: list[str]) -> int:
    bundle, feedback_url = argv
    import torch

    torch.set_num_threads(1)
    from ..serving import Recommender

    recommender = Recommender.load(bundle)
    recommender.warm_up()
    # build an app and uvicorn's config once here, so the children inherit the imports and
    # schema caches (the first create_app takes ~0.5 s) instead of redoing them per start
    import uvicorn

    from ..serving._app import ServiceSettings, create_app

    config = uvicorn.Config(
        create_app(recommender, ServiceSettings(feedback_url=feedback_url)), log_level="warning"
    )
    config.load()
    gc.collect()
    gc.freeze()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "start":
            pid = os.fork()
            if pid == 0:  # the server process
                code = 0
                try:
                    os.setsid()
                    # the parent's protocol pipes are not the child's: stdin from
                    # /dev/null, anything printed goes to the log (stderr)
                    devnull = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(devnull, 0)
                    os.dup2(2, 1)
                    _serve_child(recommender, feedback_url, int(argument))
                except BaseException:  # report and leave: a child never returns into the loop
                    import traceback

                    traceback.print_exc()
                    code = 1
                finally:
                    os._exit(code)
            out.write(f"{pid}\n")
        elif command == "wait":
            os.waitpid(int(argument), 0)
            out.write("done\n")
        else:
            out.write(f"error unknown command {command!r}\n")
        out.flush()
    return 0


class ForkedProcess:
    """The handle of one forked server (what the crash loop needs of a ``Popen``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.killed = False
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        if sig == signal.SIGKILL:
            self.returncode = -int(sig)


class ForkedServer:
    """One forked server: ``port``, ``process`` (a :class:`ForkedProcess`),
    ``startup_seconds``, ``kill()``."""

    def __init__(self, parent: ForkServer, port: int, pid: int, startup_seconds: float) -> None:
        self.parent = parent
        self.port = port
        self.process = ForkedProcess(pid)
        self.startup_seconds = startup_seconds

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.parent.reap(self.process.pid)


class ForkServer:
    """The parent process (see the module docstring); a context manager."""

    def __init__(self, bundle: str | Path, feedback_url: str, *, log: str | Path | None) -> None:
        self.bundle = Path(bundle)
        self.feedback_url = feedback_url
        self.log = Path(log) if log else None
        self.process: subprocess.Popen[str] | None = None
        self.startup_seconds = float("nan")
        self.children: set[int] = set()  # forked servers not reaped yet

    def __enter__(self) -> ForkServer:
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        command = [
            sys.executable,
            "-m",
            "paretorec.benchmarks._forkserver",
            str(self.bundle.resolve()),
            self.feedback_url,
        ]
        errors = open(self.log, "ab") if self.log else subprocess.DEVNULL
        started = time.perf_counter()
        try:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        finally:
            if self.log:
                errors.close()  # type: ignore[union-attr]
        if self._read() != "ready":
            self.close()
            raise ParetorecError(
                "the fork server did not start" + (f"; log: {self.log}" if self.log else "")
            )
        self.startup_seconds = time.perf_counter() - started
        return self

    def _read(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def _ask(self, line: str) -> str:
        if self.process is None or self.process.poll() is not None:
            raise ParetorecError("the fork server is not running")
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()
        return self._read()

    def start(self, timeout: float = 60.0) -> ForkedServer:
        """Fork a server on a free port; returns once it answers ``/health``."""
        from ._loadgen import wait_until_up
        from ._serving import free_port

        port = free_port()
        started = time.perf_counter()
        answer = self._ask(f"start {port}")
        if not answer.isdigit():
            raise ParetorecError(f"the fork server answered {answer!r}")
        server = ForkedServer(self, port, int(answer), float("nan"))
        self.children.add(server.process.pid)
        try:
            wait_until_up(port, timeout=timeout, interval=0.01)
        except BaseException:
            server.kill()
            raise
        server.startup_seconds = time.perf_counter() - started
        return server

    def reap(self, pid: int) -> None:
        if self._ask(f"wait {pid}") != "done":
            raise ParetorecError(f"the fork server could not reap {pid}")
        self.children.discard(pid)

    def close(self) -> None:
        if self.process is None:
            return
        for pid in list(self.children):  # left alive by an error: never leave a server up
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ParetorecError, OSError):
                self.reap(pid)
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
