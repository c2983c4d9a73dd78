"""Diving rules: everything the rules decide, in one place, for scoring, evaluation and training.

Dive numbers ↔ MTL-AQA labels, readable names, the degree of difficulty (table and expected under the
heads' probabilities), the judges' rule, the execution's range, and the final score aqa reports for a
model's outputs (`predicted_final`: `aqa score` and `aqa eval` call the same function).

Dive numbers (World Aquatics Diving Rules 1.5):

    1–4 group (forward 1, back 2, reverse 3, inward 4), then 0 or 1 (1 = flying), then the number of
        half somersaults (one or two digits: 107 = forward 3½ somersaults, 1011 = forward 5½)
    5   twisting: take-off direction (1–4 as above), half somersaults, half twists (5253 = back 2½
        somersaults 1½ twists)
    6   armstand: direction (1–4), half somersaults, and half twists when it twists (626, 6243)
    then the position letter: A straight, B pike, C tuck, D free.

MTL-AQA labels (`DiveLabels`) code a dive as position 0 free (D) / 1 pike (B) / 2 tuck (C); armstand
0/1; rotation_type 0 back / 1 forward / 2 inward / 3 reverse (the take-off direction, for groups 5 and 6
the second digit); ss_no half somersaults; tw_no half twists.

**Straight (A).** MTL-AQA has no straight class; its 1412 dives contain none. aqa maps A onto class 0
(free): a free position is in practice a straight body with twists, so of the three classes it is the
closest in what a camera sees. `DiveLabels.straight` keeps the letter so that `dive_number` round-trips
("101A" → position 0, straight=True → "101A"); a model predicting class 0 gives "D".
**Flying** dives (second digit 1 in groups 1–4) keep the flag in `DiveLabels.flying`, which MTL-AQA
does not label either.

The degree of difficulty comes from the World Aquatics 2025 tables (Appendices 9 and 11), shipped as
`aqa_cli/data/wa_dd_2025.csv`. DD values change between rule editions: prefer the DD on the
scoresheet when there is one.

The judges' rule (Rules 7.5–7.10, 9): with 7 judges the 2 highest and 2 lowest marks are dropped, with
5 judges 1 and 1; the sum of the rest (`judged_execution`) times DD is the final score. Synchronised
panels of 11 are ordered [3 execution marks of diver 1, 3 of diver 2, 5 synchronisation marks]: the
highest and lowest of each group are dropped, and the 5 kept marks are summed and multiplied by 0.6
(= 3/5, so synchro scores are on the individual scale).
"""

from __future__ import annotations

import csv
import functools
import math
import re
from dataclasses import dataclass
from importlib import resources

POSITIONS = {"D": 0, "B": 1, "C": 2, "A": 0}  # letter → MTL-AQA position class (A: see docstring)
POSITION_NAMES = {"A": "Straight", "B": "Pike", "C": "Tuck", "D": "Free"}
# Group / direction digit ↔ MTL-AQA rotation_type (0 back, 1 forward, 2 inward, 3 reverse).
DIGIT_TO_ROTATION = {1: 1, 2: 0, 3: 3, 4: 2}
ROTATION_TO_DIGIT = {r: d for d, r in DIGIT_TO_ROTATION.items()}
DIRECTION_NAMES = ["Back", "Forward", "Inward", "Reverse"]  # indexed by rotation_type


def facing_and_sense(rotation_type: int) -> tuple[int, int]:
    """How a dive of `rotation_type` starts and turns: facing +1 chest to the water at take-off (forward,
    reverse), -1 to the board (back, inward); sense +1 forward rotation (forward, inward), -1 backward."""
    digit = ROTATION_TO_DIGIT[rotation_type]
    return (1 if digit in (1, 3) else -1), (1 if digit in (1, 4) else -1)

HEIGHTS = ("1m", "3m", "5m", "7.5m", "10m")


def _halves(n: int) -> str:
    """Half turns as a readable count: 1 → '½', 5 → '2½', 4 → '2'."""
    whole, half = divmod(n, 2)
    if not half:
        return str(whole)
    return f"{whole}½" if whole else "½"


# Class names of the MTL-AQA heads, indexed by class id (ss_no 0–9 and tw_no 0–7 half turns).
LABEL_NAMES: dict[str, list[str]] = {
    "position": ["free", "pike", "tuck"],
    "armstand": ["no", "yes"],
    "rotation_type": ["back", "forward", "inward", "reverse"],
    "ss_no": [_halves(n) for n in range(10)],
    "tw_no": [_halves(n) for n in range(8)],
}


