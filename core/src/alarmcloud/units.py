"""Sizes as people read them, the same in the web UI and on the command line."""

from __future__ import annotations


def human_bytes(n: float | None) -> str:
    """Sizes in steps of 1024, as quotas are set (10 * 1024**3 reads "10 GB", not "10.7 GB"); no ".0"."""
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f}".removesuffix(".0") + f" {unit}"
        n /= 1024
    return f"{n:.1f} TB"
