"""alarmcloud camera plugin for INSTAR HD, Full HD and WQHD cameras."""

from __future__ import annotations

from alarmcloud_camera_instar.adapter import InstarAdapter, build_adapter
from alarmcloud_camera_instar.catalog import GENERATIONS, MODELS, find_model

__version__ = "0.1.0"
__all__ = ["GENERATIONS", "MODELS", "InstarAdapter", "build_adapter", "find_model"]
