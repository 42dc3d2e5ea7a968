"""Every hook is documented under its exact signature and has a ``test_hook_<name>`` test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from alarmcloud import hookspecs

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, "alarmcloud_spec")}


def test_every_hook_is_documented_with_its_signature() -> None:
    doc = (ROOT / "docs" / "plugin_hooks.md").read_text()
    hooks = _hooks()
    assert len(hooks) >= 9
    for name, sig in hooks.items():
        args = ", ".join(sig.parameters)
        assert re.search(rf"^## `{name}\({re.escape(args)}\)", doc, re.M), f"docs/plugin_hooks.md lacks {name}({args})"


def test_every_hook_has_a_test() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for name in _hooks():
        assert f"def test_hook_{name}" in sources, f"no test_hook_{name}"


def test_configuration_docs_are_current() -> None:
    import runpy

    render = runpy.run_path(str(ROOT / "tools" / "gen_config_docs.py"))["render"]
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), "run python tools/gen_config_docs.py"
