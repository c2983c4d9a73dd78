"""Scoring: weights → a `Scorer`; a video → a `ScoreResult`; many videos → results in input order.

    video --video.read_even(n = clips × clip_len, size = resize)--> uint8 (n, H, W, 3)
          --transforms.clips_from_frames(crop, mean, std)--> float (N, 3, clip_len, crop, crop)
          --model (one video per forward: its N clips are the batch)--> score, execution, 5 class
            distributions, commentary ids --> ScoreResult

Every preprocessing value comes from the checkpoint's `Preprocess`, never from constants here.

**Scores.** For a model with execution and dive heads the final score follows the rules, DD × execution,
whenever the DD can be known: the DD the coach gives (`dd=`), else the table DD of the dive the coach
names (`dive=`, whose labels are then reported in place of the heads' reading), else the expected
table DD of the dive at the height (`rules.expected_difficulty`: the World Aquatics DDs weighted by the
five heads' probabilities), where the height is given (`height=`) or the checkpoint was trained at one
height.
Otherwise `final_score` is the model's score head (what it was trained to predict: it needs no
height) and `difficulty` the table DD of the predicted dive number at the checkpoint's most common
height (`data.height`, or the most common key of `data.heights`, a {height: count} dict; else "3m").
On SynDive the expected DD × execution ranked the scores better than the score head (README).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqa_cli import rules
from aqa_cli.checkpoint import Checkpoint
from aqa_cli.errors import UsageError, WeightsError
from aqa_cli.kinetics import DiveCheck, FeatureInput

# The public record: JSON keys = CSV columns, in this order (see writers.py for the value formats).
# Columns are only ever added at the end (a CSV with the first 14, written before score_source and the
# probabilities, is upgraded when resumed: writers.ResumableCsv).
FIELDS = ("video", "final_score", "execution", "difficulty", "dive_number", "description", "position",
          "armstand", "rotation_type", "ss_no", "tw_no", "commentary", "weights", "error",
          "score_source", *(f"p_{head}" for head in rules.HEADS), "looks_like_dive", "warning", "window_start",
          "window_end", "window_from", "board_side", "height", "height_from", "zoom", "framing")
# Where the final score came from, by `dd_from` (see rules.predicted_final).
SCORE_SOURCES = {"given": "given DD", "dive": "given dive", "expected": "expected DD", "table": "score head",
                 "": "score head"}
# The locator finds take-off → spray gone; the models were trained on SynDive clips that also show the
# end of the approach and the water settling: the median of each, as a fraction of the locator's window,
# over 400 SynDive 3 dives of every height (0.16 before: 5-95 % 0.11-0.25; 0.13 after: 0.01-0.23). A
# located window is widened by these before it is scored, to look like what the model learned from.
FRAMING = (0.16, 0.13)
RELOCATE = 1.0  # s: a reframed dive is located again in its window and this much either side
# s: a dive the locator finds starting earlier is taken as cut. SynDive clips show 0.5-0.8 s before the
# take-off (the examples are found at 0.55-0.76 s); the second halves of the examples are found at 0.05-0.15 s.
CUT_START = 0.3
WINDOW_SOURCES = ("given", "located", "whole file")  # ScoreResult.window_from: how the span scored was chosen
HEIGHT_SOURCES = ("given", "weights", "predicted")  # ScoreResult.height_from
SIDES = ("left", "right")  # ScoreResult.board_side (the view model's classes)
FRAMINGS = ("as filmed", "reframed")  # ScoreResult.framing: left as decoded, or cropped to the framer's boxes
DEFAULT_HEIGHT = "3m"
MAX_CLIPS = 64
SYNTHETIC_NOTE = "demo weights trained on SynDive synthetic renderings: not calibrated for real footage"


@dataclass
class ScoreResult:
    """One scored video. The fields in `FIELDS` are the stable output record; `probabilities`,
    `raw_commentary` and `timings` are kept for the panel, reports and `-v`, never written to JSON or CSV.

    position / rotation_type are class names ("pike", "forward"); armstand a bool; ss_no / tw_no
    counts of half somersaults / half twists. Everything but `video` and `weights` is None when
    `error` is set (or when the model has no such head).
    """

    video: str
    final_score: float | None = None
    execution: float | None = None
    difficulty: float | None = None
    dive_number: str | None = None
    description: str | None = None
    position: str | None = None
    armstand: bool | None = None
    rotation_type: str | None = None
    ss_no: int | None = None
    tw_no: int | None = None
    commentary: str | None = None
    weights: str | None = None
    error: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)  # head → probability of its prediction
    raw_commentary: str | None = None  # the captioner's own words (BLEU and CIDEr are measured on these)
    looks_like_dive: float | None = None  # Kinetics I3D: probability of its diving classes (DiveCheck)
    warning: str | None = None  # scored, but doubtful: e.g. Kinetics sees something else
    kinetics_top: list[tuple[str, float]] = field(default_factory=list)  # what Kinetics sees, best first
    dd_from: str = ""  # where `difficulty` came from: "given", "dive", "expected" or "table" (module docstring)
    window_start: float | None = None  # the span scored, s after the video's start (None: the whole file)
    window_end: float | None = None
    window_from: str | None = None  # WINDOW_SOURCES: "given" (start/end), "located" or "whole file"
    board_side: str | None = None  # "left" or "right" (then the clips were mirrored), by the view model
    height: str | None = None  # the height the DD was read at (None: not known, the score head's final)
    height_from: str | None = None  # HEIGHT_SOURCES: "given", "weights" (trained at one) or "predicted"
    zoom: float | None = None  # the framer's median zoom (1 / box height); None: no framer ran
    framing: str | None = None  # FRAMINGS: "reframed" when zoom >= reframe.MIN_ZOOM (each frame cropped)
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds (decode, model)
    dive_of: tuple[int, int] | None = None  # (k, n): the k-th of the n dives found in the video (--all-dives)

    @property
    def score_source(self) -> str | None:
        """How the final score was made: "given DD", "given dive" (its table DD) or "expected DD" (x
        execution, the rules) or "score head" (the model's own score); None without a score."""
        return SCORE_SOURCES.get(self.dd_from, "score head") if self.final_score is not None else None

    def record(self) -> dict[str, Any]:
        """The public fields only, in `FIELDS` order: p_<head> is the probability of the head's class."""
        out = {name: getattr(self, name) for name in FIELDS if not name.startswith("p_")}
        out.update({f"p_{head}": self.probabilities.get(head) for head in rules.HEADS})
        return {name: out[name] for name in FIELDS}


@dataclass
class Prepared:
    """One video read for the model (`Scorer.read`): clips float (N, 3, T, H, W), the dive check's clip
    (or None), the span scored (start, end) s (None: the whole file), how it was chosen, a warning and
    the framer's zoom (None: no framer ran; reframed when >= reframe.MIN_ZOOM)."""

    clips: Any
    check: Any = None
    window: tuple[float, float] | None = None
    how: str = "whole file"
    warning: str | None = None
    zoom: float | None = None


class Scorer:
    """A loaded model with everything needed to score videos: preprocessing, vocabulary, labels."""

    def __init__(self, checkpoint: Checkpoint, path: Path, device: str = "auto", name: str | None = None):
        from aqa_cli.device import resolve_device
        from aqa_cli.rules import LABEL_NAMES
        from aqa_cli.text import Vocabulary

        self.device = resolve_device(device)
        self.path = path
        self.name = name or path.stem
        self.preprocess = checkpoint.preprocess
        self.data = checkpoint.data
        self.metrics = checkpoint.metrics
        self.synthetic = checkpoint.synthetic
        self.label_names = {**LABEL_NAMES, **checkpoint.label_maps}
        self.vocab = Vocabulary(checkpoint.vocab) if checkpoint.vocab else None
        self.model = checkpoint.build_model().to(self.device)
        # A model on segment features (S4AQA, regress) reads a video through the Kinetics I3D they came from.
        self.features = FeatureInput(checkpoint, self.device) if checkpoint.on_features else None
        self.captions = bool(self.vocab) and getattr(self.model, "captioner", None) is not None
        self.default_height = default_height(self.data)
        self.one_height = one_height(self.data)
        self.dive_check: DiveCheck | None = None  # set by load_model when the Kinetics I3D is imported
        self.locator = None  # a locate.DiveLocator, set by load_model: the dive is found before it is scored
        self.view = None  # a view.ViewReader, set by load_model: board side (mirrored to the left) and height
        self.framer = None  # a reframe.Framer, set by load_model: a diver filmed wider is cropped to its box
        self.progress = None  # called with the seconds the locator has read of the video (a long one's wait)
        self._sha256: dict[str, str] | None = None

    def settings(self, height: str | None = None, dd: float | None = None, clips: int | None = None,
                 dive: str | None = None) -> dict:
        """What a result depends on besides the video: the weights' bytes and the options (resume keys)."""
        from aqa_cli.weights import file_sha256

        if self._sha256 is None:  # the helpers' files too: other locator or view weights, other results
            helpers = {"locator": self.locator, "view": self.view, "framer": self.framer}
            self._sha256 = {"weights_sha256": file_sha256(self.path),
                            **{f"{k}_sha256": file_sha256(h.path) for k, h in helpers.items() if h is not None}}
        return {**self._sha256, **dict(zip(("height", "dd", "clips"), check_options(height, dd, clips))),
                "dive_check": self.dive_check is not None, **({"dive": dive} if dive else {})}

    def prepare(self, path: str | Path, clips: int | None = None, window: tuple[float, float] | None = None,
                problems: list[str] | None = None):
        """Decode and transform one video, or its `window` (start, end) s: float (N, 3, clip_len, crop,
        crop) on the CPU (thread-safe). Decoding problems that still leave frames to score (damaged
        data, an early end) are appended to `problems` when given, else warned."""
        return self._prepare(path, clips, window, problems)[0]

    def _prepare(self, path: str | Path, clips: int | None = None, window: tuple[float, float] | None = None,
                 problems: list[str] | None = None, hold_end: bool = False) -> tuple[Any, float | None]:
        """`prepare`'s clips and the framer's zoom (None without a framer): a picture framed wider than
        the models learned is decoded again, larger, and each frame cropped to its box (reframe.py).
        hold_end: a window running past the file's end holds its last frame (`video.read_even`)."""
        from aqa_cli.transforms import clips_from_frames
        from aqa_cli.video import read_even

        if self.features is not None:
            return self.features.prepare(path, window), None
        p = self.preprocess
        n_clips = clips or p.clips
        start, end = window or (None, None)
        read = dict(n=n_clips * p.clip_len, clip_len=p.clip_len, start=start, end=end, hold_end=hold_end)
        frames = read_even(path, size=tuple(p.resize), on_problem=problems.append if problems is not None else None,
                           **read)
        zoom = None
        if self.framer is not None:
            from aqa_cli.reframe import crop, decode_size

            # Every 3rd frame decides (a third of the framer's cost on footage framed as the models learned);
            # only a picture that is wider gets a box for every frame.
            framing = self.framer.frame(frames[::3])
            if framing.needed:
                framing = self.framer.frame(frames)
            zoom = framing.zoom
            if framing.needed:  # the same frames again, larger (their problems were reported above)
                large = read_even(path, size=decode_size(framing, tuple(p.resize)), on_problem=lambda _: None, **read)
                frames = crop(large, framing, tuple(p.resize))
        return clips_from_frames(frames, n_clips, p.clip_len, p.crop, p.mean, p.std), zoom

    def prepare_check(self, path: str | Path, window: tuple[float, float] | None = None):
        """The dive check's input, or None without a dive check (thread-safe; see DiveCheck)."""
        return self.dive_check.prepare(path, window) if self.dive_check else None

    def read(self, path: str | Path, clips: int | None = None, window: tuple[float, float] | None = None,
             dives: list | None = None) -> Prepared:
        """Everything `predict` needs from one video (thread-safe): the span to score (`window`, else the
        best of `dives` (locate.DiveWindow, e.g. one of them: `--all-dives`), else of the dives the locator
        finds, else the whole file), its clips and the dive check's clip."""
        how, warning = ("given", None) if window else ("whole file", None)
        if window and window[1] == float("inf"):  # from a start to the end of the file
            from aqa_cli.video import probe

            window = (window[0], probe(path).duration)
        if window is None and dives is None and self.locator is not None:
            from aqa_cli.locate import find_dives

            dives = find_dives(path, self.locator, progress=self.progress)
        if window is None and dives is not None and not dives:
            warning = "the dive locator found no dive: scored the whole file"
        best = None
        if window is None and dives:
            best = max(dives, key=lambda d: d.confidence * (d.end - d.start))
            window, how = widen(best), "located"
            if len(dives) > 1:
                warning = (f"{len(dives)} dives found; scored the one at {best.start:.1f}-{best.end:.1f} s "
                           "(--all-dives scores each; --start/--end another)")
            elif best.start < CUT_START:
                warning = "the dive found begins with the recording: its take-off may be cut off"
        problems: list[str] = []
        # A located window widened past the file's end (FRAMING) holds the last frame: the dive is read the
        # same whether the recording stops at the splash or goes on filming still water.
        clips_, zoom = self._prepare(path, clips, window, problems, hold_end=how == "located")
        if best is not None and zoom is not None and self._reframed(zoom):
            # The locator read a small diver: look again at the dive's surroundings cropped to the diver,
            # so the span scored is the one the same dive filmed closer would give.
            again = self._relocate(path, window, zoom)
            if again is not None and widen(again) != window:
                window = widen(again)
                clips_, zoom = self._prepare(path, clips, window, [], hold_end=True)
        warnings = [w for w in (warning, *(m.removeprefix(f"{path}: ") for m in problems)) if w]
        return Prepared(clips_, self.prepare_check(path, window), window, how, "; ".join(warnings) or None, zoom)

    @staticmethod
    def _reframed(zoom: float) -> bool:
        from aqa_cli.reframe import MIN_ZOOM

        return zoom >= MIN_ZOOM

    def _relocate(self, path: str | Path, window: tuple[float, float], zoom: float):
        """The dive found in `window` (and RELOCATE s either side) once its frames are cropped to the
        framer's boxes: the best locate.DiveWindow, or None when none is found there."""
        import numpy as np

        from aqa_cli.locate import span_probability, windows
        from aqa_cli.reframe import crop
        from aqa_cli.video import probe, read_even

        cfg = self.locator.config
        start, end = max(0.0, window[0] - RELOCATE), min(window[1] + RELOCATE, probe(path).duration)
        n = max(8, round((end - start) * cfg.fps))
        size = tuple(cfg.size)
        frames = read_even(path, n=n, size=(round(size[0] * zoom), round(size[1] * zoom)), clip_len=1, start=start,
                           end=end, on_problem=lambda _: None)
        frames = crop(frames, self.framer.frame(frames), size)
        times = start + (np.arange(n) + 0.5) * (end - start) / n
        found = windows(times, span_probability(frames, self.locator), cfg)
        return max(found, key=lambda d: d.confidence * (d.end - d.start)) if found else None

    def predict(self, video: str, prepared, *, height: str | None = None, dd: float | None = None,
                dive: str | None = None, check=None) -> ScoreResult:
        """Run the model on a `read` video (or on bare clips (N, 3, T, H, W) from `prepare`, with the dive
        check on `check` from `prepare_check`) and turn its outputs into a ScoreResult. `dive` (a number
        `check_dive` accepts) is the dive the coach names: its labels are reported, its table DD scores
        it unless `dd` is given."""
        import torch

        if not isinstance(prepared, Prepared):
            prepared = Prepared(prepared, check)
        # bf16 autocast only on CUDA: on CPUs without bf16 units it is ~100x slower than fp32.
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        view = self.view.read(prepared.clips) if self.view is not None and self.features is None else None
        with torch.inference_mode(), autocast:
            if self.features is not None:  # on I3D features: score (mtl-features: + execution, dive heads)
                x, lengths = self.features(prepared.clips)
                out = self.model(x.to(self.device), lengths.to(self.device))
            else:
                from aqa_cli.view import board_left

                clips = board_left(prepared.clips, view) if view else prepared.clips  # as if the board were left
                out = self.model.predict(clips.unsqueeze(0).to(self.device))  # one backbone pass
        ids = out["caption"][0].tolist() if self.captions else None
        result = ScoreResult(video=video, weights=self.name, warning=prepared.warning, window_from=prepared.how)
        if prepared.window:
            result.window_start, result.window_end = (round(t, 2) for t in prepared.window)
        score = float(out["score"][0])
        execution = float(out["execution"][0]) if "execution" in out else None
        log_probs = {head: torch.log_softmax(logits[0].float(), dim=0).cpu().numpy()
                     for head, logits in (out.get("logits") or {}).items()}
        result.board_side = view.board_side if view else None
        if prepared.zoom is not None:
            result.zoom = round(prepared.zoom, 2)
            result.framing = FRAMINGS[self._reframed(prepared.zoom)]
        known_height, result.height_from = (height, "given") if height else (self.one_height, "weights") \
            if self.one_height else (view.height, "predicted") if view else (None, None)
        result.height = known_height  # a height the rules' DD can rely on
        table_height = known_height or self.default_height
        dive_dd = None
        if dive is not None:
            number, dive_dd = check_dive(dive, height or self.one_height, dd)  # as the command checked it
            self._set_classes(result, log_probs, rules.parse_dive(number))
            result.dive_number = number
        else:
            labels = self._set_classes(result, log_probs)
            result.dive_number = rules.number_from_classes(labels, table_height)
        result.description = rules.describe(result.dive_number) if result.dive_number else None
        table_dd = dive_dd or rules.table_difficulty(result.dive_number, table_height)
        if execution is None and table_dd:
            execution = score / table_dd  # a model without an execution head: back it out of the table DD
        verdict = rules.predicted_final(score, execution, log_probs or None, known_height,
                                        dd if dd is not None else dive_dd)
        result.final_score, result.execution = verdict.final_score, verdict.execution
        result.difficulty, result.dd_from = verdict.difficulty, verdict.dd_from
        if verdict.dd_from == "given" and dd is None:
            result.dd_from = "dive"
        elif not verdict.dd_from and table_dd is not None:  # the score head's final, shown beside the table DD
            result.difficulty, result.dd_from = table_dd, "table"
        if ids is not None:
            from aqa_cli.text import detokenize

            words = self.vocab.decode(ids)
            result.raw_commentary = detokenize(words)
            result.commentary = one_story(words, result.dive_number, known_height)
        if prepared.check is not None:
            result.looks_like_dive, result.kinetics_top, doubt = self.dive_check.read(prepared.check)
            result.warning = "; ".join(w for w in (result.warning, doubt) if w) or None
        return result

    def _set_classes(self, result: ScoreResult, log_probs: dict, given: rules.DiveLabels | None = None) -> dict:
        """Fill the class fields from each head's argmax, or from the `given` dive's labels (all five, also
        those the model has no head for; p_<head> is then the probability the model gives that class);
        returns head → class index."""
        import math

        labels = {}
        for head in rules.HEADS if given is not None else log_probs:
            log_prob = log_probs.get(head)
            k = labels[head] = getattr(given, head) if given is not None else int(log_prob.argmax())
            if log_prob is not None and k < len(log_prob):
                result.probabilities[head] = math.exp(float(log_prob[k]))
            names = self.label_names.get(head)
            if head in ("position", "rotation_type"):
                setattr(result, head, names[k] if names and k < len(names) else str(k))
            elif head == "armstand":
                result.armstand = bool(k)
            elif head in ("ss_no", "tw_no"):
                setattr(result, head, k)
        return labels

    def score(self, path: str | Path, *, height: str | None = None, dd: float | None = None,
              clips: int | None = None, dive: str | None = None,
              window: tuple[float, float] | None = None) -> ScoreResult:
        """Score one video; raises AqaError (e.g. VideoDecodeError) when it cannot be read, UsageError for
        options `check_options` or `check_dive` refuses."""
        height, dd, clips = check_options(height, dd, clips)
        if dive is not None:
            dive = check_dive(dive, height or self.one_height, dd)[0]
        t0 = time.perf_counter()
        prepared = self.read(path, clips, window)
        t1 = time.perf_counter()
        result = self.predict(str(path), prepared, height=height, dd=dd, dive=dive)
        result.timings = {"decode": t1 - t0, "model": time.perf_counter() - t1}
        return result


def widen(dive) -> tuple[float, float]:
    """The span scored for a found dive (locate.DiveWindow): widened by FRAMING, from 0 s at the earliest."""
    lead, after = FRAMING
    span = dive.end - dive.start
    return max(0.0, dive.start - lead * span), dive.end + after * span


def check_options(height: str | None = None, dd: float | str | None = None,
                  clips: int | None = None) -> tuple[str | None, float | None, int | None]:
    """The scoring options as `predict` takes them ("10", "10M", "10 m" → "10m"; "3,2" → 3.2), or
    UsageError naming the bad one."""
    try:
        height = rules.normalize_height(height) if height is not None else None
        dd = rules.parse_dd(dd) if dd is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if clips is not None and (isinstance(clips, bool) or not isinstance(clips, int) or not 1 <= clips <= MAX_CLIPS):
        raise UsageError(f"clips {clips!r}: expected a whole number from 1 to {MAX_CLIPS}")
    return height, dd, clips


def check_dive(dive: str, height: str | None = None, dd: float | None = None) -> tuple[str, float | None]:
    """The dive a coach names (`--dive 5156B`, with the height when its DD differs between heights): its
    canonical number and table DD (`rules.known_dive`; None when the scoresheet's `dd` is given, which
    needs no table), or UsageError with the reason."""
    try:
        return (rules.canonical_number(dive), None) if dd is not None else rules.known_dive(dive, height)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def one_height(data: dict[str, Any]) -> str | None:
    """The height of a checkpoint trained at one height only (`data.height`, or the only key of
    `data.heights`), else None."""
    from aqa_cli.rules import normalize_height

    heights = data.get("heights")
    height = data.get("height") or (next(iter(heights)) if isinstance(heights, dict) and len(heights) == 1 else None)
    try:
        return normalize_height(height) if height else None
    except ValueError:
        return None


def default_height(data: dict[str, Any]) -> str:
    """The DD table height a checkpoint's training data suggests (see the module docstring)."""
    from aqa_cli.rules import normalize_height

    height = data.get("height")
    heights = data.get("heights")
    if not height and isinstance(heights, dict) and heights:
        height = max(heights, key=lambda h: heights[h])
    try:
        return normalize_height(height) if height else DEFAULT_HEIGHT
    except ValueError:
        return DEFAULT_HEIGHT


def load_model(weights: str | Path | None = None, device: str = "auto", dive_check: bool | None = None,
               locate: bool | None = None, view: bool | None = None, reframe: bool | None = None) -> Scorer:
    """Find (`weights.find_weights`), verify (manifest sha256 and size) and load weights into a Scorer.

    dive_check: also read the Kinetics-400 I3D on each video (`DiveCheck`); None: when it is imported
    (`aqa weights import-i3d`), True: required, False: never. locate: find the dive in each video
    before scoring it (`locate.find_dives`, the bundled locator); None: when the locator's weights are
    there, True: required, False: never (the whole file is scored). view: read the board's side (clips
    mirrored when it is on the right) and the height (used when none is given) with the bundled view
    model; None: when it is there and reads clips as these weights prepare them. reframe: crop a diver
    filmed wider than the models learned to the framer's boxes (reframe.py, the bundled framer); None:
    when its weights are there and the model reads frames (not features)."""
    from aqa_cli.weights import find_weights, verify_file

    path = find_weights(weights)
    verify_file(path)
    checkpoint = Checkpoint.load(path)
    helper = {"locator": "dive locator", "view": "view model", "framer": "framer"}.get(checkpoint.model_config.backbone)
    if helper:  # the helpers' weights, not a scoring model
        raise WeightsError(f"{path} holds the {helper}, which helps aqa score but scores nothing itself",
                           hint="give scoring weights, e.g. syndive-tiny-mtl")
    explicit = weights is not None and Path(str(weights)).expanduser().is_file()
    scorer = Scorer(checkpoint, path, device=device, name=str(weights) if explicit else path.stem)
    if dive_check or dive_check is None:
        from aqa_cli.weights import I3D_FILE, backbones_dir, load_i3d

        if dive_check or (backbones_dir() / I3D_FILE).is_file():
            scorer.dive_check = DiveCheck(load_i3d()[0], scorer.device)
    if locate or locate is None:
        from aqa_cli.locate import NAME, load_locator
        from aqa_cli.weights import bundled_dir

        if locate or (bundled_dir() / f"{NAME}.pt").is_file():
            scorer.locator = load_locator()
    if view or view is None:
        from aqa_cli.view import VIEW_FILE, load_view
        from aqa_cli.weights import bundled_dir

        if view or (bundled_dir() / VIEW_FILE).is_file():
            reader = load_view(device=str(scorer.device))
            # It reads the Scorer's own clips: only weights prepared as it was trained apply.
            if reader.preprocess == scorer.preprocess and scorer.features is None:
                scorer.view = reader
            elif view:
                raise WeightsError(f"{path}: the view model reads clips prepared as {VIEW_FILE}'s checkpoint says; "
                                   "these weights prepare them otherwise")
    if reframe and scorer.features is not None:
        raise WeightsError(f"{path}: a model on I3D segment features reads whole frames through the I3D; "
                           "the framer crops only the frames of models that read video clips")
    if (reframe or reframe is None) and scorer.features is None:
        from aqa_cli.reframe import FRAMER_FILE, load_framer
        from aqa_cli.weights import bundled_dir

        if reframe or (bundled_dir() / FRAMER_FILE).is_file():
            scorer.framer = load_framer(device=str(scorer.device))
    return scorer


def score_video(path: str | Path, model: Scorer | None = None, *, weights: str | Path | None = None,
                device: str = "auto", height: str | None = None, dd: float | None = None,
                clips: int | None = None, dive: str | None = None,
                window: tuple[float, float] | None = None) -> ScoreResult:
    """Score one video (loading `weights` when no `model` is given); `dive` names the dive ("5156B"),
    `window` the (start, end) s to score (default: the dive the locator finds). Raises AqaError on a bad
    video."""
    scorer = model or load_model(weights, device)
    return scorer.score(path, height=height, dd=dd, clips=clips, dive=dive, window=window)


# Words by which a caption names the dive: any of them in the captioner's remarks is a claim about the
# dive that the heads, not the captioner, decide (a remark "a nice tight tuck" on a dive the position
# head reads as pike would contradict the panel beside it).
_DIVE_WORDS = frozenset(rules.SPOKEN_DIRECTIONS) | {"armstand", "dive", "somersault", "somersaults", "twist",
                                                   "twists", "twisting", "position"}
_POSITION_WORDS = frozenset(rules.SPOKEN_POSITIONS.values())


def one_story(words: list[str], number: str | None, height: str | None) -> str:
    """The commentary `aqa score` shows: never a contradiction of the dive heads shown beside it.

    The dive sentence is spoken from the classified dive (`rules.spoken_dive`; where it was done only
    when the height is known), and the captioner adds its execution remarks: its words after its own
    dive sentence (SynDive-style captions open with "... in the <position> position [off the N metre
    springboard]"), kept only when they claim nothing about the dive but its execution (no direction,
    somersault or twist words, no position but the predicted one). Without a dive number (the heads
    spell no valid dive) only such remarks are shown. words: the captioner's tokens.
    """
    from aqa_cli.text import detokenize

    remarks = list(words)
    if "position" in remarks:  # cut the captioner's own dive sentence, and where it says it was done
        remarks = remarks[remarks.index("position") + 1:]
        if remarks[:1] in (["from"], ["off"]) and "metre" in remarks[:4]:
            end = remarks.index("metre") + 1
            remarks = remarks[end + (remarks[end:end + 1] in (["springboard"], ["platform"])):]
    position = rules.SPOKEN_POSITIONS[number[-1]] if number else None
    claims = set(remarks) & _DIVE_WORDS or (set(remarks) & _POSITION_WORDS) - {position}
    said = detokenize(remarks) if remarks and not claims else ""
    if not number:
        return said
    phrase = rules.spoken_dive(number)
    sentence = f"{'An' if phrase[0] in 'aeiou' else 'A'} {phrase}"
    if height:
        board = "springboard" if height in ("1m", "3m") else "platform"
        sentence += f" off the {height[:-1]} metre {board}"
    return f"{sentence}. {said}".strip()
