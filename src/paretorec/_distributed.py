"""Process-group helpers shared by every data-parallel trainer (``torch.distributed``).

The multi-task trainer (:mod:`paretorec.multitask._distributed`) and the sequential model
use them; see the former for the design (shards, global losses, gradient averaging).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the process group."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> DistributedContext | None:
    """The process group this process trains in, or ``None`` for a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size()
    return DistributedContext(dist.get_rank(), world) if world > 1 else None


def is_main_process() -> bool:
    context = current()
    return context is None or context.is_main


def init_distributed(device: str = "auto") -> DistributedContext | None:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ...).

    NCCL when the device is CUDA (each process on GPU ``LOCAL_RANK``), gloo otherwise.
    Returns ``None`` outside ``torchrun`` (``WORLD_SIZE`` unset or 1).
    """
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return current()


def global_mean(tensor: Tensor) -> Tensor:
    """The mean of ``tensor`` over the ranks (``tensor`` itself in one process)."""
    context = current()
    if context is None:
        return tensor
    import torch.distributed as dist

    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out / context.world_size


def average_gradients(
    parameters: Iterable[Tensor], context: DistributedContext, *, mean: bool = True
) -> None:
    """Average (``mean=False``: sum) every parameter's gradient over the ranks in one
    coalesced all-reduce (a missing gradient counts as zero, so every rank sends the same
    layout)."""
    import torch.distributed as dist

    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
    dist.all_reduce(flat)
    if mean:
        flat /= context.world_size
    offset = 0
    for p in params:
        assert p.grad is not None
        size = p.numel()
        p.grad.copy_(flat[offset : offset + size].view_as(p))
        offset += size


def global_sum(tensor: Tensor) -> Tensor:
    """The sum of ``tensor``'s value over the ranks (no gradient; itself in one process)."""
    out = tensor.detach().clone()
    if current() is not None:
        import torch.distributed as dist

        dist.all_reduce(out)
    return out
