"""Evaluation metrics: score correlation and distance, classification accuracy, caption BLEU-4 and CIDEr-D.

Pure functions over numpy arrays and token lists (no torch), so `aqa eval` and the tests can call them on
plain Python data.

Conventions shared by every function here:
- inputs of different lengths are a programming error: `ValueError`;
- an empty input has nothing to measure and returns `nan` (a report shows "nan" rather than crashing);
- captions are lists of word tokens as `aqa_cli.text.tokenize` makes them, without `<sos>`/`<eos>`.

The caption metrics follow the MS-COCO caption evaluation code (pycocoevalcap 1.2, the implementation that
published captioning numbers, MTL-AQA's included, come from) on already tokenized text; the tests compare
them with values that package computed. The one deliberate difference is documented in `bleu4`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from scipy import stats

Tokens = Sequence[str]
NGram = tuple[str, ...]

MAX_N = 4  # BLEU-4 and CIDEr-D both use n-grams of length 1..4
CIDER_SIGMA = 6.0  # CIDEr-D's Gaussian length penalty, in words
CIDER_SCALE = 10.0  # CIDEr-D multiplies by 10 so that its range is comparable to CIDEr's


def _paired(pred, true) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D float arrays of equal length."""
    p = np.asarray(pred, dtype=float).reshape(-1)
    t = np.asarray(true, dtype=float).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length: {p.size} vs {t.size}")
    return p, t


def spearman(pred, true) -> float:
    """Spearman's rank correlation between predicted and true scores (shapes (N,) each).

    Ties get their average rank, as `scipy.stats.spearmanr` does (it is Pearson's r of the ranks).
    Undefined cases return `nan` instead of raising or warning: fewer than 2 samples, a constant input
    (all predictions equal, e.g. an untrained model; its ranks have no variance) or any non-finite value
    (a diverged model's NaN scores).
    """
    p, t = _paired(pred, true)
    if p.size < 2 or not (np.isfinite(p).all() and np.isfinite(t).all()):
        return math.nan
    if np.ptp(p) == 0 or np.ptp(t) == 0:
        return math.nan
    return float(stats.spearmanr(p, t).statistic)


def relative_l2(pred, true, lo: float | None = None, hi: float | None = None) -> float:
    """Relative L2 distance R-ℓ2 of CoRe (Yu et al., "Group-aware Contrastive Regression for Action
    Quality Assessment", ICCV 2021), in the ×100 units of the paper's tables.

        R-ℓ2 = 100 · (1/K) · Σ_k ( |s_k − ŝ_k| / (s_max − s_min) )²

    over K samples with true score s_k and predicted score ŝ_k (shapes (K,) each), where s_max and s_min
    are the highest and lowest score of the action: pass them as `hi` and `lo` (the dataset's score range).
    Left as None, they are the largest and smallest true score of the evaluated set, as CoRe's released
    evaluation code computes them. Unlike Spearman's correlation it sees a constant offset of all scores.
    """
    p, t = _paired(pred, true)
    if p.size == 0:
        return math.nan
    lo = float(t.min()) if lo is None else float(lo)
    hi = float(t.max()) if hi is None else float(hi)
    if not hi > lo:
        raise ValueError(f"the score range must have hi > lo, got lo={lo}, hi={hi}")
    return float(100.0 * np.mean(((p - t) / (hi - lo)) ** 2))


def accuracy(pred, true) -> float:
    """Fraction (0..1) of predictions equal to their labels; works for class ids and for strings such
    as dive numbers ("5253B"). Shapes (N,) each."""
    p = np.asarray(pred).reshape(-1)
    t = np.asarray(true).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length: {p.size} vs {t.size}")
    if p.size == 0:
        return math.nan
    return float(np.mean(p == t))