@dataclass(frozen=True)
class DiveLabels:
    """A dive in MTL-AQA label codes (see the module docstring). `flying`/`straight` are not MTL-AQA
    classes: they only keep what the dive number says so numbers round-trip."""

    position: int
    armstand: int
    rotation_type: int
    ss_no: int
    tw_no: int
    flying: bool = False
    straight: bool = False


# The DiveLabels fields that MTL models predict, one classification head each, in this order everywhere
# (batch["labels"] columns, evaluation, scoring).
HEADS = ("position", "armstand", "rotation_type", "ss_no", "tw_no")

_NUMBER = re.compile(r"^(?P<digits>\d{3,4})(?P<letter>[A-D])$")


def parse_dive(number: str) -> DiveLabels:
    """'5253B' → DiveLabels(position=1, armstand=0, rotation_type=0, ss_no=5, tw_no=3).

    Case and surrounding spaces are ignored. Raises ValueError with a one-line reason for a number
    that the numbering rules do not allow.
    """
    text = str(number).strip().upper()
    m = _NUMBER.match(text)
    if not m:
        raise ValueError(f"dive number {number!r}: expected 3 or 4 digits and a position letter "
                         "A-D, e.g. 107B or 5253B")
    digits, letter = m["digits"], m["letter"]
    group = int(digits[0])
    position, straight = POSITIONS[letter], letter == "A"
    if group in (1, 2, 3, 4):
        if digits[1] not in "01":
            raise ValueError(f"dive number {number!r}: in groups 1-4 the second digit is 0 or 1 "
                             f"(flying), got {digits[1]}")
        if len(digits) == 4 and digits[2] == "0":
            raise ValueError(f"dive number {number!r}: half somersaults are written without a "
                             "leading zero")
        return DiveLabels(position, 0, DIGIT_TO_ROTATION[group], int(digits[2:]), 0,
                          flying=digits[1] == "1", straight=straight)
    if group in (5, 6):
        direction = int(digits[1])
        if direction not in DIGIT_TO_ROTATION:
            raise ValueError(f"dive number {number!r}: group {group} needs a direction digit 1-4 "
                             f"(forward, back, reverse, inward), got {direction}")
        twists = int(digits[3]) if len(digits) == 4 else 0
        if group == 5 and len(digits) != 4:
            raise ValueError(f"dive number {number!r}: twisting dives (group 5) have 4 digits")
        if len(digits) == 4 and twists == 0:
            raise ValueError(f"dive number {number!r}: a fourth digit counts half twists and is "
                             "never 0 (write the dive with 3 digits)" if group == 6 else
                             f"dive number {number!r}: a twisting dive needs at least a half twist")
        return DiveLabels(position, int(group == 6), DIGIT_TO_ROTATION[direction], int(digits[2]),
                          twists, straight=straight)
    raise ValueError(f"dive number {number!r}: the group (first digit) must be 1-6, got {group}")


def dive_number(labels: DiveLabels) -> str:
    """DiveLabels → dive number, e.g. '5253B'. Position class 0 gives 'D' unless `straight`."""
    p, a, r, s, t = labels.position, labels.armstand, labels.rotation_type, labels.ss_no, labels.tw_no
    if p not in (0, 1, 2) or a not in (0, 1) or r not in ROTATION_TO_DIGIT or s < 0 or t < 0:
        raise ValueError(f"invalid dive labels {labels}: position 0-2, armstand 0/1, rotation_type "
                         "0-3, ss_no and tw_no >= 0")
    letter = "A" if labels.straight and p == 0 else "DBC"[p]
    direction = ROTATION_TO_DIGIT[r]
    if a or t:
        if s > 9 or t > 9:
            raise ValueError(f"invalid dive labels {labels}: twisting and armstand dives have one "
                             "digit each for half somersaults and half twists")
        if labels.flying:
            raise ValueError(f"invalid dive labels {labels}: only groups 1-4 have flying dives")
        group = 6 if a else 5
        return f"{group}{direction}{s}{t if t else ''}{letter}"
    return f"{direction}{int(labels.flying)}{s}{letter}"


