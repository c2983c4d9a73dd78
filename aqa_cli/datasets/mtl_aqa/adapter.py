"""The MTL-AQA release (Parmar & Morris, CVPR 2019) → aqa's common dataset root.

The official release ships annotations only, laid out as

    Ready_2_Use/MTL-AQA_split_0_data/final_annotations_dict.pkl   {(video, dive): {start_frame, ...}}
    Ready_2_Use/MTL-AQA_split_0_data/final_captions_dict.pkl      {(video, dive): ['<sos>', ..., '<eos>']}
    Ready_2_Use/MTL-AQA_split_0_data/{train,test}_split_0.pkl     [(video, dive), ...]  (1059 / 353)
    Ready_2_Use/MTL-AQA_split_0_data/vocab.json                   ix_to_word / word_to_ix
    Video_List.xlsx                                               Sr. No. (= video) → YouTube URL
    Raw_Annotations/NN.xlsx, NN.sbv                               per-video sheets with the 7 judges' marks

and later projects added `judge_scores` and `dive_number` to the annotation dict (`derived/`); aqa
uses the richest of those that is present. aqa keeps the release under `ROOT/release/` in this
layout, the source videos as `ROOT/videos/NN.<ext>` (NN = Sr. No., two digits, as the release's
frame extractor names them), and writes the common root (layout.py) next to them.

**Frame numbers.** The release's frame numbers count from 1: they are the numbers of the JPEGs that
its extractor (`ffmpeg -i NN.mp4 NN/%06d.jpg`) writes, and its loader reads the 103 images
`sorted(jpgs)[end_frame - 103 : end_frame]`, i.e. JPEGs end_frame-102 … end_frame. aqa stores
0-based frame numbers (decoded frame k is JPEG k+1): `Sample.end_frame = end_frame - 1`, and the
window is the 103 decoded frames ending at it. Preprocessing keeps `PAD` = 3 more on each side for the
release's ±3 frame temporal jitter.

Pitfalls of the release that aqa handles or documents: `vocab.json` was built over all captions,
test ones included (aqa builds its vocabulary from the training split); the smaller training sets in
`Ready_2_Use/smaller_training_sets/` overlap the test split; 4 captions have no annotated dive.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aqa_cli import rules
from aqa_cli.datasets.layout import DatasetInfo, Sample, write_root
from aqa_cli.datasets.mtl_aqa.xlsx import read_xlsx
from aqa_cli.errors import DataError, UsageError
from aqa_cli.storage import safe_load
from aqa_cli.text import tokenize

NAME = "mtl-aqa"  # dataset.yaml's name
SPLIT_DIR = "Ready_2_Use/MTL-AQA_split_0_data"
ANNOTATIONS = f"{SPLIT_DIR}/final_annotations_dict.pkl"
CAPTIONS = f"{SPLIT_DIR}/final_captions_dict.pkl"
TRAIN_SPLIT = f"{SPLIT_DIR}/train_split_0.pkl"
TEST_SPLIT = f"{SPLIT_DIR}/test_split_0.pkl"
VOCAB = f"{SPLIT_DIR}/vocab.json"
VIDEO_LIST = "Video_List.xlsx"
# Community versions of the annotation dict, richest first: CoRe adds judge_scores and dive_number,
# MUSDL judge_scores only.
DERIVED = ("derived/final_annotations_dict_with_dive_number.pkl",
           "derived/augmented_final_annotations_dict.pkl")

WINDOW = 103  # frames the MTL-AQA models see, ending at end_frame
PAD = 3  # extra frames stored on each side (the release trains with end_frame jittered by ±3)
VAL_FRACTION = 0.1  # of the official training split, carved out with VAL_SEED
VAL_SEED = 0
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")

Key = tuple[int, int]


@dataclass
class Release:
    """The annotation files of one MTL-AQA release folder, keys normalised to (int, int)."""

    path: Path
    annotations: dict[Key, dict]
    captions: dict[Key, list[str]]
    train: list[Key]
    test: list[Key]
    videos: dict[int, str]  # video number (Sr. No.) → URL
    vocab_size: int  # of the release's vocab.json (built over all captions, test included)
    derived: str = ""  # the derived annotation file used, "" for the official dict
    notes: list[str] = field(default_factory=list)


def sample_id(key: Key) -> str:
    """(1, 7) → '01_007' (video, dive)."""
    return f"{key[0]:02d}_{key[1]:03d}"


def video_name(video: int) -> str:
    """Stem of a source video file in ROOT/videos: 1 → '01'."""
    return f"{video:02d}"


def load_release(path: str | Path) -> Release:
    """Read a release folder laid out as shipped (see the module docstring)."""
    path = Path(path)
    if not (path / ANNOTATIONS).is_file():
        raise DataError(f"{path}: not an MTL-AQA release (missing {ANNOTATIONS})",
                        hint="aqa data download mtl-aqa --root ROOT [--from DIR]")
    annotations = _keyed(safe_load(path / ANNOTATIONS), path / ANNOTATIONS)
    derived = ""
    for name in DERIVED:
        if (path / name).is_file():
            richer = _keyed(safe_load(path / name), path / name)
            if set(richer) != set(annotations):
                raise DataError(f"{path / name}: its {len(richer)} dives are not the release's "
                                f"{len(annotations)}")
            annotations, derived = richer, name
            break
    captions = {k: [str(w) for w in v] for k, v in _keyed(safe_load(path / CAPTIONS), path / CAPTIONS).items()} \
        if (path / CAPTIONS).is_file() else {}
    train = [_key(k, path / TRAIN_SPLIT) for k in safe_load(path / TRAIN_SPLIT)]
    test = [_key(k, path / TEST_SPLIT) for k in safe_load(path / TEST_SPLIT)]
    unknown = [k for k in train + test if k not in annotations]
    if unknown:
        raise DataError(f"{path}: split keys without annotations, e.g. {unknown[0]}")
    vocab_size = 0
    if (path / VOCAB).is_file():
        try:
            vocab_size = len(json.loads((path / VOCAB).read_text())["ix_to_word"])
        except (ValueError, KeyError) as exc:
            raise DataError(f"{path / VOCAB}: not the release's vocab.json ({exc})") from None
    videos = read_video_list(path / VIDEO_LIST) if (path / VIDEO_LIST).is_file() else {}
    release = Release(path, annotations, captions, train, test, videos, vocab_size, derived)
    orphans = len(set(captions) - set(annotations))
    if orphans:
        release.notes.append(f"{orphans} captions have no annotated dive (ignored)")
    return release


def read_video_list(path: Path) -> dict[int, str]:
    """Video_List.xlsx → {Sr. No.: URL}."""
    videos = {}
    for row in read_xlsx(path)[1:]:
        if len(row) >= 2 and isinstance(row[0], float) and isinstance(row[1], str):
            videos[int(row[0])] = row[1].strip()
    if not videos:
        raise DataError(f"{path}: no (Sr. No., URL) rows")
    return videos


def _key(k, source: Path) -> Key:
    try:
        video, number = k
        return int(video), int(number)
    except (TypeError, ValueError):
        raise DataError(f"{source}: expected (video, dive) keys, got {k!r}") from None


def _keyed(data, source: Path) -> dict:
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a dict keyed by (video, dive), got {type(data).__name__}")
    return {_key(k, source): v for k, v in data.items()}


def to_samples(release: Release, video_files: dict[int, str] | None = None) -> list[Sample]:
    """One `Sample` per annotated dive (0-based frame numbers, see the module docstring).

    `video_files` maps a video number to its file name in ROOT/videos (default NN.mp4).
    """
    video_files = video_files or {}
    samples = []
    for key in sorted(release.annotations):
        rec = release.annotations[key]
        try:
            labels = rules.DiveLabels(int(rec["position"]), int(rec["armstand"]), int(rec["rotation_type"]),
                                     int(rec["ss_no"]), int(rec["tw_no"]))
            number = str(rec.get("dive_number") or rules.dive_number(labels))
            sample = Sample(
                id=sample_id(key), video=video_files.get(key[0], f"{video_name(key[0])}.mp4"),
                start_frame=int(rec["start_frame"]) - 1, end_frame=int(rec["end_frame"]) - 1,
                final_score=float(rec["final_score"]), difficulty=float(rec["difficulty"]),
                judge_scores=[float(m) for m in rec.get("judge_scores", [])], dive_number=number,
                position=labels.position, armstand=labels.armstand, rotation_type=labels.rotation_type,
                ss_no=labels.ss_no, tw_no=labels.tw_no,
                commentary=" ".join(tokenize(" ".join(release.captions.get(key, [])))))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{release.path}: dive {key}: bad annotation ({exc})") from None
        samples.append(sample)
    _infer_heights(samples)
    return samples


def _infer_heights(samples: list[Sample]) -> None:
    """Fill `height` from the DD: 10 m or 3 m, whichever 2025 table gives the annotated DD.

    MTL-AQA's videos are 10 m platform and 3 m springboard events. A dive whose DD fits one of the two
    gets it; the others get the height that fits most of their video's dives, or stay unknown ("").
    DD tables change between editions, so this is an estimate.
    """
    fits = {s.id: [h for h in ("10m", "3m") if rules.difficulty(s.dive_number, h) == s.difficulty]
            for s in samples}
    per_video: dict[str, Counter] = {}
    for s in samples:
        per_video.setdefault(s.video, Counter()).update(fits[s.id])
    for s in samples:
        if len(fits[s.id]) == 1:
            s.height = fits[s.id][0]
        elif per_video[s.video]:
            s.height = per_video[s.video].most_common(1)[0][0]


def carve_val(train: list[str], fraction: float = VAL_FRACTION, seed: int = VAL_SEED) -> tuple[list[str], list[str]]:
    """Split the official training ids into (train, val) with a fixed seed; the test split is untouched."""
    n_val = round(len(train) * fraction)
    val = set(random.Random(seed).sample(sorted(train), n_val))
    return [i for i in train if i not in val], [i for i in train if i in val]


def write_annotations(root: str | Path, release: Release, val_fraction: float = 0.0,
                      fps: float = 0.0, size: tuple[int, int] = (171, 128)) -> list[Sample]:
    """Write ROOT's dataset.yaml, annotations.jsonl and splits from the release.

    `val_fraction` 0 keeps the official split (train 1059, val 0, test 353); preprocessing carves
    val out of train. `fps` is that of the source videos (0 when unknown). Returns the samples.
    """
    root = Path(root)
    files = {v: p.name for v in {k[0] for k in release.annotations} if (p := find_video(root, v))}
    samples = to_samples(release, files)
    train = [sample_id(k) for k in release.train]
    val: list[str] = []
    if val_fraction > 0:
        train, val = carve_val(train, val_fraction)
    info = DatasetInfo(
        name=NAME, source="MTL-AQA (Parmar & Morris, CVPR 2019)", version="split_0",
        fps=fps, width=size[0], height=size[1], frames=WINDOW, pad=PAD,
        extra={"release": str(release.path), "derived_annotations": release.derived,
               "official_split": {"train": len(release.train), "test": len(release.test)},
               "val_fraction": val_fraction, "val_seed": VAL_SEED,
               "release_vocab_size": release.vocab_size, "frame_numbers": "0-based (release - 1)",
               "notes": release.notes})
    write_root(root, info, samples, {"train": train, "val": val, "test": [sample_id(k) for k in release.test]})
    return samples


# ---------------------------------------------------------------------------------------------
# Getting the release: official files over HTTPS (pinned sha256) or from a local copy.

OFFICIAL_BASE = "https://raw.githubusercontent.com/ParitoshParmar/MTL-AQA/master/MTL-AQA_dataset_release"
CORE_BASE = "https://raw.githubusercontent.com/yuxumin/CoRe/master/MTL-AQA/info"
RELEASE_DIR = "release"  # under ROOT
# (path in the release layout, sha256 of the official file, where it comes from; None = OFFICIAL_BASE)
RELEASE_FILES: tuple[tuple[str, str, str | None], ...] = (
    (ANNOTATIONS, "8fda2f55be4f7e8031923c796d5599c357582df759dbd476de6cc40c2b3c81f3", None),
    (CAPTIONS, "8ecbbed8f4bd393481747c849b38970e59e99194210f1ae01440ae7b164fa9d5", None),
    (TRAIN_SPLIT, "87d5dd2fe704af5ae1130b8d3ab66d2d4287346363fa37f52cee27dfb6730e52", None),
    (TEST_SPLIT, "c25d6619e0044182ab303b64f4c0386510c2e17d302aad28f08c5e461319904a", None),
    (VOCAB, "2bd8b3e30338d1d250b91404716879f05ec99c7a3c2870d2c4509bc44842d00e", None),
    (VIDEO_LIST, "e72cea0132e370c8521c597168398ffc5d8bd13426f854daeba462f548502c62", None),
    (DERIVED[0], "2e1e06b33ce3570036cd193912a68ffee0da08cc74cee8397309c5ab302ab8c4",
     f"{CORE_BASE}/final_annotations_dict_with_dive_number.pkl"),
)
OPTIONAL = {DERIVED[0]}  # without it, aqa falls back to the official dict (no judges' marks)


@dataclass
class DownloadResult:
    """What `download` did: annotation files, videos present, videos it could not get (with URLs)."""

    root: Path
    files: list[str]
    samples: int
    videos: dict[int, str] = field(default_factory=dict)  # video → path relative to ROOT
    missing_videos: dict[int, str] = field(default_factory=dict)  # video → URL
    problems: list[str] = field(default_factory=list)


def release_files(base_url: str | None = None) -> list:
    """The release's files as `download.RemoteFile`s under ROOT/release; `base_url` replaces every
    origin (a mirror holding the release layout, derived/ included)."""
    from aqa_cli.datasets.mtl_aqa.download import RemoteFile

    return [RemoteFile(f"{RELEASE_DIR}/{path}",
                       f"{base_url.rstrip('/')}/{path}" if base_url else (origin or f"{OFFICIAL_BASE}/{path}"),
                       sha256, optional=path in OPTIONAL)
            for path, sha256, origin in RELEASE_FILES]


def find_video(root: Path, video: int) -> Path | None:
    """ROOT/videos/NN.<ext> for a release video number, or None."""
    for ext in VIDEO_EXTENSIONS:
        path = root / "videos" / f"{video_name(video)}{ext}"
        if path.is_file():
            return path
    return None


def download(root: str | Path, from_dir: str | Path | None = None, videos: bool = True,
             base_url: str | None = None, link: bool = False, console=None) -> DownloadResult:
    """Get the MTL-AQA release into ROOT/release, write the dataset root, then get the videos.

    `from_dir`: a local copy of the release (its folder, or one holding `MTL-AQA_dataset_release/`),
    copied (or hard-linked with `link`) instead of downloaded; its `videos/NN.*` or `NN.*` files are
    taken too. Videos not found locally are fetched with yt-dlp when `videos` and yt-dlp is installed;
    the rest are listed in `missing_videos` with their URLs. A ROOT holding another dataset is
    refused; a new ROOT is removed again when nothing could be fetched into it.
    """
    from aqa_cli.datasets.mtl_aqa import download as dl

    root = Path(root)
    files = release_files(base_url)
    source = None
    if from_dir is not None:
        source = Path(from_dir)
        if (source / "MTL-AQA_dataset_release").is_dir():
            source = source / "MTL-AQA_dataset_release"
        if not source.is_dir():
            raise DataError(f"--from {source}: not a folder")
    _refuse_other_dataset(root)
    with dl.writing_into(root):
        if source is not None:
            # Files go to ROOT/release/...; the local copy has them at its top level.
            report = dl.copy_all(root, source, files, link=link, strip=f"{RELEASE_DIR}/")
            fetched = report.fetched
        else:
            report = dl.fetch_all(root, files, console=console)
            fetched = report.fetched + report.kept
    release = load_release(root / RELEASE_DIR)
    samples = write_annotations(root, release)
    result = DownloadResult(root, fetched, len(samples),
                            problems=[f"{p}: {why}" for p, why in report.failed.items()])
    needed = sorted({k[0] for k in release.annotations})
    for video in needed:
        path = find_video(root, video)
        if path is None and from_dir is not None:
            path = _copy_local_video(root, Path(from_dir), video, link)
        if path is not None:
            result.videos[video] = path.relative_to(root).as_posix()
        else:
            result.missing_videos[video] = release.videos.get(video, "")
    if videos and result.missing_videos:
        command = dl.yt_dlp_command()
        if command is None:
            result.problems.append(f"yt-dlp is not installed: {dl.YT_DLP_INSTALL}")
        else:
            for video, url in list(result.missing_videos.items()):
                try:
                    path = dl.fetch_video(url, root, f"videos/{video_name(video)}", command)
                except DataError as exc:
                    result.problems.append(str(exc))
                    continue
                result.videos[video] = path.relative_to(root).as_posix()
                del result.missing_videos[video]
    return result


def _refuse_other_dataset(root: Path) -> None:
    """A UsageError when ROOT/dataset.yaml belongs to another dataset: download would replace its
    dataset.yaml, annotations.jsonl and splits."""
    meta = root / "dataset.yaml"
    if not meta.is_file():
        return
    try:
        name = (yaml.safe_load(meta.read_text()) or {}).get("name")
    except (yaml.YAMLError, AttributeError, OSError, UnicodeDecodeError):
        name = None  # unreadable: not ours to overwrite either
    if name != NAME:
        what = f"the {name!r} dataset" if isinstance(name, str) else "a dataset.yaml aqa cannot read"
        raise UsageError(f"{root}: holds {what}, not {NAME}", hint="choose a new or empty folder for MTL-AQA")


def _copy_local_video(root: Path, source: Path, video: int, link: bool) -> Path | None:
    from aqa_cli.datasets.mtl_aqa.download import copy_file

    for folder in (source / "videos", source / "whole_videos", source):
        for ext in VIDEO_EXTENSIONS:
            src = folder / f"{video_name(video)}{ext}"
            if src.is_file():
                target = root / "videos" / src.name
                copy_file(src, target, link)
                return target
    return None


# ---------------------------------------------------------------------------------------------
