"""Probe untrusted uploads in a child process with time and memory limits, so a hostile file cannot hurt the server."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from alarmcloud.contracts import ClipProbe
from alarmcloud.video import ProbeError


def _limits(memory_mb: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024, memory_mb * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


#: probes wait here instead of competing for the CPU, so the time limit measures the child's own work
_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def safe_probe(path: Path, timeout: float = 20.0, memory_mb: int = 1024,
               thumbnail: Path | None = None) -> ClipProbe:
    """Probe ``path`` (and write a JPEG thumbnail) in a child; ProbeError on a bad file, crash, timeout or OOM."""
    args = [sys.executable, "-m", "alarmcloud.safeprobe", str(path)] + ([str(thumbnail)] if thumbnail else [])
    try:
        with _SLOTS:
            proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False,
                                  preexec_fn=lambda: _limits(memory_mb, int(timeout) + 1))
    except subprocess.TimeoutExpired:
        raise ProbeError("probe_timeout", "probing the file took too long") from None
    if proc.returncode != 0:
        try:
            err = json.loads(proc.stdout or b"{}").get("error") or {}
        except ValueError:
            err = {}
        if err:
            raise ProbeError(err.get("code", "not_a_video"), err.get("message", "not a readable video"))
        raise ProbeError("probe_crashed", "the file could not be read safely")
    data = json.loads(proc.stdout)
    return ClipProbe(**data)


def _main(argv: list[str]) -> int:
    from alarmcloud.video import probe

    try:
        result = probe(Path(argv[1]))
    except ProbeError as exc:
        sys.stdout.write(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
        return 2
    if len(argv) > 2:
        from alarmcloud.video import thumbnail_jpeg

        try:
            Path(argv[2]).write_bytes(thumbnail_jpeg(Path(argv[1])))
        except Exception:  # a clip without a decodable keyframe is still a clip; it just has no thumbnail
            pass
    sys.stdout.write(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
