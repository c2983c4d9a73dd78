"""Rhythmic Gymnastics: the release's score files (the real ones when ../shared has them) and the root
`prepare` writes from them and a folder of stand-in videos."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.datasets.rg import APPARATUS, prepare, read_annotations, read_release, read_routines
from aqa_cli.errors import DataError, UsageError

SHARED_RG = Path(__file__).resolve().parents[2] / "shared" / "data" / "rg"
HEADER = "Video_Name\tDifficulty_Score    Execution_Score Total_Score\tPenalty\tVideo_length\n"


def real_release() -> Path:
    if not (SHARED_RG / "train.txt").is_file():
        pytest.skip(f"the RG release's score files are not at {SHARED_RG}")
    return SHARED_RG


def write_release(folder: Path, train: list[str], test: list[str]) -> Path:
    """A small release folder in the real files' format (tabs, the header's odd spacing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        (folder / f"{name}.txt").write_text(HEADER + "".join(r + "\n" for r in rows))
    return folder


def test_the_real_release_has_1000_routines_whose_total_adds_up_and_no_ball_134():
    splits = read_annotations(real_release())
    routines = splits["train"] + splits["test"]
    assert len(routines) == 1000 and len({r.id for r in routines}) == 1000
    for name, per_apparatus in (("train", 200), ("test", 50)):
        assert Counter(r.apparatus for r in splits[name]) == {a: per_apparatus for a in APPARATUS}
    ids = {r.id for r in routines}
    assert "Ball_134" not in ids and "Ball_251" in ids and "Ribbon_250" in ids
    assert all(abs(r.difficulty + r.execution - r.penalty - r.total) <= 0.011 for r in routines)
    assert sum(abs(r.difficulty + r.execution - r.penalty - r.total) > 0.001 for r in routines) == 17  # a cent off
    assert min(r.length_s for r in routines) == 87 and max(r.length_s for r in routines) == 99
    first = splits["train"][0]
    assert (first.id, first.difficulty, first.execution, first.total, first.penalty) == ("Ball_001", 10.5, 8.3, 18.8, 0.0)


def test_prepare_writes_the_root_per_apparatus_and_lists_the_missing_videos(tmp_path):
    from media import make_video

    videos = tmp_path / "videos"
    (videos / "hoop").mkdir(parents=True)
    make_video(videos / "Ball_001.mp4", 4)
    make_video(videos / "hoop" / "Hoop_250.mp4", 4)
    (videos / "Ball_134.mp4").write_bytes(b"")  # not a routine of the release: ignored
    summary = prepare(tmp_path / "rg", real_release(), videos)
    assert summary.counts == {"train": 800, "test": 200} and summary.linked == 2 and len(summary.missing) == 998
    root = DatasetRoot(tmp_path / "rg")
    assert root.info.name == "rg" and len(root.samples) == 1000 and root.split("val") == []
    assert len(root.split("train")) == 800 and [len(root.split(f"Ribbon/{s}")) for s in ("train", "test")] == [200, 50]
    assert {s.id.split("_")[0] for s in root.split("Clubs/test")} == {"Clubs"}
    assert root.samples["Ball_001"].final_score == 18.8 and root.samples["Ball_001"].video == "Ball_001.mp4"
    assert (root.root / "videos" / "Hoop_250.mp4").resolve() == (videos / "hoop" / "Hoop_250.mp4").resolve()
    assert root.samples["Ball_002"].video == "" and "Ball_002" in (root.root / "missing.txt").read_text().split()
    assert read_routines(root.root)["Ball_002"].penalty == 0.6
    again = prepare(tmp_path / "rg", real_release())  # no --from: the links made before are kept
    assert again.linked == 2 and DatasetRoot(tmp_path / "rg").samples["Hoop_250"].video == "Hoop_250.mp4"


def test_prepare_refuses_another_dataset_root(tmp_path):
    from trainroot import make_root

    make_root(tmp_path / "dives", n=4, splits=(2, 1, 1))
    with pytest.raises(UsageError, match="trainroot"):
        prepare(tmp_path / "dives", real_release())


