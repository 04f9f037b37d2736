"""``ledger serve --workers N``: the process tree, and how ``serve`` supervises it.

```
ledger serve  (supervisor: no HTTP, no database work of its own after start-up)
 ├── API worker 1 … N   uvicorn's multi-process mode: one listening socket, shared; a worker
 │                      that dies is replaced by uvicorn; no background work
 └── background process  `ledger worker`: the views, the dispatcher and the platform robots;
                         restarted by `serve` when it dies (backoff 1 s doubling to 30 s)
```

They meet only in the database: the event store, the views and their positions (``?after=``
waits read them), the dispatcher's tables, and ``view_status``, where the background process
records whether each view runs and fails (``projections/status.py``); plus the metrics folder
(``api/process_metrics.py``). ``serve`` stops every child on SIGTERM or SIGINT, and no child
outlives a ``serve`` killed outright: each asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``) and also watches its parent's pid.

SQLite allows one writer at a time and feeds its views from the writing process, so on SQLite
``serve`` runs one process (``--workers 1``) and refuses more.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from adapters.database import Database
from api import process_metrics
from api.settings import Settings
from api.wiring import build

log = logging.getLogger(__name__)

RESTART_BACKOFF = 1.0  # first wait before restarting a dead background process (s) ...
RESTART_BACKOFF_CAP = 30.0  # ... doubling up to this
HEALTHY_AFTER = 60.0  # a background process that ran this long restarts after the first wait
STOP_WITHIN = 20.0  # seconds a child is given to stop after SIGTERM, then SIGKILL
_PR_SET_PDEATHSIG = 1


def default_workers(database: Database) -> int:
    """The CPU count on PostgreSQL; 1 on SQLite (one writer at a time, views fed in-process)."""
    return (os.cpu_count() or 1) if database.is_postgres else 1


def die_with_parent(parent: int | None) -> None:
    """Make this process stop (SIGTERM, then its own clean exit) when ``parent`` dies, even by
    SIGKILL: the kernel's parent-death signal on Linux, and a thread watching the parent's pid
    everywhere (it also covers a parent that died before the signal was asked for)."""
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("the supervising process %d is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STOP_WITHIN)
        os._exit(1)  # a clean stop that hangs must not keep this process alive

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class BackgroundSupervisor:
    """Runs the background work as a child process (``ledger worker``) and restarts it, with a
    growing backoff, whenever it exits before ``stop``."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-supervisor")
        self.restarts = 0

    def command(self) -> list[str]:
        code = "from api.cli import main; main()"
        return [sys.executable, "-c", code, "worker", "--parent", str(os.getpid())]

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        # The child's parent-death signal fires when the thread that started it ends: this
        # thread lives until the child is stopped.
        backoff = RESTART_BACKOFF
        while not self._stopping.is_set():
            started = time.monotonic()
            # A group of its own: a Ctrl-C at the terminal reaches serve, which stops it.
            self.process = subprocess.Popen(self.command(), process_group=0)  # noqa: S603
            log.info("background process [%d] started", self.process.pid)
            while self.process.poll() is None and not self._stopping.is_set():
                self._stopping.wait(0.2)
            if self._stopping.is_set():
                break
            if time.monotonic() - started > HEALTHY_AFTER:
                backoff = RESTART_BACKOFF
            log.warning(
                "background process [%d] exited with %s; restarting it in %.0f s",
                self.process.pid,
                _exit_status(self.process.returncode),
                backoff,
            )
            process_metrics.forget(self.process.pid)
            self.restarts += 1
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, RESTART_BACKOFF_CAP)
        self._stop_child()

    def _stop_child(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            log.warning("background process [%d] did not stop: killing it", process.pid)
            process.kill()
            process.wait()
        log.info("background process [%d] stopped", process.pid)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return f"code {code}"


def serve_many(
    settings: Settings, *, host: str, port: int, workers: int, background: bool, log_level: str
) -> int:
    """Run ``workers`` API processes and, with ``background``, one background process, until
    SIGTERM or SIGINT; then stop them all. Returns the exit status."""
    # Tables, migrations and keys once, here: processes starting together would race to
    # create the same tables, and a setting that stops one start stops it once.
    build(settings).close()
    # A folder of serve's own, unless PROMETHEUS_MULTIPROC_DIR names one (emptied here).
    given = process_metrics.folder()
    own_folder = given is None
    path = Path(given or tempfile.mkdtemp(prefix="ledger-metrics-"))
    process_metrics.prepare(path)
    # Read by the children at their start (prometheus_client picks its mode on import).
    os.environ[process_metrics.ENV] = str(path)
    supervisor = BackgroundSupervisor() if background else None
    try:
        # uvicorn's own supervisor: it binds the socket once, starts the workers (spawned,
        # each calling the app factory), replaces a worker that dies or stops answering its
        # health pings, stops them all on SIGTERM or SIGINT, and gives up when a worker fails
        # to start (a broken start would fail again on every restart).
        config = uvicorn.Config(
            "api.app:api_worker",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            log_config=None,
        )
        sock = config.bind_socket()
        if supervisor is not None:
            supervisor.start()
        api = Multiprocess(config, sockets=[sock])
        api.run()
        failed = any(p.exitcode == STARTUP_FAILURE for p in api.processes)
        return STARTUP_FAILURE if failed else 0
    finally:
        if supervisor is not None:
            supervisor.stop()
        if own_folder:
            shutil.rmtree(path, ignore_errors=True)
