"""Dive rules: numbers ↔ labels, names, DD tables and the judges' rule, checked on the real MTL-AQA data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aqa_cli.rules import (
    HEIGHTS,
    LABEL_NAMES,
    DiveLabels,
    dd_entries,
    describe,
    difficulty,
    dive_number,
    expected_difficulty,
    final_score,
    judged_execution,
    listed_heights,
    number_at,
    parse_dive,
    table_difficulty,
)
from aqa_cli.storage import safe_load

SHARED = Path(__file__).resolve().parents[2] / "shared"
DERIVED = SHARED / "data" / "mtl-aqa" / "derived" / "final_annotations_dict_with_dive_number.pkl"


@pytest.fixture(scope="module")
def mtl_aqa():
    if not DERIVED.is_file():
        pytest.skip(f"shared MTL-AQA annotations not found at {DERIVED}")
    return safe_load(DERIVED)


@pytest.mark.parametrize("number, labels", [
    ("107B", DiveLabels(position=1, armstand=0, rotation_type=1, ss_no=7, tw_no=0)),
    ("305C", DiveLabels(position=2, armstand=0, rotation_type=3, ss_no=5, tw_no=0)),
    ("407C", DiveLabels(position=2, armstand=0, rotation_type=2, ss_no=7, tw_no=0)),
    ("5253B", DiveLabels(position=1, armstand=0, rotation_type=0, ss_no=5, tw_no=3)),
    ("626C", DiveLabels(position=2, armstand=1, rotation_type=0, ss_no=6, tw_no=0)),
    ("6245D", DiveLabels(position=0, armstand=1, rotation_type=0, ss_no=4, tw_no=5)),
    ("101A", DiveLabels(position=0, armstand=0, rotation_type=1, ss_no=1, tw_no=0, straight=True)),
    ("112B", DiveLabels(position=1, armstand=0, rotation_type=1, ss_no=2, tw_no=0, flying=True)),
    ("1011C", DiveLabels(position=2, armstand=0, rotation_type=1, ss_no=11, tw_no=0)),
])
def test_number_labels_round_trip(number, labels):
    assert parse_dive(number) == labels
    assert dive_number(labels) == number
    assert parse_dive(number.lower()) == labels


def test_straight_is_class_free_and_a_predicted_free_is_written_d():
    assert parse_dive("5231A").position == parse_dive("5231D").position == 0
    assert dive_number(DiveLabels(0, 0, 0, 3, 1)) == "5231D"


def test_a_predicted_free_is_read_straight_where_the_table_lists_only_a():
    # 101 is listed only as 101A, 5231 only as 5231D: class 0 means whichever the table has there.
    assert number_at(DiveLabels(0, 0, 1, 1, 0), "3m") == "101A"
    assert number_at(DiveLabels(0, 0, 0, 3, 1), "3m") == "5231D"
    assert difficulty(number_at(DiveLabels(0, 0, 1, 1, 0), 10), 10) == 1.6
    # Pike and tuck, a dive the table lacks at that height, and no or an unknown height: unchanged.
    assert number_at(DiveLabels(1, 0, 1, 1, 0), "3m") == "101B"
    assert number_at(DiveLabels(0, 0, 1, 9, 0), "3m") == "109D"
    assert number_at(DiveLabels(0, 0, 1, 1, 0), None) == "101D"
    assert number_at(DiveLabels(0, 0, 1, 1, 0), "2m") == "101D"
    assert all(not (e.dive.endswith("A") and difficulty(e.dive[:-1] + "D", e.height))
               for e in dd_entries())  # never listed both ways, so the reading is never a guess
    # the lookup predictions use: a miss (no number, no height, unknown height or dive) is None
    assert table_difficulty("101A", "3m") == 1.6
    assert table_difficulty("", "3m") is table_difficulty("101A", "") is table_difficulty("101A", "2m") is None
    assert table_difficulty("109D", "3m") is None
    # where a dive the scorer read is listed, for the panel's hint when the height lacks it
    assert listed_heights("101A") == ["1m", "3m", "5m", "7.5m", "10m"]
    assert listed_heights("646C") == ["10m"] and listed_heights("") == listed_heights("9x") == []


def _log_probs(position, armstand, rotation_type, ss_no, tw_no):
    """Five heads' log-probabilities from {class: probability} dicts (unnamed classes: 0)."""
    sizes = [len(LABEL_NAMES[h]) for h in ("position", "armstand", "rotation_type", "ss_no", "tw_no")]
    out = {}
    for head, probs, k in zip(("position", "armstand", "rotation_type", "ss_no", "tw_no"),
                              (position, armstand, rotation_type, ss_no, tw_no), sizes):
        p = np.zeros(k)
        for cls, v in probs.items():
            p[cls] = v
        with np.errstate(divide="ignore"):
            out[head] = np.log(p)
    return out


