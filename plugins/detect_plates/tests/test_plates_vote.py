"""Voting across frames: one confident read per vehicle with its best frame, time and box."""

from __future__ import annotations

from alarmcloud_detect_plates.detector import PlateRead, PlatesConfig, suppress, surest, vote, votes


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


def test_one_frame_misreading_a_character_neither_wins_nor_sinks_the_clip() -> None:
    def read(second: dict[str, float], time: float) -> PlateRead:
        dists = ({"M": 0.99}, {"H": 0.98}, second, {"V": 0.99}, {"4": 0.99}, {"L": 0.97})
        text = "".join(max(d, key=d.__getitem__) for d in dists)
        return PlateRead(text, "US", 0.95, time, (0.4, 0.6, 0.5, 0.65), dists)

    reads = [read({"6": 0.9, "G": 0.08}, 0.0), read({"G": 0.6, "6": 0.35}, 2.0), read({"6": 0.95}, 4.0)]
    [(text, score, best)] = vote(reads, ["US"])
    assert text == "MH6V4L"
    assert score >= PlatesConfig().threshold  # one frame's doubt costs one character's share, not the plate
    assert best.time in (0.0, 4.0)


def test_fused_read_is_fitted_to_the_camera_countries() -> None:
    # every frame reads "0" first, but only a little surer than "O": for a Brazilian camera it is a letter
    dists = ({"0": 0.5, "O": 0.45}, {"K": 0.99}, {"M": 0.99}, {"2": 0.99}, {"3": 0.99}, {"7": 0.99}, {"1": 0.99})
    reads = [PlateRead("0KM2371", "US", 0.9, t, (0.4, 0.6, 0.5, 0.65), dists) for t in (0.0, 2.0)]
    assert [t for t, _, _ in vote(reads, ["BR"])] == ["OKM2371"]


def test_a_blue_band_narrows_the_fused_read_to_banded_countries() -> None:
    # "K69628" and a last character the recogniser takes for a 0 (90 %) rather than an O: as a US plate it
    # needs no change; an Austrian plate ends in a letter. A blue band at the crop's end says "European".
    dists = ({"K": 0.99}, *({c: 0.99} for c in "69628"), {"0": 0.9, "O": 0.1})
    box = (0.4, 0.6, 0.5, 0.65)
    plain = [PlateRead("K696280", "US", 0.95, 0.0, box, dists)]
    banded = [PlateRead("K69628O", "AT", 0.95, 0.0, box, dists, banded=True)]
    assert [t for t, _, _ in vote(plain)] == ["K696280"]
    assert [t for t, _, _ in vote(banded)] == ["K69628O"]
    # the band cannot name a country the camera does not allow
    assert [t for t, _, _ in vote(banded, ["US"])] == ["K696280"]


def test_frames_fused_follow_the_recogniser_where_formats_disagree() -> None:
    # three frames of a US "FB5X8T": the fifth character is read 8 twice and B once. Fused, the recogniser prefers
    # 8; with every country allowed that is the US plate as read, not Austria's "FB 5 XBT" (a replacement of the
    # recogniser's choice). A blue band beside the text says "European" and gives the Austrian reading.
    fifths = ({"8": 0.85, "B": 0.13}, {"8": 0.63, "B": 0.35}, {"B": 0.65, "8": 0.33})
    box = (0.4, 0.6, 0.5, 0.65)

    def reads(banded: bool) -> list[PlateRead]:
        out = []
        for t, fifth in enumerate(fifths):
            dists = ({"F": 0.99}, {"B": 0.99}, {"5": 0.99}, {"X": 0.99}, fifth, {"T": 0.99})
            text = "".join(max(d, key=d.__getitem__) for d in dists)
            out.append(PlateRead(text, "US", 0.9, float(t), box, dists, banded=banded))
        return out

    assert [t for t, _, _ in vote(reads(False))] == ["FB5X8T"]
    assert [t for t, _, _ in vote(reads(True))] == ["FB5XBT"]


