"""SynDive commentary: one to three sentences about a dive, from its number, height and hidden faults.

Sentences pick their wording at random (from the dive's own RNG) among several phrasings, and speak
about what the faults make visible: the height and distance from the board, the tightness of the
tuck or pike, the legs, the twist, going over or short on the entry, a rip entry or a big splash.
`commentary(...)` returns the text tokenised the way the commentary vocabulary expects
(`aqa_cli.text.tokenize`, space-separated).
"""

from __future__ import annotations

import numpy as np

from aqa_cli import rules
from aqa_cli.text import tokenize

def _opening(rng: np.random.Generator, number: str, height: str) -> str:
    where = f"the {height[:-1]} metre {'platform' if height not in ('1m', '3m') else 'springboard'}"
    phrase = rules.spoken_dive(number)
    article = "an" if phrase[0] in "aeiou" else "a"
    return str(rng.choice([
        f"this is {article} {phrase} from {where}",
        f"here comes the {phrase}",
        f"{article} {phrase} off {where}",
        f"now the {phrase}",
    ]))


def _remarks(rng: np.random.Generator, number: str, faults: dict) -> list[tuple[float, str]]:
    """(salience, sentence) for every fault or strength worth a word; higher salience is said first."""
    pick = lambda *options: str(rng.choice(options))
    out: list[tuple[float, str]] = []
    rot, low, dist = faults["rotation_error_deg"], faults["height_loss"], faults["distance_m"]
    if rot > 30:
        out.append((rot / 10, pick("way over on the entry", "far too much rotation and she goes well past vertical")))
    elif rot > 12:
        out.append((rot / 10, pick("she went over on the entry", "just a little bit over on the entry")))
    elif rot < -30:
        out.append((-rot / 10, pick("badly short on the entry", "nowhere near enough rotation, she lands flat")))
    elif rot < -12:
        out.append((-rot / 10, pick("she came up short on the entry", "a touch short on that entry")))
    if faults["splash_m"] < 0.15:
        out.append((1.5, pick("a rip entry with hardly any splash", "beautiful entry, no splash at all",
                              "she ripped that entry")))
    elif faults["splash_m"] > 0.6:
        out.append((faults["splash_m"] * 2, pick("a big splash on the entry", "lots of water on that one",
                                                 "that entry threw up a big splash")))
    if low > 0.12:
        out.append((low * 10, pick("not much height off the board", "she did not get the height she needed")))
    elif low < 0.03:
        out.append((0.8, pick("great height off the board", "lovely height on the take-off")))
    if dist < -0.4:
        out.append((-dist * 4, pick("very close to the board there", "that was dangerously close to the board")))
    elif dist > 0.5:
        out.append((dist * 3, pick("a long way out from the board", "she travelled too far out")))
    if number[-1] == "C":
        if faults["loose"] > 0.35:
            out.append((faults["loose"] * 4, pick("the tuck was a little loose", "she opened the tuck early")))
        elif faults["loose"] < 0.08:
            out.append((0.9, pick("a nice tight tuck", "really tight in the tuck")))
    if number[-1] == "B":
        if faults["loose"] > 0.35:
            out.append((faults["loose"] * 4, pick("the pike was not very tight", "a loose pike position")))
        elif faults["knee_bend_deg"] > 15:
            out.append((faults["knee_bend_deg"] / 8, pick("bent knees in the pike", "the knees were bent")))
        elif faults["loose"] < 0.08:
            out.append((0.9, pick("a lovely tight pike", "very compact in the pike")))
    if number[-1] not in "B" and faults["knee_bend_deg"] > 18:
        out.append((faults["knee_bend_deg"] / 8, pick("the knees were bent", "she did not keep her legs straight")))
    if faults["legs_apart_deg"] > 12:
        out.append((faults["legs_apart_deg"] / 6, pick("her legs came apart", "the legs split apart in the air")))
    tw = faults["twist_error_deg"]
    if tw < -25:
        out.append((-tw / 12, pick("she was short on the twist", "the twist was not quite finished")))
    elif tw > 25:
        out.append((tw / 12, pick("she over-twisted that one", "a little too much twist")))
    return out


def commentary(rng: np.random.Generator, number: str, height: str, faults: dict) -> str:
    """One to three sentences about the dive, tokenised and joined by spaces."""
    remarks = sorted(_remarks(rng, number, faults), key=lambda r: -r[0])
    sentences = []
    if rng.random() < 0.7 or not remarks:
        sentences.append(_opening(rng, number, height))
    sentences += [s for _, s in remarks[: 3 - len(sentences)]]
    if rng.random() < 0.4 and len(sentences) > 1:
        sentences = sentences[:-1]
    return " ".join(tokenize(". ".join(sentences)))