def test_expected_difficulty_weighs_the_listed_dives_by_the_heads_probabilities():
    sure = _log_probs({1: 1.0}, {0: 1.0}, {1: 1.0}, {5: 1.0}, {0: 1.0})  # 105B
    assert expected_difficulty(sure, "3m") == pytest.approx(difficulty("105B", "3m"))
    # 60/40 between 2½ and 3½ somersaults: the DDs mixed 60/40
    mixed = _log_probs({1: 1.0}, {0: 1.0}, {1: 1.0}, {5: 0.6, 7: 0.4}, {0: 1.0})
    assert expected_difficulty(mixed, "3m") == pytest.approx(0.6 * difficulty("105B", "3m") + 0.4 * difficulty("107B", "3m"))
    # class 0 is whichever of free / straight the table lists: 101A here
    assert expected_difficulty(_log_probs({0: 1.0}, {0: 1.0}, {1: 1.0}, {1: 1.0}, {0: 1.0}), "3m") == pytest.approx(1.6)
    # mass on a dive the table does not list at the height (armstand off a springboard) gets no weight,
    # and when such dives hold more than half of it, there is no expected DD
    half = _log_probs({1: 1.0}, {0: 0.6, 1: 0.4}, {1: 1.0}, {5: 1.0}, {0: 1.0})
    assert expected_difficulty(half, "3m") == pytest.approx(difficulty("105B", "3m"))
    assert expected_difficulty(_log_probs({1: 1.0}, {0: 0.4, 1: 0.6}, {1: 1.0}, {5: 1.0}, {0: 1.0}), "3m") is None
    assert expected_difficulty(_log_probs({1: 1.0}, {1: 1.0}, {1: 1.0}, {5: 1.0}, {0: 1.0}), "3m", min_mass=0) is None
    with pytest.raises(ValueError, match="height"):
        expected_difficulty(sure, "2m")


@pytest.mark.parametrize("bad, reason", [
    ("", "3 or 4 digits"), ("107", "position letter"), ("107E", "position letter"),
    ("707B", "group"), ("127B", "flying"), ("5053B", "direction"), ("525B", "4 digits"),
    ("5250B", "half twist"), ("6240D", "never 0"), ("1005B", "leading zero"), ("12345B", "3 or 4"),
])
def test_bad_numbers_say_why(bad, reason):
    with pytest.raises(ValueError, match=reason) as info:
        parse_dive(bad)
    assert "\n" not in str(info.value)


def test_bad_labels_are_refused():
    with pytest.raises(ValueError):
        dive_number(DiveLabels(3, 0, 0, 5, 0))
    with pytest.raises(ValueError):
        dive_number(DiveLabels(1, 1, 0, 5, 0, flying=True))


@pytest.mark.parametrize("number, text", [
    ("107B", "Forward 3½ Somersaults Pike"),
    ("105B", "Forward 2½ Somersaults Pike"),
    ("5253D", "Back 2½ Somersaults 1½ Twists Free"),
    ("5111D", "Forward Dive ½ Twist Free"),
    ("5132D", "Forward 1½ Somersaults 1 Twist Free"),
    ("626C", "Armstand Back 3 Somersaults Tuck"),
    ("6243D", "Armstand Back 2 Somersaults 1½ Twists Free"),
    ("612B", "Armstand Forward Somersault Pike"),
    ("611B", "Armstand Forward ½ Somersault Pike"),
    ("112C", "Forward Flying Somersault Tuck"),
    ("101A", "Forward Dive Straight"),
    ("300D", "Reverse 0 Somersaults Free"),
])
def test_describe(number, text):
    assert describe(number) == text


