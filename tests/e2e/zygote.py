"""Start ``ledger`` commands for the end-to-end tests without paying for their imports each time.

A server process spends about two seconds of CPU importing FastAPI, pydantic, eventsourcing
and the ledger before it runs a line of its own, and the suite starts well over a hundred of
them (per Python version in CI). This process imports the ledger once, then forks a child per
command: the child runs ``api.cli.main()`` with the command's arguments, environment, working
folder and log file, exactly what the ``ledger`` console script runs. Nothing here is a stand-in
for the server: only the interpreter's start is shared.

The zygote keeps no threads (forking a threaded process can leave a child holding a lock no
one will release), reaps its children from a SIGCHLD handler, and writes each child's exit
status beside its log, where the tests' ``ForkedProcess`` reads it. ``LEDGER_TEST_FORK=0``
makes the tests start every server as a plain subprocess instead.

Protocol (stdin/stdout, one JSON object per line): ``{"argv", "env", "cwd", "log"}`` →
``{"pid"}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

_exits: dict[int, str] = {}  # child pid -> where to write its exit status


def _reap(*_: Any) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        target = _exits.pop(pid, None)
        if target is not None:
            with contextlib.suppress(OSError):  # its folder is gone: no one is waiting for it
                Path(target).write_text(str(code))


def _child(request: dict[str, Any]) -> None:
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, 0)  # a signal to the tests' process group is not ours
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["ledger", *request["argv"]]
        from api.cli import main

        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    import api.app
    import api.cli  # noqa: F401

    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for pytest; stdin's end stops us
    for line in sys.stdin:
        request = json.loads(line)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                _child(request)
            _exits[pid] = request["log"] + ".exit"
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()
    # The tests are done: a server a failed test never stopped must not outlive them (it would
    # hold its database connections for good).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in list(_exits):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


class ForkedProcess:
    """The part of ``subprocess.Popen`` the tests use, for a child of the zygote."""

    def __init__(self, pid: int, log: Path) -> None:
        self.pid = pid
        self._exit = Path(f"{log}.exit")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self._exit.exists():
            text = self._exit.read_text()
            if text:
                self.returncode = int(text)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The tests' end of the zygote: started at the first request, one per test process."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> ForkedProcess:
        request = {"argv": argv, "env": env, "cwd": str(cwd), "log": str(log)}
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-c", "from tests.e2e.zygote import serve; serve()"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=Path(__file__).resolve().parents[2],  # where ``tests`` imports from
                    env={k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")},
                )
            assert self._process.stdin is not None
            assert self._process.stdout is not None
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            reply = json.loads(self._process.stdout.readline())
        return ForkedProcess(reply["pid"], log)

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=30)


def enabled() -> bool:
    return os.environ.get("LEDGER_TEST_FORK", "1") != "0" and hasattr(os, "fork")