def fisher_z_mean(correlations) -> float:
    """The average of correlations through Fisher's z, as the Rhythmic Gymnastics papers average the
    four apparatus: tanh(mean(atanh(r))). ±1 gives ±1 (atanh is infinite); NaN in, NaN out; ValueError
    for |r| > 1."""
    r = np.asarray(correlations, dtype=float)
    if r.size == 0 or np.isnan(r).any():
        return math.nan
    if (np.abs(r) > 1).any():
        raise ValueError(f"correlations must lie in [-1, 1], got {r.tolist()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.tanh(np.mean(np.arctanh(r))))


def score_report(pred_scores, true_scores, lo: float | None = None, hi: float | None = None) -> dict:
    """The score-regression numbers `aqa eval` prints: `n`, `spearman`, `relative_l2` (×100, see above)."""
    p, t = _paired(pred_scores, true_scores)
    return {"n": int(p.size), "spearman": spearman(p, t), "relative_l2": relative_l2(p, t, lo, hi)}


def _ngrams(tokens: Tokens, n: int) -> Counter[NGram]:
    """Counts of the n-grams of one sentence."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check_captions(refs: Mapping[Hashable, Sequence[Tokens]], hyps: Mapping[Hashable, Tokens]) -> list:
    """The shared ids of refs and hyps, after checking that they match and every id has a reference."""
    if set(refs) != set(hyps):
        missing = sorted(map(str, set(refs) ^ set(hyps)))[:5]
        raise ValueError(f"refs and hyps must have the same ids; differing: {', '.join(missing)}")
    empty = [str(i) for i in refs if len(refs[i]) == 0]
    if empty:
        raise ValueError(f"every id needs at least one reference caption; none for: {', '.join(empty[:5])}")
    return list(refs)


def bleu4(refs: Mapping[Hashable, Sequence[Tokens]], hyps: Mapping[Hashable, Tokens]) -> float:
    """Corpus BLEU-4 (Papineni et al., ACL 2002) of one hypothesis per id against its references.

    `refs[id]` is a list of tokenized reference captions, `hyps[id]` one tokenized caption. As in
    pycocoevalcap: for n = 1..4 the clipped n-gram matches (each hypothesis n-gram counts at most as often
    as it occurs in any single reference) and the hypothesis n-gram totals are summed over the corpus,
    p_n = matches_n / total_n; the brevity penalty uses, per id, the reference length closest to the
    hypothesis length (ties go to the shorter reference), summed to r, against the summed hypothesis
    length c: BP = exp(1 − r/c) if c < r else 1. BLEU-4 = BP · (p1·p2·p3·p4)^(1/4), in 0..1.

    No smoothing: a corpus without a single matching 4-gram scores exactly 0. (pycocoevalcap adds 1e-15
    to every match count and 1e-9 to every total, which turns that 0 into a tiny positive number (8e-9 on
    the tests' cases) and changes other scores by less than 1e-9 relative.)
    """
    ids = _check_captions(refs, hyps)
    if not ids:
        return math.nan
    matches = [0] * MAX_N
    totals = [0] * MAX_N
    hyp_len = ref_len = 0
    for i in ids:
        hyp, candidates = list(hyps[i]), [list(r) for r in refs[i]]
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in candidates)[1]
        for n in range(1, MAX_N + 1):
            counts = _ngrams(hyp, n)
            most = Counter()  # per n-gram, its largest count in any one reference
            for r in candidates:
                most |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, most[g]) for g, c in counts.items())
            totals[n - 1] += sum(counts.values())
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / MAX_N
    brevity = math.exp(1.0 - ref_len / hyp_len) if hyp_len < ref_len else 1.0
    return brevity * math.exp(log_precision)


def cider_d(refs: Mapping[Hashable, Sequence[Tokens]], hyps: Mapping[Hashable, Tokens]) -> float:
    """Corpus CIDEr-D (Vedantam et al., CVPR 2015) as pycocoevalcap's CIDEr scorer computes it.

    Inputs as for `bleu4`. Each sentence becomes, for n = 1..4, a tf-idf vector over its n-grams:
    weight = count · (log N − log max(1, df)), with N the number of ids and df the number of ids whose
    references contain the n-gram (document frequencies come from the references of the evaluated set
    alone, so a score depends on the whole set). Per id and n, the hypothesis is compared with each
    reference by Σ_g min(h_g, r_g) · r_g / (‖h‖ ‖r‖) (a cosine in which the hypothesis's weights are
    clipped by the reference's, so repeating a word does not pay), times the length penalty
    exp(−(len_h − len_r)² / (2 · 6²)) in words; a zero vector (e.g. no 4-grams in a 3-word sentence)
    contributes 0. The id's score is 10 × the mean over n and references; the result is the mean over ids.

    With a single id log N = 0, every weight is 0 and the score is 0: CIDEr-D needs a corpus.
    """
    ids = _check_captions(refs, hyps)
    if not ids:
        return math.nan
    # grams[n-1] = n-gram counts of one sentence
    ref_grams = {i: [[_ngrams(list(r), n) for n in range(1, MAX_N + 1)] for r in refs[i]] for i in ids}
    df: Counter[NGram] = Counter()
    for i in ids:
        df.update({g for sentence in ref_grams[i] for counts in sentence for g in counts})
    log_n = math.log(len(ids))

    def tfidf(counts: Counter[NGram]) -> tuple[dict[NGram, float], float]:
        vec = {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in counts.items()}
        return vec, math.sqrt(sum(w * w for w in vec.values()))

    scores = []
    for i in ids:
        hyp = list(hyps[i])
        hyp_vecs = [tfidf(_ngrams(hyp, n)) for n in range(1, MAX_N + 1)]
        total = 0.0
        for r, grams in zip(refs[i], ref_grams[i]):
            penalty = math.exp(-((len(hyp) - len(r)) ** 2) / (2 * CIDER_SIGMA**2))
            for (h_vec, h_norm), counts in zip(hyp_vecs, grams):
                r_vec, r_norm = tfidf(counts)
                if h_norm == 0 or r_norm == 0:
                    continue
                dot = sum(min(w, r_vec.get(g, 0.0)) * r_vec.get(g, 0.0) for g, w in h_vec.items())
                total += penalty * dot / (h_norm * r_norm)
        scores.append(CIDER_SCALE * total / (MAX_N * len(refs[i])))
    return float(np.mean(scores))