def test_label_names_match_the_heads():
    assert LABEL_NAMES["position"] == ["free", "pike", "tuck"]
    assert LABEL_NAMES["rotation_type"] == ["back", "forward", "inward", "reverse"]
    assert len(LABEL_NAMES["ss_no"]) == 10 and LABEL_NAMES["ss_no"][7] == "3½"
    assert len(LABEL_NAMES["tw_no"]) == 8 and LABEL_NAMES["tw_no"][3] == "1½"


@pytest.mark.parametrize("number, height, dd", [
    # Rows of the World Aquatics 2025 tables (Appendix 9 springboard, 11 platform).
    ("107B", "10m", 3.0), ("107B", "3m", 3.1), ("107B", "1m", 3.3), ("5253B", "10m", 3.2),
    ("5253B", "3m", 3.4), ("626C", "10m", 3.3), ("626C", "5m", 3.5), ("6243D", "7.5m", 3.1),
    ("101A", "1m", 1.4), ("1011C", "10m", 4.7),
])
def test_difficulty_from_the_table(number, height, dd):
    assert difficulty(number, height) == dd


def test_difficulty_heights_and_misses():
    assert difficulty("107b", 10) == difficulty("107B", "10 m") == 3.0
    assert difficulty("626C", "3m") is None  # armstand dives only exist on platform
    assert difficulty("300D", "10m") is None  # not a dive in the rules
    with pytest.raises(ValueError, match="height"):
        difficulty("107B", "2m")
    with pytest.raises(ValueError, match="dive number"):
        difficulty("10B", "3m")


def test_dd_entries():
    everything = dd_entries()
    assert len(everything) == 973
    per_height = {h: len(dd_entries(h)) for h in HEIGHTS}
    assert per_height == {"1m": 139, "3m": 182, "5m": 188, "7.5m": 205, "10m": 259}
    entry = next(e for e in dd_entries("10m") if e.dive == "407C")
    assert (entry.code, entry.position, entry.apparatus, entry.group) == ("407", "C", "platform", "Inward Group")
    # Every table entry parses and names itself the same way back.
    assert all(dive_number(parse_dive(e.dive)) == e.dive for e in everything)


def test_judges_rule_on_hand_examples():
    # 7 judges: drop 10.0, 9.5 (highest two) and 6.0, 7.0 (lowest two); keep 8.0 + 8.5 + 9.0.
    assert judged_execution([9.5, 8.0, 6.0, 9.0, 10.0, 7.0, 8.5]) == 25.5
    assert final_score([9.5, 8.0, 6.0, 9.0, 10.0, 7.0, 8.5], 3.2) == 81.6
    # 5 judges: drop 9.0 and 5.0; keep 7.0 + 7.5 + 8.0.
    assert judged_execution([7.0, 9.0, 5.0, 8.0, 7.5]) == 22.5
    assert final_score([7.0, 9.0, 5.0, 8.0, 7.5], 2.0) == 45.0
    # Synchro, 11 judges: execution diver 1 [6, 7, 8] keeps 7; diver 2 [8.5, 6.5, 7.5] keeps 7.5;
    # synchronisation [9, 8, 7, 8.5, 6] keeps 7 + 8 + 8.5; (7 + 7.5 + 23.5) × 0.6 = 22.8.
    marks = [6.0, 7.0, 8.0, 8.5, 6.5, 7.5, 9.0, 8.0, 7.0, 8.5, 6.0]
    assert judged_execution(marks) == pytest.approx(22.8)
    assert final_score(marks, 3.0) == 68.4
    with pytest.raises(ValueError, match="judges"):
        judged_execution([7.0] * 6)
    with pytest.raises(ValueError, match="0-10"):
        judged_execution([7.0] * 6 + [11.0])


