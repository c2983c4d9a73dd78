"""Metrics against hand-computed values and against pycocoevalcap's numbers for the same captions."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from caption_cases import CASES
from scipy import stats

from aqa_cli.metrics import accuracy, bleu4, cider_d, relative_l2, score_report, spearman

# Corpus (BLEU-4, CIDEr) of each case in tests/caption_cases.py, printed by pycocoevalcap 1.2 (Bleu(4) and
# Cider scorers, on the space-separated tokens) in a scratch venv; regenerate with the commands at the
# top of caption_cases.py. "repeats" and "no_four_gram" have no matching 4-gram: pycocoevalcap's
# epsilons give ~8e-9 there, aqa's unsmoothed BLEU gives exactly 0 (documented in bleu4).
PYCOCOEVALCAP = {
    "commentary": (0.6113814616278517, 3.673840425121332),
    "short": (0.1353352831725702, 2.2114230729023014),
    "repeats": (7.577395670751963e-09, 1.0733498031582311),
    "no_four_gram": (7.686794036179868e-09, 2.567600520616547),
}


def split(case: dict[str, tuple[list[str], str]]) -> tuple[dict, dict]:
    """A caption case as (refs, hyps) token dicts."""
    refs = {i: [r.split() for r in rs] for i, (rs, _) in case.items()}
    hyps = {i: h.split() for i, (_, h) in case.items()}
    return refs, hyps


def corpus(*pairs: tuple[list[str], str]) -> tuple[dict, dict]:
    """(refs, hyps) from (reference captions, hypothesis) pairs, ids 0, 1, ..."""
    return split({str(k): pair for k, pair in enumerate(pairs)})


# --- Spearman -------------------------------------------------------------------------------------------

def test_spearman_with_ties_matches_hand_computed_value():
    # ranks [1, 2.5, 2.5, 4] vs [1, 3, 2, 4]: Σdx·dy = 4.5, Σdx² = 4.5, Σdy² = 5 -> r = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9), abs=1e-12)


def test_spearman_perfect_and_reversed_rankings():
    true = [55.0, 72.5, 80.1, 90.0, 31.2]
    assert spearman([2 * t + 7 for t in true], true) == pytest.approx(1.0)  # ranks only: scale/offset free
    assert spearman([-t for t in true], true) == pytest.approx(-1.0)


def test_spearman_equals_pearson_of_average_ranks_on_data_with_ties():
    rng = np.random.default_rng(0)
    pred, true = rng.integers(0, 6, 40), rng.integers(0, 6, 40)
    expected = np.corrcoef(stats.rankdata(pred), stats.rankdata(true))[0, 1]
    assert spearman(pred, true) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("pred, true", [
    ([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]),  # constant prediction
    ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]),  # constant truth
    ([1.0, math.nan, 3.0], [1.0, 2.0, 3.0]),  # diverged model
    ([1.0], [2.0]),  # a single sample
    ([], []),
])
def test_spearman_undefined_cases_return_nan_without_warning(pred, true):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(spearman(pred, true))


def test_spearman_rejects_different_lengths():
    with pytest.raises(ValueError, match="3 vs 2"):
        spearman([1, 2, 3], [1, 2])


# --- R-ℓ2 -----------------------------------------------------------------------------------------------

def test_relative_l2_hand_computed():
    # ((10/100)² + (10/100)²) / 2 · 100 = 1
    assert relative_l2([80, 50], [70, 60], lo=0, hi=100) == pytest.approx(1.0)
    # (0 + 0 + (2/10)²) / 3 · 100 = 4/3
    assert relative_l2([1, 2, 3], [1, 2, 5], lo=0, hi=10) == pytest.approx(4 / 3)


def test_relative_l2_defaults_to_the_range_of_the_true_scores():
    # range 5 - 1 = 4: (2/4)² / 3 · 100 = 25/3
    assert relative_l2([1, 2, 3], [1, 2, 5]) == pytest.approx(25 / 3)


def test_relative_l2_sees_an_offset_that_spearman_ignores():
    true = np.array([40.0, 60.0, 80.0, 100.0])
    assert spearman(true + 5, true) == pytest.approx(1.0)
    assert relative_l2(true + 5, true, lo=0, hi=100) == pytest.approx(100 * 0.05**2)
    assert relative_l2(true, true, lo=0, hi=100) == 0.0


def test_relative_l2_bad_range_and_empty_input():
    with pytest.raises(ValueError, match="hi > lo"):
        relative_l2([1, 2], [1, 2], lo=10, hi=10)
    with pytest.raises(ValueError, match="hi > lo"):
        relative_l2([1, 1], [3, 3])  # constant truth and no range given
    assert math.isnan(relative_l2([], [], lo=0, hi=1))


# --- accuracy and the score report ----------------------------------------------------------------------

def test_accuracy_on_class_ids_and_dive_numbers():
    assert accuracy([0, 1, 2, 1], [0, 1, 1, 1]) == pytest.approx(0.75)
    assert accuracy(["5253B", "107C", "305C"], ["5253B", "107B", "305C"]) == pytest.approx(2 / 3)
    assert accuracy(np.array([[1], [2]]), [1, 3]) == pytest.approx(0.5)
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])


def test_score_report():
    report = score_report([50, 80, 65], [70, 60, 65], lo=0, hi=100)  # ranks 1 3 2 vs 3 1 2
    assert report["n"] == 3
    assert report["spearman"] == pytest.approx(-1.0)
    assert report["relative_l2"] == pytest.approx(100 * (0.2**2 + 0.2**2 + 0) / 3)


# --- BLEU-4 ---------------------------------------------------------------------------------------------

def test_bleu4_exact_match_is_one():
    refs, hyps = corpus((["a forward three and a half pike"], "a forward three and a half pike"),
                        (["back dive tuck with a twist"], "back dive tuck with a twist"))
    assert bleu4(refs, hyps) == pytest.approx(1.0)


def test_bleu4_without_a_common_four_gram_is_zero():
    refs, hyps = split(CASES["no_four_gram"])
    assert bleu4(refs, hyps) == 0.0


def test_bleu4_hand_computed_with_clipping():
    # hyp "the cat sat on the mat" vs ref "the cat sat on a mat": p1 = 5/6 ("the" clipped to 1),
    # p2 = 3/5, p3 = 2/4, p4 = 1/3, equal lengths -> BLEU = (1/12)^(1/4)
    refs, hyps = corpus((["the cat sat on a mat"], "the cat sat on the mat"))
    assert bleu4(refs, hyps) == pytest.approx((1 / 12) ** 0.25, rel=1e-12)


def test_bleu4_brevity_penalty_and_closest_reference_length():
    refs, hyps = corpus((["the cat sat on the mat"], "the cat sat on"))
    assert bleu4(refs, hyps) == pytest.approx(math.exp(1 - 6 / 4))  # c = 4, r = 6
    # Lengths 3 and 5 are equally close to 4: the shorter one counts, so no penalty.
    refs, hyps = corpus((["a b c", "a b c d e"], "a b c d"))
    assert bleu4(refs, hyps) == pytest.approx(1.0)


def test_bleu4_is_corpus_level_not_a_mean_of_sentence_scores():
    # id 0 matches exactly (1+1+1+1 of 4,3,2,1); id 1 "w x y z" vs "w x y q" matches 3,2,1,0 of 4,3,2,1.
    # Corpus precisions 7/8, 5/6, 3/4, 1/2; the mean of sentence BLEUs would be (1 + 0) / 2.
    refs, hyps = corpus((["a b c d"], "a b c d"), (["w x y q"], "w x y z"))
    assert bleu4(refs, hyps) == pytest.approx((7 / 8 * 5 / 6 * 3 / 4 * 1 / 2) ** 0.25)


@pytest.mark.parametrize("name", sorted(PYCOCOEVALCAP))
def test_bleu4_matches_pycocoevalcap(name):
    expected = PYCOCOEVALCAP[name][0]
    got = bleu4(*split(CASES[name]))
    if expected < 1e-6:  # pycocoevalcap's smoothing epsilon only; aqa gives the unsmoothed 0
        assert got == 0.0
    else:
        assert got == pytest.approx(expected, rel=1e-8)


# --- CIDEr-D --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PYCOCOEVALCAP))
def test_cider_d_matches_pycocoevalcap(name):
    assert cider_d(*split(CASES[name])) == pytest.approx(PYCOCOEVALCAP[name][1], rel=1e-12)


def test_cider_d_hand_computed():
    # N = 2 ids and every reference n-gram occurs in one id only, so every weight is log 2 and the
    # per-n similarity is the plain cosine of counts. id 0 (3 words, exact): n = 1..3 give 1, n = 4 has no
    # 4-grams -> 10 · 3/4 = 7.5. id 1 "d e x" vs "d e f": unigrams 2/3, bigrams 1/2 -> 10 · (7/6)/4.
    refs, hyps = corpus((["a b c"], "a b c"), (["d e f"], "d e x"))
    assert cider_d(refs, hyps) == pytest.approx((7.5 + 10 * (7 / 6) / 4) / 2)


def test_cider_d_exact_match_of_long_sentences_is_ten():
    refs, hyps = corpus((["a forward three and a half pike"], "a forward three and a half pike"),
                        (["back dive tuck with a twist"], "back dive tuck with a twist"))
    assert cider_d(refs, hyps) == pytest.approx(10.0)


def test_cider_d_clips_repeated_hypothesis_words_not_reference_words():
    # Same n-gram sets either way round; only the role of the repeated word changes. Unigram cosine with
    # clipping: hyp 3w vs ref w -> min(3w, w)·w / (3w·w) = 1/3; hyp w vs ref 3w -> w·3w / (w·3w) = 1.
    # Length penalty exp(-2²/72) both ways; bigrams exist in one side only -> 0.
    penalty = math.exp(-4 / 72)
    repeated_hyp = corpus((["splash"], "splash splash splash"), (["rip"], "rip"))
    repeated_ref = corpus((["splash splash splash"], "splash"), (["rip"], "rip"))
    assert cider_d(*repeated_hyp) == pytest.approx((10 * penalty / 3 / 4 + 10 / 4) / 2)
    assert cider_d(*repeated_ref) == pytest.approx((10 * penalty / 4 + 10 / 4) / 2)


def test_cider_d_symmetric_under_relabelling_and_reordering():
    refs, hyps = split(CASES["commentary"])
    base = cider_d(refs, hyps)
    renamed = {f"x{k}": i for k, i in enumerate(reversed(list(refs)))}
    refs2 = {new: list(reversed(refs[old])) for new, old in renamed.items()}
    hyps2 = {new: hyps[old] for new, old in renamed.items()}
    assert cider_d(refs2, hyps2) == pytest.approx(base, rel=1e-12)
    # Mirror corpus: id a says X where Y is expected and id b the reverse; swapping which id is which
    # changes nothing.
    x, y = "a clean forward pike entry", "a messy back tuck entry"
    assert cider_d(*corpus(([x], y), ([y], x))) == pytest.approx(cider_d(*corpus(([y], x), ([x], y))))


def test_cider_d_gives_no_weight_to_ngrams_in_every_reference_and_needs_a_corpus():
    refs, hyps = corpus((["the pike dive"], "the"), (["the tuck dive"], "the"))
    assert cider_d(refs, hyps) == 0.0  # "the" occurs in both ids: idf log 2 - log 2 = 0
    refs, hyps = corpus((["a b c d"], "a b c d"))
    assert cider_d(refs, hyps) == 0.0  # one id: log N = 0


# --- input checks and import cost -----------------------------------------------------------------------

@pytest.mark.parametrize("metric", [bleu4, cider_d])
def test_caption_metrics_check_their_inputs(metric):
    with pytest.raises(ValueError, match="same ids"):
        metric({"a": [["x"]]}, {"b": ["x"]})
    with pytest.raises(ValueError, match="at least one reference"):
        metric({"a": []}, {"a": ["x"]})
    assert math.isnan(metric({}, {}))


def test_metrics_module_does_not_import_torch():
    code = "import sys, aqa_cli.metrics; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
