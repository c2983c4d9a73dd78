"""Rhythmic Gymnastics (Zeng et al., "Hybrid Dynamic-static Context-aware Attention Network for Action
Assessment in Long Videos", ACM MM 2020): the release's score files → a dataset root.

The release (`lingan1996/ACTION-NET`) has two tab-separated files, `train.txt` and `test.txt`, one row
per routine after a header:

    Video_Name  Difficulty_Score  Execution_Score  Total_Score  Penalty  Video_length
    Ball_001    10.50             8.30             18.80        0.00     92

1000 routines: 200 train and 50 test for each apparatus (Ball, Clubs, Hoop, Ribbon), numbered 001-250
(Ball to 251: `Ball_134` does not exist). Total = Difficulty + Execution - Penalty to within 0.01 (17
rows are a cent off, the execution having been rounded); routines last 87-99 s (`Video_length`).

`prepare` writes the common root:

    ROOT/dataset.yaml, annotations.jsonl (final_score = Total, apparatus: the group each model of
    `aqa train --apparatus` trains on), splits/{train,val,test}.txt (all apparatus; val empty: the
    release has none), splits/<Apparatus>/{train,val,test}.txt (the same groups as split files),
    rg.jsonl (one `Routine` per line: apparatus, D, E, penalty,
    length; `Sample` has no place for them), videos/<id>.<ext> (links to the user's files),
    missing.txt (routines without a video)

A routine is 87-99 s (≈2300 frames at 25 fps), so the root keeps videos, never decoded frames
(`info.frames` is 0): features are extracted from the videos directly.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from aqa_cli.datasets.layout import DatasetInfo, DatasetRoot, Sample, write_root
from aqa_cli.errors import DataError, UsageError
from aqa_cli.storage import atomic_write_text

APPARATUS = ("Ball", "Clubs", "Hoop", "Ribbon")
RELEASE_SPLITS = ("train", "test")
HEADER = ("Video_Name", "Difficulty_Score", "Execution_Score", "Total_Score", "Penalty", "Video_length")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
TOLERANCE = 0.011  # points: Total = D + E - Penalty holds to a cent (the execution rounded)
NAME = "rg"


@dataclass(frozen=True)
class Routine:
    """One routine of the release: its scores in points and its length in seconds."""

    id: str  # e.g. "Ball_001"
    apparatus: str
    difficulty: float
    execution: float
    total: float
    penalty: float
    length_s: int


@dataclass
class PrepareSummary:
    """What `prepare` wrote: the root, the routines per split, the linked videos and the missing ones."""

    root: Path
    counts: dict[str, int]
    linked: int
    missing: list[str]


def read_release(path: str | Path) -> list[Routine]:
    """The routines of one release file (`train.txt` or `test.txt`), in file order; DataError naming the
    line for a wrong header, a short row, a non-number, an unknown apparatus or a total that is not
    Difficulty + Execution - Penalty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing {path}", hint="give the folder that holds the release's train.txt and test.txt")
    lines = path.read_text().splitlines()
    if not lines or tuple(lines[0].split()) != HEADER:
        raise DataError(f"{path}:1: expected the header {' '.join(HEADER)}")
    return [_routine(line.split(), f"{path}:{n}") for n, line in enumerate(lines[1:], 2) if line.strip()]


def _routine(fields: list[str], where: str) -> Routine:
    """One row's fields → Routine, checked (see read_release)."""
    if len(fields) != len(HEADER):
        raise DataError(f"{where}: expected {len(HEADER)} fields, got {len(fields)}")
    name, *numbers = fields
    apparatus = name.split("_")[0]
    if apparatus not in APPARATUS:
        raise DataError(f"{where}: {name}: unknown apparatus (expected {', '.join(APPARATUS)})")
    try:
        d, e, total, penalty = (float(x) for x in numbers[:4])
        length = int(numbers[4])
    except ValueError:
        raise DataError(f"{where}: {name}: expected numbers, got {' '.join(numbers)}") from None
    if abs(d + e - penalty - total) > TOLERANCE:
        raise DataError(f"{where}: {name}: Total {total} is not Difficulty {d} + Execution {e} - Penalty {penalty}")
    return Routine(name, apparatus, d, e, total, penalty, length)


def read_annotations(folder: str | Path) -> dict[str, list[Routine]]:
    """{"train": [...], "test": [...]} from the release folder; DataError for a routine in both."""
    folder = Path(folder)
    splits = {name: read_release(folder / f"{name}.txt") for name in RELEASE_SPLITS}
    both = {r.id for r in splits["train"]} & {r.id for r in splits["test"]}
    if both:
        raise DataError(f"{folder}: {len(both)} routines in both train.txt and test.txt, e.g. {min(both)}")
    return splits


