"""One dive's page: the final score and how the rules computed it, the dive and each head's probability,
the commentary, a strip of frames, the weights and their caveat (see the package docstring)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from aqa_cli import rules
from aqa_cli.storage import atomic_write_text

STRIP_FRAMES = 8
FRAME_BOX = (512, 384)  # (width, height) px a strip frame is shrunk to fit: 512×288 for 16:9 footage
JPEG_QSCALE = 4  # FFmpeg's MJPEG quantiser, 2 (best) .. 31: 4 keeps a diver's limbs crisp at ~10-25 KB
FRAME_BUDGET = 40_000  # bytes per encoded frame before the quantiser is raised (noise-like footage)
SORTS = ("score", "order")
FORMAT_VERSION = 1  # of the pages and the resume state: a page of another version is written again
INDEX_NAME = "index.html"
STATE_NAME = ".aqa-resume.json"

HEAD_LABELS = {"position": "Position", "armstand": "Armstand", "rotation_type": "Direction",
               "ss_no": "Somersaults", "tw_no": "Twists"}


# ---------------------------------------------------------------------------------------------
# Frames


def pick_strip(frames: np.ndarray | int, n: int = STRIP_FRAMES) -> np.ndarray:
    """Indices of the strip's frames: `n` spread evenly from the first frame to the last, in order.

    frames: uint8 (T, H, W, 3) or the count T. Even spacing, not a guess at the phases: nothing tells
    where take-off and entry are, and an even spread shows every phase in proportion to its time and
    can skip none. MTL-AQA's 103-frame window (4.1 s at 25 fps) gives 8 frames 0.5 s apart, so the
    1-1.9 s flight gets two to four of them, with the take-off before and the entry and splash after.
    Fewer than `n` frames give each once. Returns int (min(n, T),).
    """
    count = frames if isinstance(frames, int) else len(frames)
    if count < 1 or n < 1:
        raise ValueError(f"pick_strip: need at least one frame and n >= 1, got {count} frames, n={n}")
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def encode_jpeg(frame: np.ndarray, box: tuple[int, int] = FRAME_BOX, budget: int = FRAME_BUDGET) -> bytes:
    """One RGB frame, uint8 (H, W, 3), as JPEG bytes, shrunk (never enlarged) to fit `box` = (W, H).

    PyAV's MJPEG encoder writes a baseline JPEG; libswscale resizes while converting to YUV. The
    quantiser starts at JPEG_QSCALE and doubles while the picture exceeds `budget` bytes.
    """
    import av

    height, width = _fit(frame.shape[0], frame.shape[1], box)
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(
        width=width, height=height, format="yuvj420p", interpolation="AREA")
    qscale = JPEG_QSCALE
    while True:
        ctx = av.CodecContext.create("mjpeg", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
        ctx.time_base = Fraction(1, 25)
        ctx.qmin = ctx.qmax = qscale  # a fixed quantiser: MJPEG's rate control is meant for streams
        data = b"".join(bytes(p) for p in ctx.encode(picture) + ctx.encode(None))
        if len(data) <= budget or qscale >= 31:
            return data
        qscale = min(31, qscale * 2)


def strip_size(width: int, height: int) -> tuple[int, int]:
    """The `size` for `video.read_even` that decodes a video of this upright width × height straight to
    the strip's frame size (FRAME_BOX's fit), so `encode_jpeg` resizes nothing more. read_even takes the
    long side first and turns it for portrait video: 1280×720 → (512, 288); 720×1280 → (384, 216), read
    as 216 wide and 384 tall."""
    return tuple(sorted(_fit(height, width, FRAME_BOX), reverse=True))


def _fit(height: int, width: int, box: tuple[int, int]) -> tuple[int, int]:
    """(height, width) shrunk by one factor to fit box = (W, H), rounded down to even sizes (4:2:0)."""
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(2, int(height * scale) // 2 * 2), max(2, int(width * scale) // 2 * 2)


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


# ---------------------------------------------------------------------------------------------
# One dive


def write_dive_report(result: Any, frames: np.ndarray | None, path: str | Path, *, scorer_name: str,
                      synthetic_note: str | None = None, model_card: Mapping[str, Any] | None = None,
                      height: str | None = None, duration: float | None = None,
                      index_href: str | None = None) -> Path:
    """Write one dive's page to `path` (atomically) and return the path.

    result: a `scoring.ScoreResult` (an error result gives a page that shows the error); optional
    attributes `looks_like_dive` (float, 0-1) and `kinetics_top` ([(label, probability)]) add the
    Kinetics reading. frames: uint8 (T, H, W, 3) RGB across the dive (e.g. `video.read_even`), or None
    for no strip; the strip shows `pick_strip(frames)`, so T = STRIP_FRAMES frames are enough (decoded at
    `strip_size`). scorer_name: the weights' name. synthetic_note: shown as a warning at the top (demo
    weights trained on synthetic renderings). model_card: short facts about the weights ({"data":
    "SynDive 3, 1000 dives"}). height: the board height the score used ("3m"), when known. duration:
    the video's length in seconds, to label the frames with times (for frames sampled evenly over the
    whole video, as `read_even` does).
    index_href: a link back to the session index.
    """
    path = Path(path)
    page = render_dive(result, frames, scorer_name=scorer_name, synthetic_note=synthetic_note,
                       model_card=model_card, height=height, duration=duration, index_href=index_href)
    atomic_write_text(path, page)
    return path


def render_dive(result: Any, frames: np.ndarray | None, *, scorer_name: str, synthetic_note: str | None = None,
                model_card: Mapping[str, Any] | None = None, height: str | None = None,
                duration: float | None = None, index_href: str | None = None) -> str:
    """The HTML text of `write_dive_report` (same arguments; frames may be None for an error result)."""
    name = Path(str(result.video)).name
    parts = [banner(synthetic_note)]
    if index_href:
        parts.append(f'<p class="nav"><a href="{esc(index_href)}">&larr; all dives of the session</a></p>')
    parts.append(f"<h1>{esc(name)}</h1>")
    if result.error:
        parts.append(f'<section class="card error"><h2>Could not score this video</h2><p>{esc(result.error)}</p>'
                     "</section>")
    else:
        # the height the score used: given, or what the view model read (ScoreResult.height)
        parts += [_warning(result), _score_card(result, getattr(result, "height", None) or height), _dive_card(result),
                  _commentary(result), _kinetics(result)]
    if frames is not None and len(frames):
        parts.append(_strip(frames, duration))
    parts.append(_weights(scorer_name, synthetic_note, model_card))
    title = f"{name}: {num(result.final_score, 2)}" if result.final_score is not None else name
    return html_page(title, "".join(parts))


def _warning(result: Any) -> str:
    """A result scored but doubtful (e.g. Kinetics sees no dive) says so above the score."""
    warning = getattr(result, "warning", None)
    return f'<div class="warn" role="note"><b>Check this video:</b> {esc(warning)}</div>' if warning else ""


def _score_card(result: Any, height: str | None) -> str:
    """The final score, big, and one line on how it was reached (where the DD came from)."""
    execution = result.execution
    per_judge = f" (&asymp; {execution / 3:.1f} from each of the 3 counted judges)" if execution is not None else ""
    dd, source = result.difficulty, result.dd_from
    if source in ("given", "dive", "expected"):
        how = (f"= DD <b>{num(dd, 2)}</b> &times; execution <b>{num(execution, 1)}</b> "
               f"<span class=muted>of 30{per_judge}</span>")
        if source == "given":
            why = "The DD is the one you gave (from the scoresheet)."
        elif source == "dive":
            why = f"The DD is the World Aquatics table's for the dive you named, {esc(result.dive_number)}."
        else:
            table = rules.table_difficulty(result.dive_number, height)
            listed = f"; the table lists {esc(result.dive_number)} at {num(table, 1)}" if table else ""
            why = (f"The DD is the expected World Aquatics DD at {esc(_height_text(height))}: the table DDs of "
                   f"the dives the classes could mean, weighted by how likely each is{listed}.")
    else:
        how = "the model's own score estimate"
        if execution is not None:
            how += f"; execution <b>{num(execution, 1)}</b> <span class=muted>of 30{per_judge}</span>"
        why = ("Without the board height the rules' DD &times; execution cannot be used; give the height to "
               "score by them.")
        if dd is not None:
            why += f" For reference, {esc(result.dive_number)} has a table DD of {num(dd, 1)}."
    return (f'<section class="card score"><div class="label">Final score</div>'
            f'<div class="big" id="final-score">{num(result.final_score, 2)}</div>'
            f'<div class="how">{how}</div><p class="why">{why}</p></section>')


def _dive_card(result: Any) -> str:
    """The dive number and name, then one row per head: its class and a bar of its probability."""
    number = result.dive_number or "?"
    name = result.description or "the classes name no dive in the tables"
    rows = []
    for head, label in HEAD_LABELS.items():
        value = _head_value(result, head)
        if value is None:
            continue
        prob = result.probabilities.get(head)
        rows.append(_bar_row(label, value, prob))
    return (f'<section class="card"><h2><span id="dive-number">{esc(number)}</span> '
            f'<span class="desc">{esc(name)}</span></h2>'
            '<p class="muted">How sure the model is of each part of the dive (green: sure, amber: unsure, '
            'red: a guess):</p>'
            f'<div class="bars">{"".join(rows)}</div></section>')


def _head_value(result: Any, head: str) -> str | None:
    """What a head predicted, as a coach says it: "tuck", "no", "3½" (half counts shown as turns)."""
    value = getattr(result, head, None)
    if value is None:
        return None
    if head == "armstand":
        return "yes" if value else "no"
    if head in ("ss_no", "tw_no"):
        names = rules.LABEL_NAMES[head]
        return names[value] if 0 <= value < len(names) else str(value)
    return str(value)


def _bar_row(label: str, value: str, prob: float | None, tone: str | None = None) -> str:
    """One labelled bar; its colour says how sure (green ≥ 80 %, amber ≥ 50 %, red below) unless `tone`
    ("plain") is given."""
    if prob is None or not math.isfinite(prob):
        return (f'<div class="row"><span class="k">{esc(label)}</span><span class="v">{esc(value)}</span>'
                '<span class="bar"></span><span class="p">&ndash;</span></div>')
    pct = max(0.0, min(1.0, prob)) * 100
    tone = tone or ("hi" if prob >= 0.8 else "mid" if prob >= 0.5 else "lo")
    return (f'<div class="row"><span class="k">{esc(label)}</span><span class="v">{esc(value)}</span>'
            f'<span class="bar"><i class="{tone}" style="width:{pct:.1f}%"></i></span>'
            f'<span class="p">{pct:.0f}%</span></div>')


def _commentary(result: Any) -> str:
    if not result.commentary:
        return ""
    return f'<section class="card"><h2>Commentary</h2><blockquote>{esc(result.commentary)}</blockquote></section>'


def _kinetics(result: Any) -> str:
    """The Kinetics-400 reading, where the result has one: how much the clip looks like diving."""
    looks = getattr(result, "looks_like_dive", None)
    top = getattr(result, "kinetics_top", None) or []
    if looks is None and not top:
        return ""
    rows = [_bar_row("Looks like a dive", "", looks)] if looks is not None else []
    rows += [_bar_row(str(label), "", prob, "plain") for label, prob in top]  # a share, not a verdict
    return ('<section class="card"><h2>Does it look like a dive?</h2><p class="muted">What a network trained on '
            'the Kinetics-400 actions sees in the clip:</p>'
            f'<div class="bars kinetics">{"".join(rows)}</div></section>')


def _strip(frames: np.ndarray, duration: float | None) -> str:
    """The frames of `pick_strip`, as JPEG data URIs, each labelled with its time or its position."""
    figures = []
    count = len(frames)
    height, width = _fit(frames.shape[1], frames.shape[2], FRAME_BOX)
    for i in pick_strip(frames):
        if duration:
            label = f"{(i + 0.5) * duration / count:.1f} s"  # read_even samples the middle of each slot
        else:
            label = f"frame {i + 1} of {count}"
        figures.append(f'<figure><img src="{_data_uri(encode_jpeg(frames[i]))}" alt="{label}" width="{width}" '
                       f'height="{height}"><figcaption>{label}</figcaption></figure>')
    return ('<section class="card"><h2>The dive, start to end</h2>'
            f'<div class="strip">{"".join(figures)}</div></section>')


def _weights(scorer_name: str, synthetic_note: str | None, model_card: Mapping[str, Any] | None) -> str:
    items = [f"<dt>weights</dt><dd>{esc(scorer_name)}</dd>"]
    for key, value in (model_card or {}).items():
        items.append(f"<dt>{esc(str(key))}</dt><dd>{esc(_card_text(value))}</dd>")
    note = f'<p class="warn-text">{esc(_sentence(synthetic_note))}</p>' if synthetic_note else ""
    return (f'<section class="card small"><h2>The model</h2>{note}<dl>{"".join(items)}</dl>'
            '<p class="muted">Scores are a model&rsquo;s estimate, not a judge&rsquo;s mark.</p></section>')


def model_card(data: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, str]:
    """A short model card for the page from a checkpoint's `data` and `metrics` (`Scorer.data`,
    `Scorer.metrics`): what the weights were trained on, and how they did on their test split, in words
    a coach can read. Keys missing from either give no line."""
    card = {}
    source = data.get("source") or data.get("name")
    if source:
        trained = str(source) + (f" v{data['version']}" if data.get("version") else "")
        if data.get("train_samples"):
            trained += f", {data['train_samples']} dives"
        heights = data.get("heights")
        if isinstance(heights, Mapping) and heights:
            trained += " at " + ", ".join(sorted(heights, key=lambda h: float(str(h).rstrip("m") or 0)))
        card["trained on"] = trained
    test = metrics.get("test") if isinstance(metrics.get("test"), Mapping) else {}
    ranked = next((test[k] for k in ("expected_dd_x_execution", "score") if isinstance(test.get(k), Mapping)), {})
    words = []
    if isinstance(ranked.get("spearman"), (int, float)) and math.isfinite(ranked["spearman"]):
        dives = f" of {ranked['n']} test dives" if ranked.get("n") else ""
        words.append(f"ranks the scores{dives} as the judges did with Spearman {ranked['spearman']:.2f} "
                     "(1: the same order)")
    number = (test.get("accuracy") or {}).get("dive_number")
    if isinstance(number, (int, float)) and math.isfinite(number):
        words.append(f"names the whole dive right {number:.0%} of the time")
    if words:
        card["on its test split"] = "; ".join(words)
    return card


def _card_text(value: Any) -> str:
    """A model card value as one line: mappings as "key value, ...", sequences joined by commas."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_card_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_card_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _height_text(height: str | None) -> str:
    if not height:
        return "the board height"
    board = "springboard" if height in ("1m", "3m") else "platform"
    return f"{height[:-1]} m {board}"




