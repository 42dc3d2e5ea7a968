"""The clip verdict when a detector explains the mover away (moths at the IR lamp) — and when it must not."""

from __future__ import annotations

from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest
from alarmcloud.pipeline import verdict_for


class Rain(Detector):
    name = "rain"
    labels = ("rain", "snow")
    false_alarm_labels = frozenset({"rain", "snow"})

    def frame_request(self) -> FrameRequest:
        return FrameRequest()

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        return []


class Insects(Rain):
    name = "insects"
    labels = ("insect",)
    false_alarm_labels = frozenset({"insect"})
    mover_explaining_labels = frozenset({"insect"})


INSECT = Finding("insects", "insect", 0.9)
RAIN = Finding("rain", "rain", 0.9)
PLATE = Finding("plates", "plate", 0.9, text="B AB 123")


def test_detectors_explain_no_mover_by_default() -> None:
    assert Detector.mover_explaining_labels == frozenset()
    assert verdict_for([RAIN], mover=True, detectors=[Rain()]) == "alarm"


def test_mover_explained_by_insects_is_a_false_alarm() -> None:
    dets = [Rain(), Insects()]
    assert verdict_for([INSECT], mover=True, detectors=dets) == "false_alarm:insect"
    # the mover is the insects, whatever the weather
    assert verdict_for([RAIN, INSECT], mover=True, detectors=dets) == "false_alarm:insect"
    assert verdict_for([INSECT], mover=False, detectors=dets) == "false_alarm:insect"
    # without a mover the weather is the cause named (a moth in a rainy night is not why it was a false alarm)
    assert verdict_for([RAIN, INSECT], mover=False, detectors=dets) == "false_alarm:rain"


def test_mover_without_an_explaining_finding_stays_an_alarm() -> None:
    dets = [Rain(), Insects()]
    assert verdict_for([], mover=True, detectors=dets) == "alarm"  # the insect detector saw something else move
    assert verdict_for([RAIN], mover=True, detectors=dets) == "alarm"


def test_object_finding_keeps_the_alarm_next_to_insects() -> None:
    dets = [Rain(), Insects()]
    assert verdict_for([INSECT, PLATE], mover=True, detectors=dets) == "alarm"


def test_explaining_label_of_a_detector_that_did_not_run_explains_nothing() -> None:
    # only the labels of the detectors that ran count: a finding some other code made up does not hide a mover
    assert verdict_for([INSECT], mover=True, detectors=[Rain()]) == "alarm"
