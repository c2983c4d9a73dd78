"""Speed of each backbone on this CPU: ms per clip, achieved GFLOP/s, and the ratio to a large matmul.

For C3D (full), the small C3D of the demo model (widths ÷8, fc6 512), MSCADC (16×180×180) and the
Kinetics I3D (16 frames at 224×224, the release's size, and at 112×112, what SynDive's features use), the
single-task model (backbone + score head) runs one video of 6 clips — the clips go through the
backbone as one batch of 6, as `AQAModel` runs them — in inference mode, fp32, random weights
(speed does not depend on them). FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` on
the meta device (no arithmetic), 2 per multiply-add. The reference is a 4096×4096 fp32 matmul, the
best a dense kernel reaches on this machine. Each backbone runs twice:

  contiguous        weights and input in the default NCDHW layout
  channels_last_3d  weights and input in NDHWC, what `build_model` and `AQAModel` use on CPU

Times are the best of --repeats after one warm-up (the machine may be shared: the best is the least
disturbed); the median is printed next to it.

Run: python benchmarks/bench_models.py [--threads N] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from aqa_cli.config import ModelConfig
from aqa_cli.models import build_model

CLIPS = 6
BACKBONES = {
    "c3d": ModelConfig(task="stl"),
    "c3d-small (÷8)": ModelConfig(task="stl", width_divisor=8, feature_dim=512),
    "mscadc": ModelConfig(backbone="mscadc", task="stl", crop_size=180),
    "i3d (224)": ModelConfig(backbone="i3d", task="stl", crop_size=224, feature_dim=1024),
    "i3d (112)": ModelConfig(backbone="i3d", task="stl", crop_size=112, feature_dim=1024),
}


def timings(fn, repeats: int) -> list[float]:
    """Seconds per call of `fn`, after one warm-up call (oneDNN builds its kernels on the first)."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def matmul_gflops(repeats: int, n: int = 4096) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / min(timings(lambda: a @ b, repeats)) / 1e9


def model_flops(cfg: ModelConfig) -> float:
    """FLOPs of one forward pass over one video of CLIPS clips (shapes only, on the meta device)."""
    with torch.device("meta"):
        model = build_model(cfg).eval()
        clips = torch.empty(1, CLIPS, 3, cfg.clip_len, cfg.crop_size, cfg.crop_size)
        with FlopCounterMode(display=False) as counter:
            model(clips)
    return counter.get_total_flops()


def forward_fn(cfg: ModelConfig, layout: torch.memory_format):
    """A no-argument callable running the STL model on one random video, weights and input in `layout`."""
    torch.manual_seed(0)
    model = build_model(cfg).eval().to(memory_format=layout)
    x = torch.randn(CLIPS, 3, cfg.clip_len, cfg.crop_size, cfg.crop_size).contiguous(memory_format=layout)

    def run():
        # The model's own forward minus its CPU conversion to channels_last_3d, so that the
        # contiguous layout is really measured.
        with torch.inference_mode():
            return model.heads(model.backbone(x).unflatten(0, (1, CLIPS)))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default="", help="run only the backbones whose name holds this text")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_gflops(args.repeats)
    load = os.getloadavg()[0]  # other processes on the machine slow everything below alike
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load:.1f}; fp32 matmul 4096²: {peak:.1f} GFLOP/s")
    print(f"{'backbone':16} {'GFLOP/clip':>10} {'layout':17} {'ms/clip best':>12} {'median':>8} "
          f"{'GFLOP/s':>8} {'× matmul':>8}")
    for name, cfg in BACKBONES.items():
        if args.only not in name:
            continue
        flops = model_flops(cfg)
        for label, layout in (("contiguous", torch.contiguous_format),
                              ("channels_last_3d", torch.channels_last_3d)):
            ts = timings(forward_fn(cfg, layout), args.repeats)
            best = min(ts)
            rate = flops / best / 1e9
            print(f"{name:16} {flops / CLIPS / 1e9:10.2f} {label:17} {best / CLIPS * 1e3:12.1f} "
                  f"{statistics.median(ts) / CLIPS * 1e3:8.1f} {rate:8.1f} {rate / peak:8.2f}", flush=True)


if __name__ == "__main__":
    main()
