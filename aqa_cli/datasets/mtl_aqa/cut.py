"""`aqa data preprocess mtl-aqa`: cut every dive's frames out of its source video into the root.

Each dive becomes ROOT/frames/<id>.npy: the WINDOW frames ending at its end frame plus PAD on each
side, resized while decoding, written atomically; each video is decoded once, up to its last dive.
"""

from __future__ import annotations

from __future__ import annotations
from dataclasses import dataclass, field
from pathlib import Path
from aqa_cli.datasets.layout import DatasetInfo, Sample
from aqa_cli.datasets.mtl_aqa.adapter import PAD, RELEASE_DIR, VAL_FRACTION, WINDOW, find_video, load_release, sample_id, to_samples, write_annotations

HIGH_FPS = 40.0  # above this, a download is a 50/60 fps variant, not what the release was annotated on


@dataclass
class PreprocessReport:
    """What `preprocess` did. Ids are sample ids ('01_007')."""

    root: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # frames already there and valid
    missing_videos: dict[int, int] = field(default_factory=dict)  # video → dives it holds
    failed: dict[str, str] = field(default_factory=dict)  # id → reason
    fps: dict[int, float] = field(default_factory=dict)  # video → frame rate
    warnings: list[str] = field(default_factory=list)


def window(end_frame: int) -> tuple[int, int]:
    """Inclusive 0-based frame range stored for a dive ending at 0-based `end_frame`:
    the WINDOW frames ending there plus PAD on each side."""
    return end_frame - WINDOW + 1 - PAD, end_frame + PAD


def frames_ok(path: Path, shape: tuple[int, int, int, int]) -> bool:
    """True when `path` is a complete uint8 .npy of `shape` (read from its header, memory-mapped)."""
    import numpy as np

    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return False
    return arr.dtype == np.uint8 and arr.shape == shape