def describe(number: str | DiveLabels) -> str:
    """A readable name: '105B' → 'Forward 2½ Somersaults Pike', '626C' → 'Armstand Back 3 Somersaults
    Tuck', '5253D' → 'Back 2½ Somersaults 1½ Twists Free'.

    Half somersault counts that the rules do not use (a standing dive with 0, from label errors
    such as '300D' in the MTL-AQA annotations) read as '0 Somersaults'.
    """
    labels = number if isinstance(number, DiveLabels) else parse_dive(number)
    words = ["Armstand"] if labels.armstand else []
    words.append(DIRECTION_NAMES[labels.rotation_type])
    if labels.flying:
        words.append("Flying")
    s = labels.ss_no
    if s == 1 and not labels.armstand:
        words.append("Dive")  # half a somersault from a standing take-off is a plain dive
    elif s == 0 and labels.armstand:
        words.append("Dive")  # from a handstand, no rotation at all is the armstand dive
    elif s == 2:
        words.append("Somersault")
    else:
        words.append(f"{_halves(s)} Somersault{'' if s == 1 else 's'}")
    if labels.tw_no:
        words.append(f"{_halves(labels.tw_no)} Twist{'' if labels.tw_no <= 2 else 's'}")
    letter = "A" if labels.straight else "DBC"[labels.position]
    words.append(POSITION_NAMES[letter])
    return " ".join(words)


@dataclass(frozen=True)
class DDEntry:
    """One cell of the World Aquatics DD tables."""

    dive: str  # e.g. "107B"
    code: str  # the digits, e.g. "107"
    position: str  # A-D
    height: str  # one of HEIGHTS
    apparatus: str  # "springboard" or "platform"
    dd: float
    description: str  # as printed in the table (abbreviations included)
    group: str  # e.g. "Forward Group", "Twisting Group (Back)"


@functools.lru_cache(maxsize=1)
def _table() -> tuple[DDEntry, ...]:
    text = resources.files("aqa_cli").joinpath("data/wa_dd_2025.csv").read_text(encoding="utf-8")
    return tuple(DDEntry(dive=row["dive"], code=row["code"], position=row["position"],
                         height=row["height"], apparatus=row["apparatus"], dd=float(row["dd"]),
                         description=row["description"], group=row["group"])
                 for row in csv.DictReader(text.splitlines()))


@functools.lru_cache(maxsize=1)
def _index() -> dict[tuple[str, str], float]:
    return {(e.dive, e.height): e.dd for e in _table()}


def canonical_number(number: str) -> str:
    """A dive number as the tables write it: " 5156b" → "5156B"; ValueError as `parse_dive`."""
    return dive_number(parse_dive(number))


def normalize_height(height: str | float) -> str:
    """'10', '10 m', 10, 10.0, '10m' → '10m'; ValueError for a height without a DD table."""
    text = str(height).strip().lower().replace(" ", "").removesuffix("m")
    try:
        value = float(text)
    except ValueError:
        value = None
    for h in HEIGHTS:
        if value is not None and float(h[:-1]) == value:
            return h
    raise ValueError(f"height {height!r}: expected one of {', '.join(HEIGHTS)}")


def dd_entries(height: str | float | None = None) -> list[DDEntry]:
    """Every DD table row, or those of one height, in table order."""
    if height is None:
        return list(_table())
    h = normalize_height(height)
    return [e for e in _table() if e.height == h]


def difficulty(number: str, height: str | float) -> float | None:
    """DD of a dive at a height from the 2025 tables, or None when the table has no value for it.

    Raises ValueError for a malformed dive number or an unknown height.
    """
    canonical = dive_number(parse_dive(number))
    return _index().get((canonical, normalize_height(height)))


def table_difficulty(number: str | None, height: str | float | None) -> float | None:
    """`difficulty`, or None where it cannot be looked up: no number, no height, or a number or height
    the tables do not know (for predictions, where a miss is an answer rather than an error)."""
    if not number or not height:
        return None
    try:
        return difficulty(number, height)
    except ValueError:
        return None


def listed_heights(number: str | None) -> list[str]:
    """The heights whose DD table lists `number` (in HEIGHTS order; none for a malformed number)."""
    return [h for h in HEIGHTS if table_difficulty(number, h) is not None]


def known_dive(number: str, height: str | float | None = None) -> tuple[str, float]:
    """A dive the coach names (`--dive 5156B`): its canonical number ("5156b " → "5156B") and table DD at
    `height`. Without a height the DD is taken only where every height that lists the dive gives the
    same DD. Raises ValueError with a one-line reason (malformed, not listed at that height, or a height
    needed)."""
    canonical = canonical_number(number)
    listed = {h: difficulty(canonical, h) for h in listed_heights(canonical)}
    if not listed:
        raise ValueError(f"dive {canonical}: not in the World Aquatics DD tables at any height")
    if height is not None:
        h = normalize_height(height)
        if h not in listed:
            raise ValueError(f"dive {canonical}: not listed at {h} (listed at {', '.join(listed)})")
        return canonical, listed[h]
    if len(set(listed.values())) > 1:
        options = ", ".join(f"{dd} at {h}" for h, dd in listed.items())
        raise ValueError(f"dive {canonical}: give the height, its DD is {options}")
    return canonical, next(iter(listed.values()))


