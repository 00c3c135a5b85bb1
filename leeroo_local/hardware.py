"""What the machine offers and what work costs: RAM, VRAM, energy counters (RAPL, NVML), CPU time.

Energy is measured from counters where they are readable: RAPL (powercap sysfs) for the CPU
packages, and NVML's total-energy counter for NVIDIA GPUs when the expert runs there. Where the
CPU side has no counter it is estimated from the worker's CPU time and a per-core power figure.
Every reading says which: `measured` only when every part of it was measured.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


def physical_cores() -> int:
    """Cores llama.cpp generates on by default (its own default and Ollama's): the physical
    ones; a second hyperthread of a core adds little to a memory-bound decode."""
    import os

    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def available_ram() -> int:
    """Bytes of RAM available to new allocations now."""
    return int(psutil.virtual_memory().available)


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


class _NvmlMemory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                ("used", ctypes.c_ulonglong)]


class Nvml:
    """NVIDIA's management library through ctypes (no pynvml dependency).

    `Nvml.open()` is None where the library or a GPU is absent, so callers need no try/except.
    Energy is NVML's counter of millijoules since the driver loaded (Volta and newer).
    """

    LIBRARY = "libnvidia-ml.so.1"

    def __init__(self, lib: ctypes.CDLL, handles: list[ctypes.c_void_p]):
        self._lib, self.handles = lib, handles

    @classmethod
    def open(cls, library: str | None = None) -> Nvml | None:
        try:
            lib = ctypes.CDLL(library or cls.LIBRARY)
            if lib.nvmlInit_v2() != 0:
                return None
            count = ctypes.c_uint(0)
            if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
                return None
            handles = []
            for i in range(count.value):
                h = ctypes.c_void_p()
                if lib.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(h)) == 0:
                    handles.append(h)
        except (OSError, AttributeError):
            return None
        return cls(lib, handles) if handles else None

    def energy_mj(self) -> int | None:
        """Millijoules used by all GPUs since the driver loaded; None if any is unreadable."""
        total = 0
        for h in self.handles:
            value = ctypes.c_ulonglong(0)
            if self._lib.nvmlDeviceGetTotalEnergyConsumption(h, ctypes.byref(value)) != 0:
                return None
            total += value.value
        return total

    def free_memory(self) -> int:
        """Free bytes on all GPUs together."""
        total = 0
        for h in self.handles:
            mem = _NvmlMemory()
            if self._lib.nvmlDeviceGetMemoryInfo(h, ctypes.byref(mem)) == 0:
                total += mem.free
        return total


@dataclass
class EnergyReading:
    joules: float
    method: str  # "measured" (every part from a counter) or "estimated"
    source: str


class EnergyMeter:
    """Energy over an interval: start() then stop(); RAPL counter wrap-around handled.

    `gpu`: the expert runs (partly) on the GPU, so NVML's counter is added where readable.
    """

    def __init__(self, sysfs_root: str | Path = "/sys", watts_per_core: float = 10.0,
                 pids: list[int] | None = None, gpu: bool = False, nvml: Nvml | None = None):
        self.domains = rapl_domains(sysfs_root)
        self.watts_per_core = watts_per_core
        self.pids = pids
        self.gpu = gpu
        self.nvml = (nvml or Nvml.open()) if gpu else None
        self._start_uj: list[int | None] = []
        self._start_cpu = 0.0
        self._start_mj: int | None = None

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
        self._start_mj = self.nvml.energy_mj() if self.nvml else None
        self._t0 = time.perf_counter()
        return self

    def _rapl_joules(self) -> float | None:
        if not self.domains or any(v is None for v in self._start_uj):
            return None
        total_uj = 0
        for d, before in zip(self.domains, self._start_uj):
            after = _read_int(d / "energy_uj")
            if after is None:
                return None
            delta = after - before
            if delta < 0:  # the counter wrapped
                delta += _read_int(d / "max_energy_range_uj") or 0
            total_uj += delta
        return total_uj / 1e6

    def stop(self) -> EnergyReading:
        cpu_j = self._rapl_joules()
        if cpu_j is not None:
            parts = [("rapl:" + ",".join(d.name for d in self.domains), True)]
        else:
            cpu = max(0.0, self._cpu_seconds() - self._start_cpu)
            cpu_j = cpu * self.watts_per_core
            parts = [(f"cpu-time x {self.watts_per_core:g} W/core", False)]
        joules = cpu_j
        if self.gpu:
            end = self.nvml.energy_mj() if self.nvml is not None else None
            if end is not None and self._start_mj is not None:
                joules += (end - self._start_mj) / 1e3
                parts.append(("nvml", True))
            else:
                parts.append(("gpu energy unreadable (not counted)", False))
        method = "measured" if all(ok for _, ok in parts) else "estimated"
        return EnergyReading(joules, method, " + ".join(name for name, _ in parts))
