"""Hook implementations of this plugin (entry-point target)."""

from __future__ import annotations

from typing import Any

from alarmcloud.hookspecs import hookimpl
from alarmcloud.specs import DetectorOption, DetectorSpec, ProcessingRecord

from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig
from alarmcloud_detect_plates.formats import COUNTRY_FORMATS, EUROPE

PRIVACY = ProcessingRecord(
    data=("licence plate text read from alarm clips", "time and position of the plate in the clip"),
    purpose="tell camera owners which vehicles appeared in their alarm clips and let them search by plate; "
    "only runs on cameras where the owner switched the plates detector on",
    recipients=("the camera owner's account", "integrations the owner linked (plate.recognised events)"),
    retention="stored with the clip's findings and deleted with the clip or the account; included in the "
    "account data export",
)


def _factory(config: Any) -> PlateDetector:
    """Build the detector from the operator's ``[plugins.plates]`` settings (dict, model or None)."""
    if config is None:
        return PlateDetector(PlatesConfig())
    if isinstance(config, PlatesConfig):
        return PlateDetector(config)
    return PlateDetector(PlatesConfig.model_validate(config))


def countries_option() -> DetectorOption:
    """The per-camera ``countries`` option: all of Europe at once (``EU``), or any of the countries whose plate
    formats this version knows."""
    europe = (("EU", f"All of Europe ({len(EUROPE)} countries)"),)
    return DetectorOption(
        key="countries",
        label="Plate countries",
        kind="choices",
        choices=europe + tuple((code, fmt.name) for code, fmt in COUNTRY_FORMATS.items()),
        groups=("EU",),
        help="Plate formats of the countries where this camera is; fewer countries mean fewer misreads",
    )


@hookimpl
def register_detectors() -> list[DetectorSpec]:
    """The ``plates`` detector."""
    return [
        DetectorSpec(
            name="plates",
            title="Licence plates",
            factory=_factory,
            labels=PlateDetector.labels,
            description="Reads licence plates (text, time, box) of vehicles in alarm clips; offline PP-OCR.",
            config_model=PlatesConfig,
            privacy=PRIVACY,
            options=(countries_option(),),
            # the text detector found the plate line in 56 of 56 real photos at 960 px, 49 of 56 at 640 px
            min_source_width=960,
        )
    ]
