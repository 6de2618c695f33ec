"""Data-parallel training over ``torch.distributed`` (gloo on the CPU, NCCL on GPUs).

Launch with ``torchrun`` (``paretorec train CONFIG --nproc N`` wraps it); a process group
initialised before :meth:`Trainer.fit` (:func:`init_distributed`) makes the fit
data-parallel. The design gives the same parameters as one process over the same global
batch order (up to float summation order):

* **Shards.** Rank ``r`` of ``W`` keeps the training rows ``i`` with ``i % W == r`` on its
  device. Every rank draws the same permutation of all rows each epoch (same seed); global
  batch ``b`` is positions ``[b*B, (b+1)*B)`` of it, and each rank computes on the rows of
  that batch it owns (:func:`epoch_plan`), so the global batch, not the per-rank one, is
  what the optimiser steps on.
* **Global losses.** Each task's loss is a mean over the rows where its label exists. A
  rank's share is ``loss_r * n_r / N`` (``n_r`` its labelled rows, ``N`` the all-reduced
  total); the shares are all-reduced (summed) inside the graph (:class:`_GlobalSum`), so
  every strategy sees the exact global losses: GradNorm's loss ratios, uncertainty
  weighting's present-task mask and log-variance terms, Chebyshev's reference point and
  DWA's epoch means are those of one process. The all-reduce's backward scales the
  incoming gradient by ``W``, so averaging the ranks' gradients
  (:func:`average_gradients`, one coalesced all-reduce per step) gives the global
  gradient, and terms every rank computes alike (a strategy's own parameters) stay exact.
* **Aggregators** (torchjd weightings: MGDA, UPGrad, ...): each rank computes the
  Jacobian of the global losses on its rows; the Jacobians are all-reduced (averaged:
  ``m x P`` numbers per step) before the Gramian, so every rank solves the same weighting
  problem on the global task gradients. GradNorm likewise averages the per-task gradients
  on the last shared layer before taking their norms.
* **Refused** under DDP, with a message: strategies this module does not know
  (a user's ``Strategy`` subclass without ``supports_distributed = True``), regularisers
  (they see one rank's rows), and BatchNorm towers (per-rank batch statistics). Dropout
  works but draws different masks than one process would.
* Validation runs on every rank over the whole validation set (identical parameters give
  identical metrics, so early stopping agrees without a broadcast); checkpoints and
  metrics are written by rank 0 only, atomically (:func:`paretorec._artifacts.write_artifact`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .._distributed import (
    DistributedContext,
    average_gradients,
    current,
    global_mean,
    init_distributed,
    is_main_process,
)
from .._validation import ParetorecError

__all__ = [
    "DistributedContext",
    "average_gradients",
    "check_supported",
    "current",
    "epoch_plan",
    "global_losses",
    "global_mean",
    "init_distributed",
    "is_main_process",
    "label_counts",
    "shard_positions",
]


def shard_positions(n: int, context: DistributedContext) -> Tensor:
    """The rows rank ``r`` keeps: ``r, r + W, r + 2W, ...``."""
    return torch.arange(context.rank, n, context.world_size, dtype=torch.int64)


def epoch_plan(
    permutation: Tensor, batch_size: int, context: DistributedContext
) -> tuple[Tensor, list[int]]:
    """This rank's rows in the epoch's order (local positions) and the bounds of each
    global batch within them (``len(bounds) == n_batches + 1``)."""
    mine = permutation % context.world_size == context.rank
    local = permutation[mine] // context.world_size
    counts = torch.cumsum(mine.to(torch.int64), 0)
    n = permutation.numel()
    ends = [min(stop, n) for stop in range(batch_size, n + batch_size, batch_size)]
    bounds = [0] + [int(counts[end - 1]) for end in ends]
    return local, bounds


class _GlobalSum(torch.autograd.Function):
    """All-reduce (sum) in the forward pass; the backward scales by the world size, so that
    averaging the ranks' parameter gradients afterwards gives the global gradient."""

    @staticmethod
    def forward(ctx: Any, shares: Tensor, world_size: int) -> Tensor:
        import torch.distributed as dist

        total = shares.detach().clone()
        dist.all_reduce(total)
        ctx.world_size = world_size
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.world_size, None


def label_counts(model: Any, labels: Tensor, mask: Tensor, bounds: Sequence[int]) -> Tensor:
    """Labelled rows per task in each global batch, summed over the ranks (one all-reduce
    per epoch): shape (n_batches, n_tasks), float64."""
    import torch.distributed as dist

    _, loss_mask = model.loss_labels(labels, mask)
    cumulative = torch.cat(
        [torch.zeros(1, loss_mask.shape[1], dtype=torch.float64, device=loss_mask.device),
         torch.cumsum(loss_mask.to(torch.float64), 0)]
    )  # fmt: skip
    index = torch.as_tensor(bounds, device=loss_mask.device)
    counts = cumulative[index[1:]] - cumulative[index[:-1]]
    dist.all_reduce(counts)
    return counts


def global_losses(
    model: Any,
    losses: Tensor,
    labels: Tensor,
    mask: Tensor,
    total: Tensor,
    context: DistributedContext,
) -> Tensor:
    """The per-task losses of the global batch from this rank's masked means (``total``:
    the batch's labelled rows per task over every rank, from :func:`label_counts`)."""
    _, loss_mask = model.loss_labels(labels, mask)
    local = loss_mask.sum(0).to(torch.float64)
    shares = losses * (local / total.clamp_min(1.0)).to(losses.dtype)
    result: Tensor = _GlobalSum.apply(shares, context.world_size)
    return result


def check_supported(
    model: Any, strategy: Any, regularizer: Any, context: DistributedContext | None = None
) -> None:
    """Refuse what cannot train data-parallel with results equal to one process
    (``context``: the process group's, by default the current one; nothing under one
    process)."""
    from ._strategies import STRATEGIES

    context = context or current()
    if context is None:
        return
    known = type(strategy) in STRATEGIES.values()
    if not known and not getattr(strategy, "supports_distributed", False):
        raise ParetorecError(
            f"strategy {type(strategy).__name__} cannot run under DDP (world size "
            f"{context.world_size}): it is not one of {', '.join(STRATEGIES)} and does not "
            "declare supports_distributed = True (it must see global losses; see "
            "paretorec.multitask._distributed)"
        )
    if regularizer is not None:
        raise ParetorecError(
            "regularizer cannot run under DDP: it would see one rank's rows, not the global "
            "batch; train without it or in one process"
        )
    if any(
        isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d))
        for m in model.modules()
    ):
        raise ParetorecError(
            "batch_norm=True cannot run under DDP (each rank would normalise with its own "
            "rows' statistics); set batch_norm=False or train in one process"
        )


def all_parameters(model: torch.nn.Module, strategy: Any) -> Sequence[Tensor]:
    return [*model.parameters(), *strategy.parameters()]