def test_second_look_does_not_take_away_a_read_for_another_length() -> None:
    # the first look read the plate; the second look's re-read of a crop that took in the emblem above the text
    # ("H" + the plate + a seal read as "C") outweighed it in the vote, now only 0.72 sure
    first = votes([_read("UH1N2A", 0.98, 0.0), _read("UHIN2A", 0.88, 2.0)])
    reread = [_read("HUHICN2A", 0.85, 3.0), _read("HUHICN2A", 0.76, 2.0), _read("4UHICN2A", 0.76, 0.0)]
    second = votes([_read("UH1N2A", 0.98, 0.0), _read("UHIN2A", 0.88, 2.0), *reread])
    assert second[0].text == "HUHICN2A" and second[0].score < first[0].score
    assert surest(first, second) == first


def test_second_look_keeps_the_surer_score_of_the_same_text() -> None:
    # partial re-reads ("UJ3V0") lower the share of the full text below the threshold it had reached
    reads = [_read("UJ3V0J", 0.9, 0.0), _read("UJ3V0J", 0.9, 2.0), _read("UJ3V0", 0.88, 3.0)]
    first = votes(reads)
    second = votes([*reads, _read("UJ3V0", 0.7, 3.0)])
    assert first[0].text == second[0].text == "UJ3V0J" and second[0].score < first[0].score
    assert surest(first, second) == first


def test_second_look_settles_a_character() -> None:
    # the equalised re-reads read "2" where the first look read "Z": a settled character stands even though
    # the fused vote is less sure than the first look's unanimous misread
    first = votes([_read("R8Z0503", 0.9, t) for t in (0.0, 2.0, 4.0)])
    second = votes([*(_read("R8Z0503", 0.88, t) for t in (0.0, 2.0, 4.0)),
                   *(_read("R820503", 0.92, t) for t in (0.0, 2.0, 4.0))])
    assert surest(first, second) == second
    assert second[0].score < first[0].score


def test_second_look_adds_a_vehicle_the_first_missed() -> None:
    first = votes([_read("MAB1234", 0.95, 0.0, 0.1)])
    second = votes([_read("MAB1234", 0.95, 0.0, 0.1), _read("KXY987", 0.9, 2.0, 0.7)])
    assert {v.text for v in surest(first, second)} == {"MAB1234", "KXY987"}


def test_second_look_that_reads_a_length_more_surely_stands() -> None:
    # every first-look frame read a canton's shield as a "1"; the equalised re-reads leave it out, more surely
    first = votes([_read("TI19445", 0.88, t) for t in (0.0, 2.0, 4.0)])
    second = votes([*(_read("TI19445", 0.88, t) for t in (0.0, 2.0, 4.0)),
                     *(_read("TI9445", 0.95, t) for t in (0.0, 2.0, 4.0))])
    assert second[0].text == "TI9445" and second[0].score < first[0].score
    assert [v.text for v in surest(first, second)] == ["TI9445"]


def test_a_read_shifted_by_one_character_is_outvoted_not_averaged_in() -> None:
    # one frame's box began a character late and ended one late: same place, same length, but every position
    # differs. Averaged character by character it would take a third off every character's probability and sink
    # a plate two frames read at 1.0; as another text it only lowers the share, as a read of another length does.
    reads = [
        PlateRead("6LSU216", "US", 1.0, 0.0, (0.46, 0.30, 0.54, 0.35)),
        PlateRead("LSU2162", "US", 0.91, 1.5, (0.47, 0.30, 0.55, 0.35)),
        PlateRead("6LSU216", "US", 1.0, 3.0, (0.46, 0.30, 0.54, 0.35)),
    ]
    [(text, score, best)] = vote(reads, ["US"])
    assert text == "6LSU216"
    assert score >= PlatesConfig().threshold
    assert best.time in (0.0, 3.0)


def test_reads_of_one_length_that_mostly_agree_are_still_fused() -> None:
    # a character misread in one frame is no other text: the frames are averaged and the majority character wins
    reads = [_read("MAB1234", 0.9, 0.0), _read("MAB1284", 0.95, 2.0), _read("MAB1234", 0.9, 4.0)]
    [(text, _, _)] = vote(reads)
    assert text == "MAB1234"
