"""The VTEX emulator in a process of its own, for the benches that need a platform."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import free_port  # the sibling script is the library of the benches

ROOT = Path(__file__).resolve().parent.parent
APP_KEY, APP_TOKEN = "vtexappkey-bench", "bench-token"


class Emulator:
    """The VTEX emulator in a process of its own, read through its control API."""

    def __init__(self, log: Path, *, official: bool = True) -> None:
        """``official=False`` leaves out VTEX's official schema check (about 3.6 ms of CPU per
        request against 0.3 ms without it, measured): a throughput bench then measures the
        ledger, not the emulator it shares the machine with."""
        self.url = f"http://127.0.0.1:{free_port()}"
        self.app_key, self.app_token = APP_KEY, APP_TOKEN
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.vtex_emulator",
                "--port",
                self.url.rsplit(":", 1)[1],
                "--app-key",
                APP_KEY,
                "--app-token",
                APP_TOKEN,
                *([] if official else ["--no-official"]),
            ],
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=f"{self.url}/_emulator", timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.get("/inventory").raise_for_status()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"the emulator did not start: {log.read_text()}") from None
                time.sleep(0.2)

    def stocks(self) -> dict[str, int]:
        return {i["sku"]: i["quantity"] for i in self.http.get("/inventory").json()}

    def stock_updates(self) -> list[dict]:
        return self.http.get("/stock-updates").json()

    def requests(self) -> list[dict]:
        return self.http.get("/requests").json()

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def connect_vtex(client: httpx.Client, vtex: Emulator, **settings: object) -> None:
    """Make the emulator the ledger's platform ``vtex``, warehouse ``main`` mapped."""
    response = client.put(
        "/platforms/vtex",
        json={
            "type": "vtex",
            "base_url": vtex.url,
            "credentials": {"app_key": vtex.app_key, "app_token": vtex.app_token},
            "warehouses": {"main": "1_1"},
            **settings,
        },
    )
    response.raise_for_status()
