"""``python -m adapters.vtex_emulator``: the emulator as a process, until SIGTERM or Ctrl-C.

Its first line on stdout says where it listens and whether VTEX's official schema check is
on, so whoever starts it (``ledger demo``, a benchmark, a person) can tell.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from adapters.vtex_emulator.emulator import VtexEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.vtex_emulator",
        description="A VTEX emulator on 127.0.0.1, driven through /_emulator/ (see control).",
    )
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument("--app-key", default="vtexappkey-test")
    parser.add_argument("--app-token", default="secret-token")
    parser.add_argument("--lock-window-ms", type=float, default=0.0)
    official = parser.add_mutually_exclusive_group()
    official.add_argument(
        "--official",
        dest="official",
        action="store_true",
        default=None,
        help="require VTEX's official schema check (fail if it cannot load)",
    )
    official.add_argument(
        "--no-official",
        dest="official",
        action="store_false",
        help="check requests against the project's own description only",
    )
    args = parser.parse_args(argv)
    try:
        emulator = VtexEmulator(
            args.app_key, args.app_token, args.port, args.lock_window_ms, official=args.official
        ).start()
    except (RuntimeError, OSError, ValueError) as error:
        # A port in use, or VTEX's files unreadable: say so in one line, not a traceback.
        print(f"VTEX emulator: {error}", file=sys.stderr, flush=True)
        return 1
    state = "on" if emulator.official else "off"
    print(
        f"VTEX emulator listening on {emulator.url}; "
        f"official VTEX schema check {state}: {emulator.official_detail}",
        flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
