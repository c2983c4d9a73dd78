"""Hand-made caption sets for the BLEU-4 / CIDEr-D tests, and the script that scored them with pycocoevalcap.

The reference numbers hard-coded in tests/test_metrics.py (PYCOCOEVALCAP) were printed by running this file
with pycocoevalcap 1.2 (the MS-COCO caption evaluation code) in a scratch environment, not aqa's:

    python3 -m venv /tmp/cocoref && /tmp/cocoref/bin/pip install pycocoevalcap==1.2 numpy
    /tmp/cocoref/bin/python tests/caption_cases.py

Only its Bleu and Cider scorers are used, on already tokenized text (its Java tokenizer is not needed).
aqa does not depend on pycocoevalcap; this file needs nothing but it.

Each case maps id -> (reference captions, hypothesis caption), words separated by single spaces.
"""

from __future__ import annotations

CASES: dict[str, dict[str, tuple[list[str], str]]] = {
    # Several ids, two references each, partial overlaps: the general case.
    "commentary": {
        "d1": (["a forward two and a half somersaults in the pike position",
                "forward two and a half pike with a very clean entry"],
               "a forward two and a half somersaults pike with a clean entry"),
        "d2": (["back one and a half somersaults with two twists",
                "a back one and a half with two twists and a small splash"],
               "a back one and a half with one twist and a big splash"),
        "d3": (["inward three and a half tuck nice rip entry",
                "inward three and a half somersaults tuck rip entry"],
               "inward two and a half somersaults tuck rip entry"),
        "d4": (["reverse two and a half pike slightly over rotated",
                "a reverse two and a half somersaults pike over the vertical"],
               "reverse one and a half pike over rotated"),
    },
    # Hypotheses much shorter than the references: the brevity penalty.
    "short": {
        "s1": (["she enters the water with almost no splash at all"], "she enters the water"),
        "s2": (["he over rotates the entry and loses a lot of points"], "he over rotates"),
        "s3": (["a great dive from the ten metre platform today"], "a great dive"),
    },
    # Repeated words in the hypotheses: clipping of counts.
    "repeats": {
        "r1": (["the dive was good", "a good dive"], "good good good dive dive"),
        "r2": (["a poor entry with splash"], "splash splash splash entry"),
        "r3": (["clean entry no splash"], "clean clean entry entry"),
    },
    # Unigram and bigram overlap but no common 3- or 4-gram anywhere in the corpus.
    "no_four_gram": {
        "n1": (["the diver makes a clean entry"], "clean entry the makes diver a"),
        "n2": (["twists in the pike position"], "position pike the twists"),
    },
}


def pycocoevalcap_scores() -> dict[str, tuple[float, float]]:
    """case name -> (corpus BLEU-4, corpus CIDEr) as pycocoevalcap computes them."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    out = {}
    for name, case in CASES.items():
        gts = {i: refs for i, (refs, _) in case.items()}
        res = {i: [hyp] for i, (_, hyp) in case.items()}
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        cider, _ = Cider().compute_score(gts, res)
        out[name] = (float(bleu[3]), float(cider))
    return out


if __name__ == "__main__":
    for name, (bleu, cider) in pycocoevalcap_scores().items():
        print(f'    "{name}": ({bleu!r}, {cider!r}),')