@pytest.mark.parametrize("row, message", [
    ("Ball_001\t10.50\t8.30\t18.90\t0.00\t92", "not Difficulty"),
    ("Ball_001\t10.50\t8.30\t18.80\t0.00", "expected 6 fields"),
    ("Rope_001\t10.50\t8.30\t18.80\t0.00\t92", "unknown apparatus"),
    ("Ball_001\t10.50\tabc\t18.80\t0.00\t92", "expected numbers"),
])
def test_a_wrong_row_is_refused_with_its_line(tmp_path, row, message):
    folder = write_release(tmp_path / "release", ["Ball_002\t7.20\t4.20\t10.80\t0.60\t93", row], [])
    with pytest.raises(DataError, match=f"train.txt:3: .*{message}"):
        read_release(folder / "train.txt")


def test_a_wrong_header_or_a_routine_in_both_files_is_refused(tmp_path):
    row = "Ball_002\t7.20\t4.20\t10.80\t0.60\t93"
    folder = write_release(tmp_path / "release", [row], [row])
    with pytest.raises(DataError, match="both train.txt and test.txt"):
        read_annotations(folder)
    (folder / "test.txt").write_text("name d e t p l\n")
    with pytest.raises(DataError, match="test.txt:1: expected the header"):
        read_annotations(folder)


class MeanBackbone:
    """A stand-in backbone: each clip's mean colour per frame, flattened (B, 3 * clip_len)."""

    def to(self, device):
        return self

    def eval(self):
        return self

    @staticmethod
    def features(x):
        return x.mean(dim=(3, 4)).flatten(1)


def grey_ramp(start: int):
    """color_fn of make_video: frame i is a solid grey of level start + 2 i."""
    return lambda i: (start + 2 * i,) * 3


def test_routines_are_read_from_their_videos_in_stride_clips_and_carry_their_apparatus(tmp_path):
    from media import make_video

    from aqa_cli.datasets.features import FeatureIndex
    from aqa_cli.features import extract

    videos = tmp_path / "videos"
    videos.mkdir()
    for name, frames in (("Ball_001", 70), ("Ball_002", 40), ("Hoop_250", 100)):
        make_video(videos / f"{name}.mp4", frames, color_fn=grey_ramp(20))
    prepare(tmp_path / "rg", real_release(), videos)
    root = DatasetRoot(tmp_path / "rg")
    assert Counter(s.apparatus for s in root.split("train")) == {a: 200 for a in APPARATUS}
    index = FeatureIndex(backbone="mean", weights_sha256="0" * 64, clip_len=16, stride=16, size=32, dim=48)
    summary = extract(root.root, tmp_path / "feats", MeanBackbone(), index, device="cpu", batch=2)
    assert summary.written == 3 and len(summary.missing) == 997 and "Ball_134" not in summary.missing
    lengths = {p.stem: np.load(p).shape for p in (tmp_path / "feats").glob("*.npy")}
    assert lengths == {"Ball_001": (4, 48), "Ball_002": (2, 48), "Hoop_250": (6, 48)}  # floor(frames / 16) clips
    # row k, frame j of the clip (red channel) is frame 16 k + j: grey 20 + 2 (16 k + j), scaled to [-1, 1]
    got = np.load(tmp_path / "feats" / "Hoop_250.npy").astype(float)[:, :16]
    want = (20 + 2 * (16 * np.arange(6)[:, None] + np.arange(16))) / 255 * 2 - 1
    assert np.abs(got - want).max() < 0.05
    with pytest.raises(UsageError, match="--stride"):
        extract(root.root, tmp_path / "window", MeanBackbone(), FeatureIndex(
            backbone="mean", weights_sha256="0" * 64, clip_len=16, segments=10, size=32, dim=48), device="cpu")


