"""How much physical memory there is, and how much is free: for doctor's fit check and the
training and generation child's choice of a dense float32 student (mlx_backend/quantized_cpu)."""

from __future__ import annotations

import os
from pathlib import Path


def memory_bytes() -> tuple[int | None, int | None]:
    """(total, available) physical memory; available is None where the OS does not say."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = None
    available = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    return total, available
