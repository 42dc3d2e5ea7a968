"""The README's two commands keep working on a fresh machine with only Python 3.11+."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_first_command_installs_uv_into_its_own_venv_and_serves() -> None:
    steps = [shlex.split(step) for step in _bash_blocks()[0].strip().split("&&")]
    # Debian/Ubuntu Pythons refuse `pip install` outside a virtual environment (PEP 668, "externally managed")
    for argv in steps:
        if "pip" in argv[:3] or argv[0].endswith("/pip"):
            assert argv[0].startswith(".uv/bin/"), f"pip must run inside the .uv venv: {argv}"
    assert steps[0] == ["python3", "-m", "venv", ".uv"]
    assert steps[-1][-4:] == ["alarmcloud", "serve", "--data-dir", "./data"]
    assert ".uv/" in (ROOT / ".gitignore").read_text().splitlines()


def test_second_command_is_the_test_script_ci_runs() -> None:
    assert _bash_blocks()[1].strip() == "./scripts/test"
    script = (ROOT / "scripts" / "test").read_text()
    assert "python3 -m pip install" not in script  # same PEP 668 trap
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec ./scripts/test")