def test_labels_agree_with_dive_numbers_on_every_mtl_aqa_dive(mtl_aqa):
    assert len(mtl_aqa) == 1412
    for key, rec in mtl_aqa.items():
        labels = DiveLabels(rec["position"], rec["armstand"], rec["rotation_type"], rec["ss_no"], rec["tw_no"])
        assert parse_dive(rec["dive_number"]) == labels, key
        assert dive_number(labels) == rec["dive_number"], key
        describe(rec["dive_number"])


def test_judges_rule_reproduces_1382_mtl_aqa_scores(mtl_aqa):
    """The middle 3 of 7 marks × DD gives the annotated final score for 1382 of the 1412 dives.

    The 30 others are annotation errors, not rule exceptions (each checked by hand from the marks):
    - 7 differ by at most 0.25 points (e.g. (13, 17): 57.8 annotated, 57.75 computed): rounding or a
      mistyped final score;
    - 2 fit the marks with another DD: (5, 63) 626C 69.3 = 21.0 × 3.3 (annotated DD 3.2) and (26, 39)
      305B 60.2 = 21.5 × 2.8 (annotated 3.0);
    - (1, 70) 626C: 18.15 = 5.5 × 3.3, far below the marks' 11.5 × 3.3 (a failed dive whose marks were
      transcribed from another dive);
    - 18 are exactly 0.5 or 1.0 judged points off (15 and 3): a transcribed mark differs from the
      scoreboard by half a point or a point (e.g. (5, 29) 107B: 48.0 annotated = 16.0 × 3.0, the
      marks give 17.0);
    - 2 fit no half-point sum with the annotated DD: (13, 4) 107B 75.5 (marks × 3.0 = 76.5) and
      (18, 43) 407C 78.5 (marks × 3.4 = 76.5).
    """
    matches = [key for key, rec in mtl_aqa.items()
               if abs(final_score(rec["judge_scores"], rec["difficulty"]) - rec["final_score"]) < 1e-6]
    assert len(matches) == 1382


def test_predicted_final_follows_the_rules_in_order_of_what_is_known():
    """Given DD beats expected DD beats the score head; execution is clipped to 0-30 first."""
    from aqa_cli.rules import EXECUTION_RANGE, HEADS, Verdict, predicted_final

    # A dive the heads are sure of: 107C (forward, 7 half somersaults, tuck, no twist, no armstand).
    sure = {"position": 2, "armstand": 0, "rotation_type": 1, "ss_no": 7, "tw_no": 0}
    sizes = {"position": 3, "armstand": 2, "rotation_type": 4, "ss_no": 10, "tw_no": 8}
    log_probs = {h: np.where(np.arange(sizes[h]) == sure[h], 0.0, -1e9) for h in HEADS}
    assert predicted_final(80.0, 25.0, log_probs, "3m", dd=3.1) == Verdict(77.5, 25.0, 3.1, "given")
    expected = predicted_final(80.0, 25.0, log_probs, "3m")
    assert expected.dd_from == "expected" and expected.difficulty == pytest.approx(2.8)  # 107C at 3 m
    assert expected.final_score == pytest.approx(70.0)
    assert predicted_final(80.0, 25.0, log_probs, None) == Verdict(80.0, 25.0, None, "")
    assert predicted_final(-3.4, 31.5, None, None, dd=2.0) == Verdict(2.0 * EXECUTION_RANGE[1], 30.0, 2.0, "given")
    assert predicted_final(-3.4, -1.0, None, None) == Verdict(0.0, 0.0, None, "")


def test_number_from_classes_is_none_for_a_missing_head_or_an_impossible_dive():
    from aqa_cli.rules import number_from_classes

    classes = {"position": 2, "armstand": 0, "rotation_type": 1, "ss_no": 7, "tw_no": 0}
    assert number_from_classes(classes, "3m") == "107C"
    assert number_from_classes({k: v for k, v in classes.items() if k != "tw_no"}, "3m") is None
    assert number_from_classes({**classes, "rotation_type": 7}, "3m") is None  # no such take-off direction
