"""What `aqa score` is given → the videos it scores: paths, folders and patterns expanded in order, with
a one-line problem for what cannot be scored and a list of the files a folder holds that are not videos.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from aqa_cli.errors import UsageError

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".3gp", ".ts", ".mts", ".m2ts", ".gif")
AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma")


def expand_inputs(paths: Iterable[str | Path], recursive: bool = False,
                  skipped: list[tuple[str, str]] | None = None) -> list[tuple[str, str | None]]:
    """Command-line inputs → [(path, problem)] in order, without duplicates.

    A file is taken as given (whatever its suffix); a folder gives its videos (suffixes in
    VIDEO_SUFFIXES, case-insensitive), sorted, searching subfolders only with `recursive`; a pattern
    with * ? [ is expanded like the shell would, keeping the videos and folders it matches (so "meet/*"
    skips the CSV written there). A missing path, an empty folder or a pattern that matches no video
    becomes (path, one-line problem) so that it is reported as a failed input. One file named two ways
    (a.mp4, ./a.mp4) is scored once, under the first name.
    Files a folder holds that are not videos are appended to `skipped` as (path, why), so that nothing
    is left out unsaid (hidden files aside). Raises UsageError when no input yields a video at all.
    """
    import glob

    out: dict[str, str | None] = {}
    for raw in paths:
        text = str(raw)
        if any(c in text for c in "*?[") and not Path(text).exists():
            matches = [m for m in sorted(glob.glob(text, recursive=recursive))
                       if Path(m).suffix.lower() in VIDEO_SUFFIXES or Path(m).is_dir()]
            if not matches:
                out.setdefault(text, f"no videos match this pattern ({'/'.join(VIDEO_SUFFIXES[:4])}/...)")
            for m in matches:
                _add_path(out, Path(m), recursive, skipped)
            continue
        path = Path(text)
        if path.is_dir():
            before = len(out)
            _add_path(out, path, recursive, skipped)
            if len(out) == before:
                where = "or its subfolders " if recursive else ""
                hint = "" if recursive else "; add --recursive to search subfolders"
                out.setdefault(text, f"no videos in this folder {where}({'/'.join(VIDEO_SUFFIXES[:4])}/...){hint}")
        elif path.exists():
            out.setdefault(text, None)
        else:
            out.setdefault(text, "file not found")
    if not any(problem is None for problem in out.values()):
        detail = "; ".join(f"{p}: {why}" for p, why in out.items()) or "no paths given"
        raise UsageError(f"no videos found ({detail[:300]})", hint="aqa score dive.mp4 | aqa score meet/ --recursive")
    seen: set[str] = set()
    unique = []
    for path, problem in out.items():
        key = os.path.abspath(path) if problem is None else path
        if key not in seen:
            seen.add(key)
            unique.append((path, problem))
    return unique


def _add_path(out: dict[str, str | None], path: Path, recursive: bool,
              skipped: list[tuple[str, str]] | None = None) -> None:
    if not path.is_dir():
        out.setdefault(str(path), None)
        return
    found = path.rglob("*") if recursive else path.iterdir()
    for p in sorted(found, key=lambda p: (str(p).lower(), str(p))):
        suffix = p.suffix.lower()
        if suffix in VIDEO_SUFFIXES and p.is_file():
            out.setdefault(str(p), None)
        elif skipped is not None and p.is_file() and not p.name.startswith("."):
            why = "audio only" if suffix in AUDIO_SUFFIXES else f"not a video ({suffix or 'no suffix'})"
            skipped.append((str(p), why))