def number_at(labels: DiveLabels, height: str | float | None) -> str:
    """`dive_number(labels)`, read at a height: position class 0 (free or straight, see the module
    docstring) becomes A where the DD table lists the dive at `height` as straight and not as free.
    (No dive is listed both ways at one height in the 2025 tables, so this is never a guess.)
    Raises ValueError as `dive_number` does; an unknown or missing height leaves the number as is."""
    number = dive_number(labels)
    if labels.position != 0 or number.endswith("A") or height is None:
        return number
    try:
        h = normalize_height(height)
    except ValueError:
        return number
    straight = number[:-1] + "A"
    if (number, h) not in _index() and (straight, h) in _index():
        return straight
    return number


@functools.lru_cache(maxsize=None)
def _nameable(height: str) -> tuple[tuple[float, ...], tuple[tuple[int, ...], ...]]:
    """DDs and (position, armstand, rotation_type, ss_no, tw_no) labels of the dives the table lists at
    `height` that the five heads can name (not flying: no head says so; ss_no < 10, tw_no < 8)."""
    dds, labels = [], []
    for e in dd_entries(height):
        lab = parse_dive(e.dive)
        if not lab.flying and lab.ss_no < len(LABEL_NAMES["ss_no"]) and lab.tw_no < len(LABEL_NAMES["tw_no"]):
            dds.append(e.dd)
            labels.append(tuple(getattr(lab, h) for h in HEADS))
    return tuple(dds), tuple(labels)


def expected_difficulty(log_probs, height: str | float, min_mass: float = 0.5) -> float | None:
    """The expected DD of a predicted dive at `height`: each dive the table lists there weighted by its
    probability under the five heads' class distributions taken as independent, renormalised over
    those dives (a mix of heads that spells no listed dive gets no weight).

    log_probs: head name (see HEADS) → (K,) log-probabilities (a log_softmax of the head's logits).
    Beside the argmax dive's DD, this keeps the model's doubt: a dive read as 2 or 3 half twists at
    60/40 gets a DD between theirs instead of all of one. None when the listed dives hold less than
    `min_mass` of the probability (the heads read a dive not done at this height: an armstand off a
    springboard, or the wrong height given). Raises ValueError for a height without a DD table.
    """
    import numpy as np

    dds, labels = _nameable(normalize_height(height))
    if not dds:
        return None
    idx = np.asarray(labels)  # (D, 5)
    lp = sum(np.asarray(log_probs[h], dtype=np.float64)[idx[:, j]] for j, h in enumerate(HEADS))  # (D,)
    w = np.exp(lp)
    mass = w.sum()
    if mass == 0 or mass < min_mass:
        return None
    return float((w * np.asarray(dds)).sum() / mass)


def judged_execution(judge_scores) -> float:
    """Sum of the counted judges' marks (see the module docstring): 7 → middle 3; 5 → middle 3;
    11 (synchro: 3 + 3 execution, 5 synchronisation) → middle of each group, summed, × 0.6."""
    marks = [float(m) for m in judge_scores]
    bad = [m for m in marks if not 0.0 <= m <= 10.0]
    if bad:
        raise ValueError(f"judges' marks run 0-10, got {bad[0]}")
    if len(marks) == 7:
        return sum(sorted(marks)[2:-2])
    if len(marks) == 5:
        return sum(sorted(marks)[1:-1])
    if len(marks) == 11:
        kept = (sorted(marks[0:3])[1:-1] + sorted(marks[3:6])[1:-1] + sorted(marks[6:11])[1:-1])
        return sum(kept) * 0.6
    raise ValueError(f"panels have 5 or 7 judges (11 in synchro), got {len(marks)} marks")


def final_score(judge_scores, dd: float) -> float:
    """The dive's score: judged execution × DD, rounded to 2 decimals as scoreboards show it."""
    return round(judged_execution(judge_scores) * float(dd), 2)


EXECUTION_RANGE = (0.0, 30.0)  # execution = the three counted judges' marks, each 0-10


DD_RANGE = (0.1, 5.0)  # a DD a coach may give; the World Aquatics tables span 1.2-4.8