def small_rg(tmp_path: Path) -> tuple[Path, Path]:
    """A 2-apparatus release (8 train and 4 test routines each) with stand-in videos of 32-80 frames whose
    brightness follows the score, extracted in 16-frame stride clips: (root, features)."""
    from media import make_video

    from aqa_cli.datasets.features import FeatureIndex
    from aqa_cli.features import extract

    rows: dict[str, list[str]] = {"train": [], "test": []}
    videos = tmp_path / "videos"
    videos.mkdir()
    for apparatus in ("Ball", "Hoop"):
        for i in range(12):
            d, e = 5.0 + (i * 7 % 12) / 2, 6.0
            name = f"{apparatus}_{i + 1:03d}"
            rows["train" if i < 8 else "test"].append(f"{name}\t{d:.2f}\t{e:.2f}\t{d + e:.2f}\t0.00\t90")
            make_video(videos / f"{name}.mp4", 32 + 16 * (i % 4), color_fn=grey_ramp(int(d * 10)))
    prepare(tmp_path / "rg", write_release(tmp_path / "release", rows["train"], rows["test"]), videos)
    index = FeatureIndex(backbone="mean", weights_sha256="0" * 64, clip_len=16, stride=16, size=32, dim=48)
    extract(tmp_path / "rg", tmp_path / "feats", MeanBackbone(), index, device="cpu")
    return tmp_path / "rg", tmp_path / "feats"


def test_one_model_per_apparatus_from_the_command_line_and_eval_reports_each_and_the_fisher_z_mean(tmp_path):
    import json

    from typer.testing import CliRunner

    from aqa_cli.checkpoint import Checkpoint
    from aqa_cli.cli import app
    from aqa_cli.metrics import fisher_z_mean

    root, feats = small_rg(tmp_path)
    runner = CliRunner()
    small = ["train.epochs=3", "train.batch_size=2", "semi.width=8", "semi.heads=2", "semi.layers=1",
             "semi.unlabeled_batch=2"]
    out = tmp_path / "runs"
    res = runner.invoke(app, ["train", "--task", "s4aqa", "--data", str(root), "--features", str(feats),
                              "--labeled-ratio", "0.5", "--apparatus", "all", "--out", str(out), "-q",
                              *[x for s in small for x in ("--set", s)]])
    assert res.exit_code == 0, (res.output, res.exception)
    summary = json.loads((out / "report.json").read_text())
    assert set(summary["test_spearman"]) == {"Ball", "Hoop"}
    ckpt = Checkpoint.load(out / "Ball" / "best.pt")
    assert ckpt.data["group"] == "Ball" and ckpt.data["padded"] and ckpt.preprocess.clips == 5  # 80 frames / 16
    assert ckpt.data["train_samples"] == 4 and ckpt.data["unlabeled"] == {"train": 4}
    res = runner.invoke(app, ["eval", "--weights", str(out), "--data", str(root), "--features", str(feats), "-f", "json"])
    assert res.exit_code == 0, (res.output, res.exception)
    report = json.loads(res.stdout)
    for apparatus in ("Ball", "Hoop"):
        assert report[apparatus]["n"] == 4
        trained = json.loads((out / apparatus / "report.json").read_text())["test"]
        assert report[apparatus] == pytest.approx(trained, nan_ok=True)
    rhos = [report[a]["spearman"] for a in ("Ball", "Hoop")]
    if None not in rhos:
        assert report["fisher_z_mean"]["spearman"] == pytest.approx(fisher_z_mean(rhos))
    res = runner.invoke(app, ["eval", "--weights", str(out / "Hoop" / "best.pt"), "--data", str(root),
                              "--features", str(feats), "-f", "json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["samples"] == 4 and json.loads(res.stdout)["group"] == "Hoop"
    res = runner.invoke(app, ["eval", "--weights", str(out / "Hoop" / "best.pt"), "--data", str(root)])
    assert isinstance(res.exception, UsageError) and "--features" in res.exception.hint  # aqa's one-line error
    res = runner.invoke(app, ["train", "--task", "regress", "--data", str(root), "--features", str(feats),
                              "--apparatus", "Rope", "--out", str(tmp_path / "rope"), "-q"])
    assert isinstance(res.exception, UsageError) and "it has Ball, Hoop" in str(res.exception)
