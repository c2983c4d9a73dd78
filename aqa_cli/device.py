"""Where the work runs: the one `resolve_device` behind every `--device`."""

from __future__ import annotations

from aqa_cli.errors import UsageError


def resolve_device(name: str = "auto"):
    """A `torch.device` for `--device`: "auto" → CUDA when present, else CPU; "cuda" / "cuda:N" without
    that GPU is a UsageError, never a silent fallback to the CPU."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2] or "0"
        if not index.isdigit():
            raise UsageError(f"device {name!r}: expected cuda or cuda:N")
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r}: CUDA is not available on this machine", hint="use --device cpu")
        if int(index) >= torch.cuda.device_count():
            raise UsageError(f"device {name!r}: no such GPU (found {torch.cuda.device_count()})")
        return torch.device(f"cuda:{index}")
    raise UsageError(f"device {name!r}: expected auto, cpu, cuda or cuda:N")