def parse_dd(dd: float | str) -> float:
    """A DD as a scoresheet gives it: 3.2, "3.2" or "3,2" (a decimal comma) → 3.2; ValueError outside
    DD_RANGE or for anything but a number."""
    if isinstance(dd, str):
        try:
            dd = float(dd.strip().replace(",", "."))
        except ValueError:
            raise ValueError(f"DD {dd!r}: expected a number such as 3.2 (or 3,2), the DD on the scoresheet") from None
    lo, hi = DD_RANGE
    if isinstance(dd, bool) or not isinstance(dd, (int, float)) or not (math.isfinite(dd) and lo <= dd <= hi):
        raise ValueError(f"DD {dd!r}: expected a number from {lo} to {hi}, the DD on the scoresheet")
    return float(dd)


def clip_execution(execution: float) -> float:
    """A predicted execution within what the rules allow (a regression head can overshoot)."""
    lo, hi = EXECUTION_RANGE
    return min(max(float(execution), lo), hi)


def number_from_classes(classes: dict[str, int], height: str | float | None) -> str | None:
    """The dive number the five heads' classes spell at `height` (`number_at`), or None when a head is
    missing or the classes spell no valid dive."""
    if any(h not in classes for h in HEADS):
        return None
    try:
        return number_at(DiveLabels(**{h: int(classes[h]) for h in HEADS}), height)
    except (ValueError, IndexError, KeyError):
        return None


@dataclass(frozen=True)
class Verdict:
    """The final score aqa reports for one dive, and where it came from.

    dd_from: "given" (the scoresheet's DD x execution), "expected" (the expected DD at the height x
    execution) or "" (the model's score head; `difficulty` None)."""

    final_score: float
    execution: float | None
    difficulty: float | None
    dd_from: str


def predicted_final(score_head: float, execution: float | None, log_probs: dict | None = None,
                    height: str | float | None = None, dd: float | None = None) -> Verdict:
    """The final score for a model's outputs, by the rules whenever the DD can be known.

    score_head: the model's score output; execution: its execution output (None without that head);
    log_probs: head name → (K,) log-probabilities of the five dive heads (None without them); height: a
    height the DD may rely on (given, or the only one the model trained at); dd: the scoresheet's DD.
    The given DD wins; else the expected DD at `height` (`expected_difficulty`); else the score head.
    Execution is clipped to EXECUTION_RANGE and the score head to at least 0 first.
    """
    score = max(float(score_head), 0.0)
    execution = clip_execution(execution) if execution is not None else None
    if execution is not None and dd is not None:
        return Verdict(dd * execution, execution, float(dd), "given")
    expected = None
    if execution is not None and height and log_probs is not None and set(log_probs) >= set(HEADS):
        try:
            expected = expected_difficulty(log_probs, height)
        except ValueError:  # a height the DD tables do not know
            expected = None
    if expected is not None:
        return Verdict(expected * execution, execution, expected, "expected")
    return Verdict(score, execution, None, "")


# How commentary speaks of a dive (SynDive's captions and aqa score's dive sentence use the same words).
SPOKEN_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPOKEN_POSITIONS = {"A": "straight", "B": "pike", "C": "tuck", "D": "free"}
SPOKEN_DIRECTIONS = ["back", "forward", "inward", "reverse"]


def spoken_halves(n: int, noun: str) -> str:
    """5, 'somersault' → 'two and a half somersaults'; 2 → 'one somersault'; 1 → 'half a somersault'."""
    whole, half = divmod(n, 2)
    if whole == 0:
        return f"half a {noun}"
    text = SPOKEN_NUMBERS[whole] if whole < len(SPOKEN_NUMBERS) else str(whole)
    if half:
        return f"{text} and a half {noun}s"
    return f"{text} {noun}{'s' if whole > 1 else ''}"


def spoken_dive(number: str) -> str:
    """'5253B' → 'back two and a half somersaults with one and a half twists in the pike position'."""
    labels = parse_dive(number)
    words = ["armstand"] if labels.armstand else []
    words.append(SPOKEN_DIRECTIONS[labels.rotation_type])
    if labels.ss_no == 1 and not labels.armstand:
        words.append("dive")
    elif labels.ss_no == 0:
        words.append("dive")
    else:
        words.append(spoken_halves(labels.ss_no, "somersault"))
    if labels.tw_no:
        words.append("with " + spoken_halves(labels.tw_no, "twist"))
    words.append(f"in the {SPOKEN_POSITIONS[number[-1]]} position")
    return " ".join(words)
