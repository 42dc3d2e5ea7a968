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
from typing import Any

from alarmcloud.clipprobe import ProbeError
from alarmcloud.contracts import ClipProbe


def _limits(memory_mb: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024, memory_mb * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


#: probes wait here instead of competing for the CPU, so the time limit measures the child's own work
_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def run_limited(args: list[str], timeout: float, memory_mb: int, cpu_seconds: int,
                timed_out: ProbeError, crashed: ProbeError) -> dict[str, Any]:
    """Run a child that prints one JSON object (``{"error": {"code", "message"}}`` when it refuses the file) under
    memory and CPU limits, in the probe slots; its object, or ProbeError: its own error, ``timed_out`` or
    ``crashed`` (killed, out of memory, no JSON)."""
    try:
        with _SLOTS:
            proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False,
                                  preexec_fn=lambda: _limits(memory_mb, cpu_seconds))
    except subprocess.TimeoutExpired:
        raise timed_out from None
    try:
        data = json.loads(proc.stdout or b"{}")
    except ValueError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("code"):
        raise ProbeError(str(err["code"]), str(err.get("message") or "not a readable video"))
    if proc.returncode != 0 or not isinstance(data, dict) or err is not None:
        raise crashed
    return data


#: how a limited child starts: the module's ``_main`` without running the package's ``__init__`` (the plugin API
#: pulls in pydantic and starlette, which a probe or an encoder does not need); it starts in about half the time of
#: ``python -m``, some 0.25 CPU-seconds less on every upload
_CHILD = """import importlib, importlib.util, sys, types
spec = importlib.util.find_spec("alarmcloud")
package = types.ModuleType("alarmcloud")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["alarmcloud"] = package
sys.exit(importlib.import_module(sys.argv.pop(1))._main(sys.argv))
"""


def child_args(module: str, *args: str) -> list[str]:
    """The command line that runs ``module._main([argv0, *args])`` in a new Python process (``run_limited``)."""
    return [sys.executable, "-c", _CHILD, module, *args]


def safe_probe(path: Path, timeout: float = 20.0, memory_mb: int = 1024,
               thumbnail: Path | None = None) -> ClipProbe:
    """Probe ``path`` (and write a JPEG thumbnail) in a child; ProbeError on a bad file, crash, timeout or OOM."""
    args = child_args("alarmcloud.safeprobe", str(path), *([str(thumbnail)] if thumbnail else []))
    data = run_limited(args, timeout, memory_mb, int(timeout) + 1,
                       ProbeError("probe_timeout", "probing the file took too long"),
                       ProbeError("probe_crashed", "the file could not be read safely"))
    return ClipProbe(**data)


def _main(argv: list[str]) -> int:
    from alarmcloud.clipprobe import probe_and_first_frame

    try:
        result, first = probe_and_first_frame(Path(argv[1]))
    except ProbeError as exc:
        sys.stdout.write(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
        return 2
    if len(argv) > 2:
        from alarmcloud.clipprobe import thumbnail_jpeg

        try:  # from the frame the probe decoded: the first keyframe is not decoded twice
            Path(argv[2]).write_bytes(thumbnail_jpeg(Path(argv[1]), first=first))
        except Exception:  # a clip without a decodable keyframe is still a clip; it just has no thumbnail
            pass
    sys.stdout.write(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