def preprocess(root: str | Path, workers: int = 1, size: tuple[int, int] = (171, 128),
               val_fraction: float = VAL_FRACTION, console=None) -> PreprocessReport:
    """Cut every dive of ROOT/release from ROOT/videos into ROOT/frames/<id>.npy and write the root.

    Frames: uint8 (WINDOW + 2·PAD, H, W, 3) at `size` (width, height), resized by libswscale while
    decoding, each video decoded once in one sequential pass, `workers` videos at a time, every file
    written atomically. Dives whose frames are already valid are skipped, so an interrupted run
    resumes; videos that are missing are listed and their dives left out of frames/ (`aqa data
    info` counts them as missing); a video that cannot be decoded fails its dives, with the reason,
    and the others go on. dataset.yaml is written once every video has been tried, so a run that
    stops early leaves the previous one describing the root. `size` outside 32-1920 x 32-1080 is a
    UsageError; frames stored at another size are cut again, which `console` is told first.
    """
    root = Path(root)
    DatasetInfo.check_size(size)
    release = load_release(root / RELEASE_DIR)
    shape = (WINDOW + 2 * PAD, size[1], size[0], 3)
    report = PreprocessReport(root)
    frames_dir = root / "frames"
    frames_dir.mkdir(exist_ok=True)
    for leftover in frames_dir.glob(".*.tmp"):  # temporary files of a run that was killed
        leftover.unlink()
    stored = _stored_size(frames_dir)
    if stored not in (None, size) and console is not None:
        console.print(f"frames in {frames_dir} are {stored[0]}x{stored[1]}: cutting every dive again at "
                      f"{size[0]}x{size[1]}", markup=False, highlight=False)
    jobs = []
    samples = {s.id: s for s in to_samples(release)}
    by_video: dict[int, list[Sample]] = {}
    for key in sorted(release.annotations):
        by_video.setdefault(key[0], []).append(samples[sample_id(key)])
    for video, group in sorted(by_video.items()):
        path = find_video(root, video)
        if path is None:
            report.missing_videos[video] = len(group)
            continue
        todo = []
        for s in group:
            if frames_ok(frames_dir / f"{s.id}.npy", shape):
                report.skipped.append(s.id)
            else:
                todo.append((s.id, s.end_frame))
        if todo:
            jobs.append((video, str(path), todo, str(frames_dir), size))
        elif (fps := _probe_fps(path)) is not None:
            report.fps[video] = fps
    total = sum(len(job[2]) for job in jobs)
    with _dive_progress(console, total) as advance:
        for video, written, failed, fps, warnings in _run(jobs, workers, advance):
            report.written += written
            report.failed.update(failed)
            if fps is not None:
                report.fps[video] = fps
            report.warnings += warnings
            advance(len(failed))  # the written dives moved the bar as each was saved
    rates = sorted(report.fps.values())
    write_annotations(root, release, val_fraction, fps=rates[len(rates) // 2] if rates else 0.0, size=size)
    return report


def _run(jobs: list, workers: int, on_dive=None):
    """Results of `_cut_video` per job, as they finish; in this process when workers <= 1.

    `on_dive(1)` is called after each dive written, from this process: workers report through a
    queue, so the caller's progress bar moves per dive rather than per hour-long video."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _cut_video(*job, on_dive=on_dive)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from queue import Empty

    with multiprocessing.Manager() as manager, ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        queue = manager.Queue()
        pending = {pool.submit(_cut_video, *job, on_dive=queue.put) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            while True:  # a worker puts before it returns, so a finished video's dives are all here
                try:
                    n = queue.get_nowait()
                except Empty:
                    break
                if on_dive is not None:
                    on_dive(n)
            for future in done:
                yield future.result()


def _probe_fps(path: Path) -> float | None:
    """The frame rate of a video, or None when it cannot be read (its frames are already cut)."""
    from aqa_cli import video
    from aqa_cli.errors import VideoDecodeError

    try:
        return video.probe(path).fps
    except VideoDecodeError:
        return None


def _stored_size(frames_dir: Path) -> tuple[int, int] | None:
    """(width, height) of the frames already in `frames_dir`, read from one file's header; None
    when there are none."""
    import numpy as np

    for path in sorted(frames_dir.glob("*.npy")):
        try:
            shape = np.load(path, mmap_mode="r").shape
        except (OSError, ValueError, EOFError):
            continue
        if len(shape) == 4:
            return shape[2], shape[1]
    return None


def _cut_video(video_number: int, path: str, items: list[tuple[str, int]], frames_dir: str,
               size: tuple[int, int], on_dive=None):
    """Cut `items` ((id, 0-based end frame)) out of one video → (video, written ids, {id: reason},
    fps or None when the video cannot be read, warnings), calling `on_dive(1)` after each dive
    written. Runs in a worker process; everything it returns is plain data."""
    from aqa_cli import video
    from aqa_cli.datasets.layout import save_frames
    from aqa_cli.errors import VideoDecodeError

    try:
        info = video.probe(path)
    except VideoDecodeError as exc:  # one unreadable download must not stop the other videos
        return video_number, [], {sample: str(exc) for sample, _ in items}, None, []
    name = Path(path).name
    warnings = []
    needed = max(window(end)[1] for _, end in items) + 1
    if info.frames and info.frames < needed:
        warnings.append(f"{name}: {info.frames} frames at {info.fps:g} fps, but the annotations need frame "
                        f"{needed - 1} (0-based): this is not the download the release was annotated on "
                        f"(another frame rate or edit), so its windows will not match the dives")
    if info.fps > HIGH_FPS:
        warnings.append(f"{name}: {info.fps:g} fps; the release's frame numbers were counted on the "
                        "broadcast's 25/30 fps upload: download that format instead")
    failed, written = {}, []
    ranges, ids = [], []
    for sample, end in items:
        first, last = window(end)
        if first < 0:
            failed[sample] = f"window starts at frame {first}, before the video"
            continue
        ranges.append((first, last))
        ids.append(sample)
    done = set()
    try:
        for i, frames in video.iter_frame_ranges(path, ranges, size):
            save_frames(Path(frames_dir) / f"{ids[i]}.npy", frames)
            written.append(ids[i])
            done.add(i)
            if on_dive is not None:
                on_dive(1)
    except VideoDecodeError as exc:
        for i, sample in enumerate(ids):
            if i not in done:
                failed[sample] = str(exc)
    return video_number, written, failed, info.fps, warnings


class _dive_progress:
    """A Rich progress bar over dives on `console` (stderr); a no-op without one."""

    def __init__(self, console, total: int):
        self.console, self.total = console, total

    def __enter__(self):
        if self.console is None or not self.total:
            return lambda n: None
        from rich.progress import Progress

        self.progress = Progress(console=self.console, transient=True)
        self.progress.__enter__()
        task = self.progress.add_task("cutting dives", total=self.total)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc):
        if hasattr(self, "progress"):
            self.progress.__exit__(*exc)
        return False
