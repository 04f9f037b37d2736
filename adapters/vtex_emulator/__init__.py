"""A VTEX emulator for tests, demos and benchmarks: ``VtexEmulator`` (in-process) or
``python -m adapters.vtex_emulator --port 8099`` (a process driven through ``/_emulator/``).

Invariant: it serves what VTEX serves to the ledger, over real HTTP, and refuses (400, listing
every problem) any request that breaks the project's own description of those endpoints
(``description``), plus VTEX's official schema where that layer can load (``official``).
Modules: ``emulator`` (state and the VTEX endpoints), ``server`` (HTTP), ``control`` (the
control API), ``faults``, ``orders`` (VTEX-shaped orders).
"""

from adapters.vtex_emulator.emulator import HOST, VtexEmulator

__all__ = ["HOST", "VtexEmulator"]
