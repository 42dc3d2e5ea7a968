"""Voting across frames: one confident read per vehicle with its best frame, time and box."""

from __future__ import annotations

from alarmcloud_detect_plates.detector import PlateRead, suppress, vote


def _read(text: str, score: float, time: float, x: float = 0.4) -> PlateRead:
    return PlateRead(text, "DE", score, time, (x, 0.6, x + 0.1, 0.65))


def test_majority_text_wins_and_best_frame_is_reported() -> None:
    reads = [
        _read("MAB1234", 0.95, 0.0),
        _read("MAB1234", 0.99, 2.0),
        _read("MAB1284", 0.90, 4.0),  # one character off in one frame
        _read("MAB1234", 0.93, 6.0),
    ]
    result = vote(reads)
    assert len(result) == 1
    text, score, best = result[0]
    assert text == "MAB1234"
    assert best.time == 2.0
    assert 0.7 < score < 0.96  # the dissenting frame lowers the clip score


def test_two_vehicles_in_different_places_give_two_reads() -> None:
    reads = [_read("MAB1234", 0.95, 0.0, 0.1), _read("KXY987", 0.9, 0.0, 0.7), _read("KXY987", 0.92, 2.0, 0.7)]
    texts = {t for t, _, _ in vote(reads)}
    assert texts == {"MAB1234", "KXY987"}


def test_partial_read_in_the_same_place_joins_the_vehicle() -> None:
    reads = [_read("MAB1234", 0.97, 0.0), _read("AB1234", 0.9, 2.0), _read("MAB1234", 0.96, 4.0)]
    result = vote(reads)
    assert [t for t, _, _ in result] == ["MAB1234"]


def test_suppress_keeps_the_fullest_read_per_place_in_a_frame() -> None:
    full, part = _read("MAB1234", 0.9, 0.0), _read("AB1234", 0.95, 0.0)
    assert suppress([part, full]) == [full]
