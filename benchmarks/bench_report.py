"""What `aqa score --report` adds per dive: the time to write a dive's page and its size, against scoring.

For each video: the time of scoring it (`Scorer.score`: decode + model, warm), of decoding the strip's
frames at report size (`read_even(n=8)` into report.FRAME_BOX: a second pass over the file, the cost when
the report does not reuse the scorer's decode), of writing the page from decoded frames
(`write_dive_report`: 8 JPEG encodes + HTML + an atomic write), and the page's size. The issue's goals:
under 0.5 s added per dive on 2 cores, and 50 dives under 100 MB of HTML (2 MB a dive).

Videos: the bundled SynDive example (172x128) and a synthetic 720p H.264 clip, 4 s at 25 fps, with
per-frame noise (benchmarks/bench_video.py's generator: broadcast-like bitrate, JPEG's hard case).

Run: python benchmarks/bench_report.py [--weights FILE] [--video FILE ...] [--repeats 5]
(about a minute on 2 idle cores; every time is the best of --repeats, the least disturbed run)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video import best_of, synthetic_720p  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "syndive_107C_1m.mp4"


def measure(video: Path, scorer, out_dir: Path, repeats: int) -> dict[str, float]:
    """Seconds to score, decode the strip and write the page of `video`, and the page's bytes."""
    from aqa_cli import report
    from aqa_cli.scoring import SYNTHETIC_NOTE
    from aqa_cli.video import probe, read_even

    info = probe(video)
    size = report.strip_size(info.width, info.height)
    result = scorer.score(video)
    frames = read_even(video, n=report.STRIP_FRAMES, size=size)
    page = out_dir / f"{video.stem}.html"

    def write():
        report.write_dive_report(result, frames, page, scorer_name=scorer.name, synthetic_note=SYNTHETIC_NOTE,
                                 duration=info.duration)

    return {"score": best_of(lambda: scorer.score(video), repeats),
            "strip_decode": best_of(lambda: read_even(video, n=report.STRIP_FRAMES, size=size), repeats),
            "write": best_of(write, repeats), "bytes": page.stat().st_size,
            "size": f"{info.width}x{info.height}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--weights", help="weights to score with (default: the bundled demo weights)")
    parser.add_argument("--video", type=Path, action="append", help="a video to measure (repeatable; default: "
                        "the SynDive example and a synthetic 720p clip)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing; the best is kept")
    args = parser.parse_args(argv)

    import torch

    from aqa_cli import load_model

    torch.set_num_threads(2)
    scorer = load_model(args.weights, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        videos = args.video
        if not videos:
            videos = [EXAMPLE, Path(tmp) / "synthetic_720p.mp4"]
            synthetic_720p(videos[1], 100)
        print(f"{'video':<24} {'size':>9} {'score ms':>9} {'strip decode ms':>16} {'write ms':>9} {'page KB':>8} "
              f"{'50 dives MB':>12}")
        for video in videos:
            m = measure(Path(video), scorer, Path(tmp), args.repeats)
            print(f"{Path(video).name[:24]:<24} {m['size']:>9} {m['score'] * 1e3:>9.0f} "
                  f"{m['strip_decode'] * 1e3:>16.0f} {m['write'] * 1e3:>9.1f} {m['bytes'] / 1e3:>8.1f} "
                  f"{50 * m['bytes'] / 1e6:>12.1f}")


if __name__ == "__main__":
    main()
