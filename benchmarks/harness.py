"""The measuring tools of the benchmark: interleaved timing, result rows with min-median-max, the table and the JSON.

Ours and the reference always run in the same process, one repetition of each in turn, the order rotating
from one repetition to the next, so that noise from other work on the machine hits both alike.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch


def synchronize(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str) -> float:
    """Seconds one call of fn takes, with the device's queued work finished before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(candidates: dict[str, Callable[[], object]], *, warmup: int, repeats: int) -> dict[str, list]:
    """Call each candidate (a function returning its own measurement) `repeats` times after `warmup` calls, in an
    order that rotates with every repetition, so that noise from other work on the machine hits all alike."""
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    results = {name: [] for name in names}
    for repetition in range(repeats):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            results[name].append(candidates[name]())
    return results


@dataclass
class Row:
    """One figure of the report: ours and the reference's values over the repetitions, in `unit`."""

    section: str
    size: str
    case: str
    unit: str
    ours: list[float]
    reference: list[float] | None = None
    higher_is_better: bool = True
    note: str = ""

    @staticmethod
    def summary(values: list[float] | None) -> dict | None:
        if not values:
            return None
        return {"min": min(values), "median": statistics.median(values), "max": max(values)}

    @property
    def ratio(self) -> float | None:
        """Ours / reference, medians; above 1 is better for throughput, below 1 is better for time and memory."""
        if not self.reference:
            return None
        return statistics.median(self.ours) / statistics.median(self.reference)

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(ours_summary=self.summary(self.ours), reference_summary=self.summary(self.reference))
        data["ratio"] = self.ratio
        return data


def throughput(seconds: list[float], items: int) -> list[float]:
    return [items / s for s in seconds]


def format_spread(values: list[float] | None) -> str:
    """"median (min-max)", with as many digits as the size of the numbers calls for."""
    if not values:
        return "-"
    low, middle, high = min(values), statistics.median(values), max(values)
    digits = 0 if middle >= 100 else 1 if middle >= 10 else 2 if middle >= 1 else 3
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def markdown_table(rows: list[Row]) -> str:
    """The results as a markdown table: one line per figure, ratio first because it is what matters."""
    lines = [
        "| section | size | case | unit | ours / reference | ours: median (min-max) | reference: median (min-max) | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        lines.append(
            f"| {row.section} | {row.size} | {row.case} | {row.unit} | {ratio} | {format_spread(row.ours)} "
            f"| {format_spread(row.reference)} | {row.note} |"
        )
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def total_memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        return None


def machine_description(device: str) -> dict:
    import transformers

    description = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": total_memory_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device,
        "load_average_at_start": os.getloadavg(),
    }
    if device.startswith("cuda"):
        description["gpu"] = torch.cuda.get_device_name(device)
    return description


def status_bytes(field: str, pid: int | str = "self") -> int:
    """One memory field of /proc/PID/status (RssAnon, VmHWM, ...), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no {field} in /proc/{pid}/status: memory is measured on Linux only")


class PeakAnonMemory:
    """The peak anonymous resident memory (RssAnon) of a process while the `with` block runs, sampled every
    `interval` seconds by a thread; `pid` is "self" or a child's id. Anonymous memory is what a process holds:
    VmHWM also counts the clean pages of memory-mapped files (a safetensors checkpoint read through a map), which
    the kernel drops whenever it needs the room, so it overstates what loading a checkpoint costs."""

    def __init__(self, pid: int | str = "self", interval: float = 0.002):
        self.pid, self.interval = pid, interval
        self.peak = self.baseline = status_bytes("RssAnon", pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._done.wait(self.interval):
            try:
                self.peak = max(self.peak, status_bytes("RssAnon", self.pid))
            except (OSError, RuntimeError):  # the child has exited (its status is gone or has no memory left)
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, status_bytes("RssAnon", self.pid))
        except (OSError, RuntimeError):
            pass


@dataclass
class Report:
    machine: dict
    settings: dict
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row):
        self.rows.append(row)
        ratio = "" if row.ratio is None else f"  ours/reference {row.ratio:.2f}x"
        print(f"  {row.section:9} {row.size:7} {row.case:42} {format_spread(row.ours):>24} {row.unit}{ratio}", flush=True)

    def write_json(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"machine": self.machine, "settings": self.settings, "rows": [row.to_json() for row in self.rows]}
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=2))
        temporary.replace(path)
