"""alarmcloud plugin plates: licence-plate reading from alarm clips."""

from __future__ import annotations

from alarmcloud_detect_plates.formats import (
    COUNTRY_FORMATS,
    COUNTRY_GROUPS,
    PlateFormat,
    expand_countries,
    fit_plate,
    normalize_plate,
    plate_distance,
    validate_plate,
)

__version__ = "0.1.0"
__all__ = [
    "COUNTRY_FORMATS",
    "COUNTRY_GROUPS",
    "PlateFormat",
    "expand_countries",
    "fit_plate",
    "normalize_plate",
    "plate_distance",
    "validate_plate",
]