def find_videos(videos: str | Path | None, ids: list[str]) -> dict[str, Path]:
    """{id: file} for the routines whose video `videos` holds, named `<id><suffix>` (VIDEO_SUFFIXES, any
    letter case), searched recursively (broken links left out); {} when `videos` is None."""
    if videos is None:
        return {}
    videos = Path(videos)
    if not videos.is_dir():
        raise UsageError(f"--from {videos}: not a folder", hint="give the folder holding the routines' videos")
    wanted = set(ids)
    found: dict[str, Path] = {}
    for path in sorted(videos.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.stem in wanted and path.is_file():
            found.setdefault(path.stem, path)
    return found


def prepare(root: str | Path, annotations: str | Path, videos: str | Path | None = None) -> PrepareSummary:
    """Write (or update) the RG dataset root `root` from the release folder `annotations` and the
    user's video folder `videos` (see the module docstring). Run again after adding videos: links are
    made for the new ones and missing.txt shrinks. UsageError when `root` holds another dataset."""
    root = Path(root)
    _check_target(root)
    splits = read_annotations(annotations)
    routines = [r for name in RELEASE_SPLITS for r in splits[name]]
    wanted = [r.id for r in routines]
    _link_videos(root / "videos", find_videos(videos, wanted))
    linked = {i: p.name for i, p in find_videos(root / "videos", wanted).items()}  # new links and earlier ones
    samples = [Sample(id=r.id, video=linked.get(r.id, ""), final_score=r.total, apparatus=r.apparatus)
               for r in routines]
    info = DatasetInfo(name=NAME, source="Rhythmic Gymnastics (Zeng et al., ACM MM 2020)", fps=25.0,
                       width=0, height=0, frames=0,
                       extra={"apparatus": list(APPARATUS), "routines": "rg.jsonl",
                              "score": "final_score = Total = Difficulty + Execution - Penalty"})
    ids = {name: [r.id for r in splits[name]] for name in RELEASE_SPLITS}
    write_root(root, info, samples, {"train": ids["train"], "val": [], "test": ids["test"]})
    _write_apparatus_splits(root, splits)
    atomic_write_text(root / "rg.jsonl", "".join(json.dumps(asdict(r)) + "\n" for r in routines))
    missing = [r.id for r in routines if r.id not in linked]
    atomic_write_text(root / "missing.txt", "".join(i + "\n" for i in missing))
    return PrepareSummary(root=root, counts={k: len(v) for k, v in ids.items()}, linked=len(linked),
                          missing=missing)


def _check_target(root: Path) -> None:
    """UsageError when `root` is a file, or a dataset root of another dataset (never overwrite it)."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"--root {root}: is a file, not a folder")
    if (root / "dataset.yaml").is_file():
        name = DatasetRoot(root).info.name
        if name != NAME:
            raise UsageError(f"--root {root}: holds the dataset {name!r}, not {NAME!r}",
                             hint="give a new folder for the Rhythmic Gymnastics root")


def _link_videos(folder: Path, found: dict[str, Path]) -> None:
    """Symbolic links folder/<id><suffix> → the user's files (a routine is tens of MB: no copies). A
    link already there is replaced, so a moved video folder can be given again; a file that already is
    the target (--from ROOT/videos) is left alone."""
    folder.mkdir(parents=True, exist_ok=True)
    for sample_id, path in found.items():
        target = path.resolve()
        link = folder / f"{sample_id}{path.suffix.lower()}"
        if link.exists() and link.resolve() == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(target, link)


def _write_apparatus_splits(root: Path, splits: dict[str, list[Routine]]) -> None:
    """splits/<Apparatus>/{train,val,test}.txt: `DatasetRoot.split("Ball/train")` reads them."""
    for apparatus in APPARATUS:
        for name in ("train", "val", "test"):
            ids = [r.id for r in splits.get(name, []) if r.apparatus == apparatus]
            atomic_write_text(root / "splits" / apparatus / f"{name}.txt", "".join(i + "\n" for i in ids))


def read_routines(root: str | Path) -> dict[str, Routine]:
    """{id: Routine} of a prepared RG root (its rg.jsonl)."""
    path = Path(root) / "rg.jsonl"
    if not path.is_file():
        raise DataError(f"{root}: not a Rhythmic Gymnastics root (no rg.jsonl)",
                        hint="make one with `aqa data prepare rg`")
    routines = [Routine(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return {r.id: r for r in routines}
