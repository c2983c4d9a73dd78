"""The session: index.html over a folder of dive pages (a table, a score histogram, links) and
`ReportFolder`, the resumable folder `aqa score DIR --report OUT/` writes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from aqa_cli.errors import UsageError
from aqa_cli.storage import atomic_write_text

from aqa_cli.report.page import FORMAT_VERSION, INDEX_NAME, SORTS, STATE_NAME, banner, esc, num, html_page, write_dive_report


# The session index


@dataclass
class IndexEntry:
    """One video of a session: its page (relative to the index; "" when it failed) and its verdict."""

    video: str
    page: str = ""
    final_score: float | None = None
    dive_number: str | None = None
    description: str | None = None
    error: str | None = None
    warning: str | None = None  # scored, but doubtful (ScoreResult.warning)

    @classmethod
    def from_result(cls, result: Any, page: str) -> IndexEntry:
        return cls(video=str(result.video), page="" if result.error else page, final_score=result.final_score,
                   dive_number=result.dive_number, description=result.description, error=result.error,
                   warning=getattr(result, "warning", None))


def write_index(entries: Iterable[IndexEntry | Mapping[str, Any]], path: str | Path, *, sort: str = "score",
                synthetic_note: str | None = None, title: str = "Dive session") -> Path:
    """Write the session index to `path` (atomically) and return the path.

    entries: `IndexEntry`s or dicts with its keys (video, page, final_score, dive_number, description,
    error, warning), in input order. sort: "score" (highest first; failed videos last) or "order" (as given).
    """
    if sort not in SORTS:
        raise UsageError(f"sort {sort!r}: expected one of {', '.join(SORTS)}")
    rows = [e if isinstance(e, IndexEntry) else _entry_from(e) for e in entries]
    path = Path(path)
    atomic_write_text(path, render_index(rows, sort=sort, synthetic_note=synthetic_note, title=title))
    return path


def _entry_from(data: Mapping[str, Any]) -> IndexEntry:
    names = {f.name for f in fields(IndexEntry)}
    return IndexEntry(**{k: v for k, v in data.items() if k in names})


def render_index(entries: Sequence[IndexEntry], *, sort: str = "score", synthetic_note: str | None = None,
                 title: str = "Dive session") -> str:
    """The HTML text of `write_index`."""
    if sort == "score":  # rank by score (stable: ties keep their input order); failed videos last, unranked
        ranked = sorted(entries, key=lambda e: (e.final_score is None or bool(e.error), -(e.final_score or 0.0)))
        numbered = [("" if e.error or e.final_score is None else str(k), e) for k, e in enumerate(ranked, 1)]
    else:
        numbered = [(str(k), e) for k, e in enumerate(entries, 1)]
    scores = [e.final_score for e in entries if e.final_score is not None and not e.error]
    failed = sum(1 for e in entries if e.error)
    summary = f"{len(scores)} dive{'s' * (len(scores) != 1)} scored"
    if failed:
        summary += f", {failed} video{'s' * (failed != 1)} failed"
    if scores:
        summary += f"; median {float(np.median(scores)):.2f}, best {max(scores):.2f}"
    order = "highest score first" if sort == "score" else "in the order given"
    table = "".join(_index_row(k, e) for k, e in numbered)
    body = (f'{banner(synthetic_note)}<h1>{esc(title)}</h1><p class="muted" id="summary">{esc(summary)}</p>'
            f'<section class="card"><h2>Scores</h2>{histogram_svg(scores)}</section>'
            f'<section class="card"><h2>Dives <span class="muted">({order})</span></h2>'
            f'<table><thead><tr><th>{"rank" if sort == "score" else "#"}</th><th>video</th><th class="num">score</th>'
            '<th>dive</th></tr></thead>'
            f"<tbody>{table}</tbody></table></section>")
    return html_page(title, body)


def _index_row(order: str, entry: IndexEntry) -> str:
    name = esc(Path(entry.video).name)
    video = f'<a href="{esc(quote(entry.page))}">{name}</a>' if entry.page and not entry.error else name
    if entry.error:
        return (f'<tr class="failed"><td>{order}</td><td>{video}</td><td class="num">&ndash;</td>'
                f'<td class="err">{esc(entry.error)}</td></tr>')
    dive = esc(entry.dive_number or "?")
    if entry.description:
        dive += f' <span class="muted">{esc(entry.description)}</span>'
    if entry.warning:
        dive += f'<div class="err">check: {esc(entry.warning)}</div>'
    return f'<tr><td>{order}</td><td>{video}</td><td class="num">{num(entry.final_score, 2)}</td><td>{dive}</td></tr>'


def histogram_svg(scores: Sequence[float], width: int = 640, height: int = 180) -> str:
    """An inline SVG histogram of final scores, with counts over the bars and the bins' edges below.

    The bin width is the first of 1, 2, 5, 10, 20, 50 points that needs at most 12 bins, so a session of
    close scores is not one bar, and a wide one is not fifty.
    """
    if not scores:
        return '<p class="muted">No dive was scored.</p>'
    lo, hi = min(scores), max(scores)
    step = next((s for s in (1, 2, 5, 10, 20, 50) if math.floor(hi / s) - math.floor(lo / s) + 1 <= 12), 100)
    first = math.floor(lo / step)
    counts = np.bincount([math.floor(s / step) - first for s in scores]).tolist()
    pad, base = 16, height - 22  # px: room for the edge labels beside and below the bars
    bar_w = (width - 2 * pad) / len(counts)
    top = max(counts)
    parts = []
    for k, n in enumerate(counts):
        x = pad + k * bar_w
        h = (base - 18) * n / top
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" class="axis">{(first + k) * step:g}</text>')
        if n:
            parts.append(f'<rect x="{x + 1:.1f}" y="{base - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" rx="2">'
                         f"<title>{n} dive{'s' * (n != 1)} from {(first + k) * step:g} to "
                         f"{(first + k + 1) * step:g}</title></rect>"
                         f'<text x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" class="count">{n}</text>')
    right = pad + len(counts) * bar_w
    parts.append(f'<text x="{right:.1f}" y="{height - 6}" class="axis">{(first + len(counts)) * step:g}</text>')
    parts.append(f'<line x1="{pad}" x2="{right:.1f}" y1="{base}" y2="{base}" class="base"/>')
    return (f'<svg class="hist" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="histogram of {len(scores)} final scores, bins of {step:g} points">{"".join(parts)}</svg>')


# ---------------------------------------------------------------------------------------------
# A folder of reports


class ReportFolder:
    """`aqa score DIR --report OUT/`: one page per dive, OUT/index.html, and a resume state.

    settings: what a page depends on besides the video (`Scorer.settings`: the weights' sha256, height,
    DD, clips). The state file OUT/.aqa-resume.json lists the entries in input order, each with the
    video's absolute path, size, mtime and the settings it was scored with, so a second run skips the
    dives whose page is still current (`is_done`) and keeps every other entry until its video is scored
    again, as the resumable CSV does. The index is rewritten after each dive, so an interrupted run
    leaves a usable session. scorer_name, synthetic_note, model_card and height are as in
    `write_dive_report`, the same for every page.
    """

    def __init__(self, out_dir: str | Path, settings: Mapping[str, Any] | None = None, *, scorer_name: str,
                 synthetic_note: str | None = None, model_card: Mapping[str, Any] | None = None,
                 height: str | None = None, sort: str = "score"):
        if sort not in SORTS:
            raise UsageError(f"sort {sort!r}: expected one of {', '.join(SORTS)}")
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UsageError(f"--report {self.out_dir}: is a file; give a folder for a folder of videos")
        self.settings = json.loads(json.dumps(dict(settings or {})))  # as it reads back from the state file
        self.page_options = dict(scorer_name=scorer_name, synthetic_note=synthetic_note, model_card=model_card,
                                 height=height)
        self.sort = sort
        self._entries = self._load()

    @property
    def index_path(self) -> Path:
        return self.out_dir / INDEX_NAME

    @property
    def state_path(self) -> Path:
        return self.out_dir / STATE_NAME

    def _load(self) -> dict[str, dict[str, Any]]:
        """The state's entries by absolute video path, in input order; none from another format version."""
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
            return {}
        return {e["path"]: e for e in state.get("entries", []) if isinstance(e, dict) and "path" in e}

    def page_for(self, video: str | Path) -> Path:
        """The page of `video`: its name made safe, plus a short hash of its absolute path (two videos of
        one name in different folders get two pages)."""
        absolute = os.path.abspath(video)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(absolute).stem)[:60].strip("._") or "dive"
        digest = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return self.out_dir / f"{stem}-{digest}.html"

    def is_done(self, video: str | Path) -> bool:
        """Whether `video` has a current page: scored without error under these settings, from a file of
        the same size and mtime, and its page still there."""
        entry = self._entries.get(os.path.abspath(video))
        stat = _stat(video)
        return bool(entry and stat and not entry.get("error") and entry.get("settings") == self.settings
                    and (entry.get("size"), entry.get("mtime_ns")) == stat
                    and (self.out_dir / entry.get("page", "")).is_file())

    def add(self, result: Any, frames: np.ndarray | None = None, *, duration: float | None = None) -> Path | None:
        """Write the page of one result (frames: uint8 (T, H, W, 3), unused for an error result), record
        it, and rewrite the state and the index. Returns the page, or None for an error result (whose
        old page, if any, is removed so the index links to no stale verdict)."""
        page = self.page_for(result.video)
        if result.error:
            page.unlink(missing_ok=True)
        else:
            write_dive_report(result, frames, page, duration=duration, index_href=INDEX_NAME, **self.page_options)
        size, mtime_ns = _stat(result.video) or (None, None)
        entry = asdict(IndexEntry.from_result(result, page.name))
        entry.update(path=os.path.abspath(result.video), size=size, mtime_ns=mtime_ns, settings=self.settings)
        self._entries[entry["path"]] = entry
        self._save()
        return None if result.error else page

    def entries(self) -> list[IndexEntry]:
        """Every entry, in input order (first run's order, then new videos)."""
        return [_entry_from(e) for e in self._entries.values()]

    def _save(self) -> None:
        state = {"format": FORMAT_VERSION, "entries": list(self._entries.values())}
        atomic_write_text(self.state_path, json.dumps(state, indent=1) + "\n")
        write_index(self.entries(), self.index_path, sort=self.sort,
                    synthetic_note=self.page_options["synthetic_note"])

    def close(self) -> Path:
        """Write the state and the index (also when no dive was added this run); returns the index."""
        self._save()
        return self.index_path

    def __enter__(self) -> ReportFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stat(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
