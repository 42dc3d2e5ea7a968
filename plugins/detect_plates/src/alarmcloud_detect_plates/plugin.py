"""Hook implementations of this plugin (entry-point target)."""

from __future__ import annotations
