"""What the machine offers and what work costs: RAM, energy counters (RAPL), CPU time.

Energy is measured from RAPL (powercap sysfs) where readable, else estimated from CPU time and a
per-core power figure; every reading says which (`measured` or `estimated`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


def available_ram() -> int:
    """Bytes of RAM available to new allocations now."""
    return int(psutil.virtual_memory().available)


def total_ram() -> int:
    return int(psutil.virtual_memory().total)


def rapl_domains(sysfs_root: str | Path = "/sys") -> list[Path]:
    """Top-level RAPL package domains (intel-rapl:N) whose energy counter is readable."""
    base = Path(sysfs_root) / "class" / "powercap"
    if not base.is_dir():
        return []
    found = []
    for d in sorted(base.glob("intel-rapl:*")):
        if d.name.count(":") == 1 and os.access(d / "energy_uj", os.R_OK):
            found.append(d)
    return found


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class EnergyReading:
    joules: float
    method: str  # "measured" (RAPL) or "estimated" (CPU time x watts per core)
    source: str


class EnergyMeter:
    """Energy over an interval: start() then stop(); RAPL counter wrap-around handled."""

    def __init__(self, sysfs_root: str | Path = "/sys", watts_per_core: float = 10.0,
                 pids: list[int] | None = None):
        self.domains = rapl_domains(sysfs_root)
        self.watts_per_core = watts_per_core
        self.pids = pids
        self._start_uj: list[int | None] = []
        self._start_cpu = 0.0

    def _cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids or [os.getpid()]:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
        return total

    def start(self) -> EnergyMeter:
        self._start_uj = [_read_int(d / "energy_uj") for d in self.domains]
        self._start_cpu = self._cpu_seconds()
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> EnergyReading:
        if self.domains and all(v is not None for v in self._start_uj):
            total_uj = 0
            for d, before in zip(self.domains, self._start_uj):
                after = _read_int(d / "energy_uj")
                if after is None:
                    break
                delta = after - before
                if delta < 0:  # the counter wrapped
                    delta += _read_int(d / "max_energy_range_uj") or 0
                total_uj += delta
            else:
                return EnergyReading(total_uj / 1e6, "measured", "rapl:" + ",".join(d.name for d in self.domains))
        cpu = max(0.0, self._cpu_seconds() - self._start_cpu)
        return EnergyReading(cpu * self.watts_per_core, "estimated",
                             f"cpu-time x {self.watts_per_core:g} W/core")