# ---------------------------------------------------------------------------------------------
# HTML


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def num(value: float | None, places: int) -> str:
    return "&ndash;" if value is None or not math.isfinite(value) else f"{value:.{places}f}"


def banner(note: str | None) -> str:
    return f'<div class="warn" role="note"><b>Caution:</b> {esc(_sentence(note))}</div>' if note else ""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def html_page(title: str, body: str) -> str:
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>{body}"
            '<footer class="muted">Made by aqa: Action Quality Assessment of dive videos.</footer>'
            "</main></body></html>\n")


# One stylesheet for the page and the index: system fonts, a single fluid column, and on narrow screens
# a strip that scrolls sideways a frame at a time instead of shrinking the frames to thumbnails.
_CSS = """
:root{--fg:#1d232a;--muted:#5f6b76;--bg:#f4f6f8;--card:#fff;--line:#dde3e8;--accent:#0a6cbd}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1100px;margin:0 auto;padding:12px}
h1{font-size:1.15rem;margin:.6rem 0;word-break:break-all}
h2{font-size:1.05rem;margin:0 0 .5rem}
a{color:var(--accent)}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px;margin:12px 0}
.muted{color:var(--muted);font-weight:normal}
.warn{background:#fff3cd;border:2px solid #e0a800;border-radius:10px;padding:10px 14px;margin:8px 0}
.warn-text{color:#7a5a00;font-weight:600}
.error{border-color:#c62828;background:#fdecea}
.score .label{color:var(--muted);font-size:.9rem;text-transform:uppercase;letter-spacing:.05em}
.score .big{font-size:3.4rem;font-weight:700;line-height:1.1;font-variant-numeric:tabular-nums}
.score .how{font-size:1.1rem}
.score .why{color:var(--muted);margin:.4rem 0 0;font-size:.92rem}
.desc{font-weight:normal}
.bars .row{display:grid;grid-template-columns:7rem 5rem 1fr 3rem;gap:8px;align-items:center;margin:6px 0}
.bars.kinetics .row{grid-template-columns:minmax(7.5rem,14rem) 0 1fr 3rem}
.bars .k{color:var(--muted)}
.bars .v{font-weight:600}
.bar{height:14px;background:#e9edf1;border-radius:7px;overflow:hidden}
.bar i{display:block;height:100%}
.bar i.hi{background:#2e8540}.bar i.mid{background:#e0a800}.bar i.lo{background:#c62828}
.bar i.plain{background:var(--accent)}
.p{text-align:right;font-variant-numeric:tabular-nums}
blockquote{margin:0;padding:.2rem .9rem;border-left:4px solid var(--accent);font-size:1.05rem}
.strip{display:grid;grid-template-columns:repeat(4,1fr);gap:8px}
figure{margin:0}
figure img{display:block;width:100%;height:auto;border-radius:6px;background:#000}
figcaption{font-size:.8rem;color:var(--muted);text-align:center}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:.3rem 0;font-size:.9rem}
dt{color:var(--muted)}dd{margin:0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
tr.failed td{color:#8a1c1c}
.err{font-size:.9rem}
.hist{width:100%;height:auto;max-height:220px}
.hist rect{fill:var(--accent)}
.hist .axis{font-size:12px;fill:var(--muted);text-anchor:middle}
.hist .count{font-size:12px;fill:var(--fg);text-anchor:middle}
.hist .base{stroke:var(--muted)}
footer{font-size:.8rem;margin:1rem 0}
@media (max-width:800px){.strip{grid-template-columns:repeat(2,1fr)}}
@media (max-width:600px){
 .strip{display:flex;overflow-x:auto;scroll-snap-type:x mandatory}
 .strip figure{flex:0 0 85%;scroll-snap-align:start}
 .bars .row{grid-template-columns:6.2rem 4.6rem 1fr 2.6rem;gap:6px}
 .bars.kinetics .row{grid-template-columns:9rem 0 1fr 2.6rem}
 .score .label{color:var(--muted);font-size:.9rem;text-transform:uppercase;letter-spacing:.05em}
.score .big{font-size:2.8rem}
}
"""
