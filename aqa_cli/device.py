"""Where the work runs: the one `resolve_device` behind every `--device`, and a process's place in a
torchrun job (`init_distributed`, `Distributed`), which training and batch scoring share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a torchrun job (world 1 when run plainly) and the device it computes
    on. Every collective below must be called by every process at the same point of the program."""

    device: Any  # torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, writes files and prints."""
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any process: each reads its own clock or state, and one that acted
        alone would leave the others waiting in the next collective for ever."""
        if self.world == 1:
            return flag
        import torch
        import torch.distributed as dist

        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` (any picklable object) on every process, once all have reached this point."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        dist.barrier()
        shared = [value]
        dist.broadcast_object_list(shared, src=0)
        return shared[0]

    def close(self) -> None:
        """Wait for every process, then leave the process group (a no-op when run plainly)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def init_distributed(name: str = "auto") -> Distributed:
    """This process's place and device: under torchrun (WORLD_SIZE > 1) it joins the process group
    (gloo on CPU, nccl on CUDA, each process on GPU `LOCAL_RANK`); else world 1 on `resolve_device(name)`."""
    import torch
    import torch.distributed as dist

    device = resolve_device(name)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device(f"cuda:{local}")
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(device, rank, world, local)
