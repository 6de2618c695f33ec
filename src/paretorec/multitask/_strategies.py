"""Multi-objective training strategies: how per-task losses become parameter gradients.

Interface (the trainer relies on exactly this):

* ``Strategy(n_tasks, **params)``; ``get_strategy(name, n_tasks, **params)`` builds one by name.
* ``strategy.backward(losses, shared_parameters=..., extra_loss=None)`` takes the 1-D tensor of
  per-task losses (graph attached) and fills ``.grad`` of every parameter that requires grad,
  accumulating like ``loss.backward()`` does. ``extra_loss`` (regularisers) is back-propagated
  as is. Returns diagnostics (for example the task weights used) as plain floats.
* ``strategy.parameters()``: learnable strategy parameters the trainer adds to its optimiser
  (for example uncertainty log-variances); empty for most strategies.
* ``strategy.end_epoch(mean_losses)``: called once per epoch with each task's mean training
  loss (DWA uses the history).

Two families live here:

* **Scalarisations** (``fixed``, ``uncertainty``, ``gradnorm``, ``dwa``, ``chebyshev``) turn the
  losses into one scalar and call ``backward`` on it once.
* **Gradient aggregators** (``mgda``, ``upgrad``, ``pcgrad``, ``cagrad``, ``nash_mtl``,
  ``imtl_g``, ``aligned_mtl``) compute the Jacobian of the losses with respect to the shared
  parameters (``torchjd.autojac.jac``), turn it into one update direction with a torchjd
  weighting, and give every other parameter (task towers) the plain gradient of the sum of the
  losses, exactly as ``torchjd.autojac.mtl_backward`` does.

The quadratic and conic programs behind ``upgrad``, ``cagrad`` and ``nash_mtl`` are solved with
scipy here (torchjd's own versions need quadprog / cvxpy, which are optional extras); each solver
solves the same problem as torchjd's and is checked against the problem's optimality conditions
in the tests.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from scipy.optimize import minimize, nnls
from torchjd.aggregation import (
    AlignedMTLWeighting,
    IMTLGWeighting,
    MGDAWeighting,
    PCGradWeighting,
    UPGradWeighting,
    Weighting,
)
from torchjd.autojac import jac
from torchjd.linalg import DualConeProjector, PSDMatrix

from .._validation import (
    ParetorecError,
    check_choice,
    check_fraction,
    check_nonnegative_float,
    check_positive_int,
    show,
)
from ._distributed import global_mean


class Strategy:
    """Base class: a weighted sum of the task losses with fixed weights (1 each by default)."""

    name: ClassVar[str] = "base"

    def __init__(self, n_tasks: int) -> None:
        self.n_tasks = check_positive_int(n_tasks, "n_tasks")

    def backward(
        self,
        losses: torch.Tensor,
        *,
        shared_parameters: Sequence[torch.nn.Parameter],
        extra_loss: torch.Tensor | None = None,
    ) -> dict[str, float]:
        raise NotImplementedError

    def parameters(self) -> list[torch.nn.Parameter]:
        return []

    def end_epoch(self, mean_losses: Sequence[float]) -> None:
        """Observe each task's mean training loss for the finished epoch."""

    def get_params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}(n_tasks={self.n_tasks}{', ' if params else ''}{params})"

    # ----------------------------------------------------------------- shared checks
    def _check_losses(self, losses: Any) -> torch.Tensor:
        if not isinstance(losses, torch.Tensor):
            raise ParetorecError(
                f"losses must be a 1-D torch.Tensor of {self.n_tasks} task losses, "
                f"got {type(losses).__name__}"
            )
        if losses.ndim != 1 or losses.shape[0] != self.n_tasks:
            raise ParetorecError(
                f"losses must have shape ({self.n_tasks},) (one loss per task), "
                f"got {tuple(losses.shape)}"
            )
        if not losses.requires_grad:
            raise ParetorecError(
                "losses must be attached to the autograd graph (requires_grad is False)"
            )
        if not bool(torch.isfinite(losses.detach()).all()):
            raise ParetorecError(f"losses must be finite, got {_floats(losses)}")
        return losses

    def _with_extra(self, total: torch.Tensor, extra_loss: torch.Tensor | None) -> torch.Tensor:
        return total if extra_loss is None else total + _check_extra(extra_loss)


def _floats(values: torch.Tensor | Sequence[float]) -> list[float]:
    if isinstance(values, torch.Tensor):
        return [round(float(v), 6) for v in values.detach().cpu().tolist()]
    return [round(float(v), 6) for v in values]


def _check_extra(extra_loss: Any) -> torch.Tensor:
    if not isinstance(extra_loss, torch.Tensor) or extra_loss.numel() != 1:
        shape = tuple(extra_loss.shape) if isinstance(extra_loss, torch.Tensor) else None
        raise ParetorecError(
            "extra_loss must be a scalar torch.Tensor or None, got "
            f"{type(extra_loss).__name__}{'' if shape is None else f' of shape {shape}'}"
        )
    return extra_loss.reshape(())


def _check_weights(weights: Sequence[float] | None, n_tasks: int) -> list[float]:
    if weights is None:
        return [1.0] * n_tasks
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise ParetorecError(f"weights must be a sequence of numbers, got {show(weights)}")
    values = [float(w) for w in weights]
    if len(values) != n_tasks:
        raise ParetorecError(f"weights must have one entry per task ({n_tasks}), got {len(values)}")
    if any(not (w >= 0.0 and math.isfinite(w)) for w in values):
        raise ParetorecError(f"weights must be non-negative numbers, got {values}")
    return values


def _check_positive_float(value: Any, name: str) -> float:
    number = check_nonnegative_float(value, name)
    if not (number > 0 and math.isfinite(number)):
        raise ParetorecError(f"{name} must be a positive number, got {show(value)}")
    return number


def _check_mean_losses(mean_losses: Any, n_tasks: int) -> list[float]:
    values = [float(v) for v in mean_losses]
    if len(values) != n_tasks:
        raise ParetorecError(
            f"mean_losses must have one entry per task ({n_tasks}), got {len(values)}"
        )
    if not all(math.isfinite(v) for v in values):
        raise ParetorecError(f"mean_losses must be finite, got {values}")
    return values


# =========================================================================== scalarisations
class FixedWeights(Strategy):
    """Weighted sum with fixed weights (the classic lambda scalarisation)."""

    name = "fixed"

    def __init__(self, n_tasks: int, weights: Sequence[float] | None = None) -> None:
        super().__init__(n_tasks)
        self.weights = _check_weights(weights, self.n_tasks)

    def backward(
        self,
        losses: torch.Tensor,
        *,
        shared_parameters: Sequence[torch.nn.Parameter],
        extra_loss: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses = self._check_losses(losses)
        weights = torch.tensor(self.weights, dtype=losses.dtype, device=losses.device)
        self._with_extra((weights * losses).sum(), extra_loss).backward()
        return {f"weight_{i}": w for i, w in enumerate(self.weights)}

    def get_params(self) -> dict[str, Any]:
        return {"weights": list(self.weights)}


TaskKind = Literal["regression", "classification"]
TASK_KINDS = ("regression", "classification")


class UncertaintyWeighting(Strategy):
    r"""Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018).

    Each task has a learnable log-variance :math:`s_i = \log\sigma_i^2` (``parameters()``
    returns them as one tensor of shape ``(n_tasks,)``; the trainer optimises them with the
    model). The objective is

    * regression (Gaussian likelihood): :math:`\tfrac12 e^{-s_i} L_i + \tfrac12 s_i`
      (that is :math:`L_i / 2\sigma_i^2 + \log\sigma_i`);
    * classification (softmax / Bernoulli likelihood with temperature):
      :math:`e^{-s_i} L_i + \tfrac12 s_i` (that is :math:`L_i / \sigma_i^2 + \log\sigma_i`).

    For a fixed loss the optimal log-variance is :math:`\log L_i` (regression) or
    :math:`\log 2L_i` (classification), so a task whose loss is large gets a small weight.
    The log-variances live where the trainer puts the strategy's parameters (the model's
    device); losses are moved to them inside the graph (a handful of scalars). A task
    whose loss is exactly 0 in a batch (the trainer's value for a task without labelled
    rows) has its ``s_i / 2`` term left out for that step, so missing labels do not drift
    its weight.
    """

    name = "uncertainty"

    def __init__(
        self,
        n_tasks: int,
        task_kinds: Sequence[TaskKind] | None = None,
        init_log_variance: float = 0.0,
    ) -> None:
        super().__init__(n_tasks)
        kinds: list[str] = ["regression"] * self.n_tasks if task_kinds is None else list(task_kinds)
        if isinstance(task_kinds, str) or len(kinds) != self.n_tasks:
            raise ParetorecError(
                f"task_kinds must list one kind per task ({self.n_tasks}), got {show(task_kinds)}"
            )
        for kind in kinds:
            check_choice(kind, "task_kinds entry", TASK_KINDS)
        init = float(init_log_variance)
        if not math.isfinite(init):
            raise ParetorecError(f"init_log_variance must be finite, got {init_log_variance!r}")
        self.task_kinds = kinds
        self.init_log_variance = init
        self.log_variance = torch.nn.Parameter(torch.full((self.n_tasks,), init))
        # regression: 1/2 exp(-s) L; classification: exp(-s) L; both + s/2
        self._scale = torch.tensor([0.5 if k == "regression" else 1.0 for k in kinds])

    def backward(
        self,
        losses: torch.Tensor,
        *,
        shared_parameters: Sequence[torch.nn.Parameter],
        extra_loss: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses = self._check_losses(losses)
        s = self.log_variance
        values = losses.to(s)
        precision = self._scale.to(s) * torch.exp(-s)  # s may live on the model's device
        present = (values.detach() != 0).to(s.dtype)  # 0: no labelled row in this batch
        total = (precision * values).sum() + 0.5 * (present * s).sum()
        total = total.to(losses.device)
        self._with_extra(total, extra_loss).backward()
        weights = precision.detach().tolist()
        stats = {f"weight_{i}": float(w) for i, w in enumerate(weights)}
        stats.update({f"log_variance_{i}": float(v) for i, v in enumerate(s.detach().tolist())})
        return stats

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.log_variance]

    def get_params(self) -> dict[str, Any]:
        return {"task_kinds": list(self.task_kinds), "init_log_variance": self.init_log_variance}


class GradNorm(Strategy):
    r"""GradNorm (Chen et al., ICML 2018): balance the tasks' gradient norms.

    The loss is :math:`\sum_i w_i L_i`. After each backward pass the weights take one step
    of their own (plain gradient descent, rate ``lr``; not in the trainer's optimiser) on
    :math:`\sum_i |G_i - \bar G\, r_i^\alpha|`, where :math:`G_i = w_i\|\nabla_W L_i\|` is the
    norm of task i's weighted gradient on the *last shared layer* :math:`W`, :math:`\bar G`
    their mean, :math:`r_i = \tilde L_i / \mathrm{mean}(\tilde L)` the relative inverse training
    rate with :math:`\tilde L_i = L_i(t) / L_i(0)` (the first losses seen), and the target is a
    constant. Weights are clipped below at ``min_weight`` and renormalised to sum to
    ``n_tasks``. Losses must be non-negative (cross-entropy, squared error); a step where
    some task's loss is exactly 0 (no labelled row in the batch) leaves the weights as they
    are, and each task's first loss is its first positive one.

    The last shared layer is the last tensor with at least two dimensions (a weight matrix,
    not a bias) in ``shared_parameters``, or the last tensor when none has two.
    ``alpha`` sets how strongly slow tasks are pushed (0 equalises gradient norms).
    """

    name = "gradnorm"

    def __init__(
        self, n_tasks: int, alpha: float = 1.5, lr: float = 0.025, min_weight: float = 1e-3
    ) -> None:
        super().__init__(n_tasks)
        self.alpha = check_nonnegative_float(alpha, "alpha")
        self.lr = _check_positive_float(lr, "lr")
        self.min_weight = check_fraction(min_weight, "min_weight")
        self.weights = [1.0] * self.n_tasks
        self.initial_losses: list[float] | None = None

    def backward(
        self,
        losses: torch.Tensor,
        *,
        shared_parameters: Sequence[torch.nn.Parameter],
        extra_loss: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses = self._check_losses(losses)
        shared = _check_shared(shared_parameters, self.name)
        layer = _last_shared_layer(shared)
        norms = []
        for i in range(self.n_tasks):
            (grad,) = torch.autograd.grad(losses[i], layer, retain_graph=True, allow_unused=True)
            grad = global_mean(torch.zeros_like(layer) if grad is None else grad)  # DDP
            norms.append(float(grad.detach().norm()))
        current = [float(v) for v in losses.detach().cpu().tolist()]
        if any(v < 0 for v in current):
            raise ParetorecError(
                f"losses must be non-negative for gradnorm (it divides by the first losses), "
                f"got {_floats(current)}"
            )
        if self.initial_losses is None:
            self.initial_losses = [math.nan] * self.n_tasks
        self.initial_losses = [
            c if math.isnan(first) and c > 0 else first
            for c, first in zip(current, self.initial_losses, strict=True)
        ]

        used = list(self.weights)
        weights = torch.tensor(used, dtype=losses.dtype, device=losses.device)
        self._with_extra((weights * losses).sum(), extra_loss).backward()

        raw = np.asarray(norms)
        weighted = np.asarray(used) * raw
        first = np.array(self.initial_losses)
        ratios = np.divide(current, first, out=np.ones(self.n_tasks), where=~np.isnan(first))
        if min(current) > 0:  # a zero loss (no labelled row in the batch) skips the update
            relative = ratios / ratios.mean()
            target = weighted.mean() * relative**self.alpha
            step = np.sign(weighted - target) * raw  # d|w_i g_i - target_i| / d w_i
            self.weights = _renormalise(np.asarray(used) - self.lr * step, self.min_weight)
        stats = {f"weight_{i}": w for i, w in enumerate(used)}
        stats.update({f"grad_norm_{i}": float(g) for i, g in enumerate(weighted)})
        stats.update({f"loss_ratio_{i}": float(r) for i, r in enumerate(ratios)})
        return stats

    def get_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "lr": self.lr, "min_weight": self.min_weight}


def _renormalise(weights: np.ndarray, min_weight: float) -> list[float]:
    n = weights.size
    clipped = np.maximum(weights, min_weight)
    scaled = clipped * (n / clipped.sum())
    return [float(w) for w in scaled]


def _last_shared_layer(shared: list[torch.Tensor]) -> torch.Tensor:
    matrices = [p for p in shared if p.ndim >= 2]
    return matrices[-1] if matrices else shared[-1]


class DynamicWeightAverage(Strategy):
    r"""Dynamic Weight Average (Liu, Johns and Davison, CVPR 2019).

    Weights for epoch t are :math:`w_i = K \,\mathrm{softmax}_i(r_i / T)` with
    :math:`r_i = \bar L_i(t-1) / \bar L_i(t-2)` the ratio of the task's last two epoch mean
    losses (from ``end_epoch``), :math:`K` the number of tasks and ``temperature`` T (a larger T
    gives more even weights). Until two epochs have been seen all weights are 1. Mean losses
    must be positive (they are divided).
    """

    name = "dwa"

    def __init__(self, n_tasks: int, temperature: float = 2.0) -> None:
        super().__init__(n_tasks)
        self.temperature = _check_positive_float(temperature, "temperature")
        self.history: list[list[float]] = []

    def current_weights(self) -> list[float]:
        if len(self.history) < 2:
            return [1.0] * self.n_tasks
        previous, before = np.asarray(self.history[-1]), np.asarray(self.history[-2])
        logits = (previous / before) / self.temperature
        logits = logits - logits.max()
        weights = np.exp(logits)
        return [float(w) for w in self.n_tasks * weights / weights.sum()]

    def backward(
        self,
        losses: torch.Tensor,
        *,
        shared_parameters: Sequence[torch.nn.Parameter],
        extra_loss: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses = self._check_losses(losses)
        used = self.current_weights()
        weights = torch.tensor(used, dtype=losses.dtype, device=losses.device)
        self._with_extra((weights * losses).sum(), extra_loss).backward()
        return {f"weight_{i}": w for i, w in enumerate(used)}

    def end_epoch(self, mean_losses: Sequence[float]) -> None:
        values = _check_mean_losses(mean_losses, self.n_tasks)
        if any(v <= 0 for v in values):
            raise ParetorecError(
                f"mean_losses must be positive for dwa (it divides loss ratios), got {values}"
            )
        self.history.append(values)

    def get_params(self) -> dict[str, Any]:
        return {"temperature": self.temperature}


ChebyshevReference = Literal["zero", "running_min"]


class Chebyshev(Strategy):
    r"""Weighted Chebyshev (min-max) scalarisation: minimise :math:`\max_i w_i (L_i - z_i)`.

    Only the task that is currently worst off (relative to its reference) receives
    gradient, which can reach Pareto-optimal points a weighted sum cannot (non-convex
    fronts). The reference point :math:`z` is

    * ``"zero"``: :math:`z = 0`, plain :math:`\max_i w_i L_i`;
    * ``"running_min"``: the ideal point estimated online, each task's smallest batch loss
      seen *before* this step (0 on the first step), so the term is the task's excess over
      its best so far.

    Ties go to the lowest task index.
    """

    name = "chebyshev"

    def __init__(
        self,
        n_tasks: int,
        weights: Sequence[float] | None = None,
        reference: ChebyshevReference = "running_min",
    ) -> None:
        super().__init__(n_tasks)
        self.weights = _check_weights(weights, self.n_tasks)
        self.reference: str = check_choice(reference, "reference", ("zero", "running_min"))
        self.ideal = [0.0] * self.n_tasks
        self._seen = False

    def backward(
        self,
        losses: torch.Tensor,
        *,
        shared_parameters: Sequence[torch.nn.Parameter],
        extra_loss: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses = self._check_losses(losses)
        used_reference = list(self.ideal)
        weights = torch.tensor(self.weights, dtype=losses.dtype, device=losses.device)
        reference = torch.tensor(used_reference, dtype=losses.dtype, device=losses.device)
        terms = weights * (losses - reference)
        active = int(torch.argmax(terms.detach()))  # first maximum on ties
        self._with_extra(terms[active], extra_loss).backward()
        if self.reference == "running_min":
            current = [float(v) for v in losses.detach().cpu().tolist()]
            if self._seen:
                self.ideal = [min(a, b) for a, b in zip(self.ideal, current, strict=True)]
            else:
                self.ideal, self._seen = current, True
        stats: dict[str, float] = {"active_task": float(active)}
        stats.update({f"weight_{i}": w for i, w in enumerate(self.weights)})
        stats.update({f"reference_{i}": z for i, z in enumerate(used_reference)})
        return stats

    def get_params(self) -> dict[str, Any]:
        return {"weights": list(self.weights), "reference": self.reference}


# =========================================================================== aggregators
def _check_shared(shared_parameters: Any, strategy: str) -> list[torch.Tensor]:
    if isinstance(shared_parameters, torch.Tensor):
        shared_parameters = [shared_parameters]
    try:
        candidates = list(shared_parameters)
    except TypeError:
        raise ParetorecError(
            f"shared_parameters must be a sequence of tensors, got "
            f"{type(shared_parameters).__name__}"
        ) from None
    unique: dict[int, torch.Tensor] = {}
    for p in candidates:
        if not isinstance(p, torch.Tensor):
            raise ParetorecError(
                f"shared_parameters must hold tensors, got an entry of type {type(p).__name__}"
            )
        if p.requires_grad:
            unique.setdefault(id(p), p)
    if not unique:
        raise ParetorecError(
            f"strategy {strategy!r} needs shared_parameters with at least one tensor that "
            "requires grad"
        )
    return list(unique.values())


def _graph_leaves(roots: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Leaf tensors requiring grad that ``roots`` depend on, in discovery order."""
    leaves: dict[int, torch.Tensor] = {}
    seen: set[int] = set()
    stack = []
    for root in roots:
        if root.grad_fn is None:
            if root.requires_grad:
                leaves.setdefault(id(root), root)
        else:
            stack.append(root.grad_fn)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold the leaf
        if isinstance(variable, torch.Tensor):
            leaves.setdefault(id(variable), variable)
        for child, _ in node.next_functions:
            if child is not None:
                stack.append(child)
    return list(leaves.values())


def _accumulate(tensor: torch.Tensor, grad: torch.Tensor) -> None:
    grad = grad.detach().to(dtype=tensor.dtype).reshape(tensor.shape)
    if tensor.grad is None:
        tensor.grad = grad.clone()
    else:
        tensor.grad = tensor.grad + grad


class AggregatorStrategy(Strategy):
    """Base of the Jacobian-descent strategies (torchjd weightings on the Gramian).

    The shared parameters get ``weights @ J`` where ``J`` (tasks x shared parameters) is the
    Jacobian of the losses and ``weights`` come from the Gramian ``J J^T`` (computed in
    float64); every other parameter the losses depend on gets the gradient of their plain
    sum, and ``extra_loss`` adds its plain gradient to everything, each exactly once.
    A task whose gradient on the shared parameters is exactly zero (for example a task with
    no labelled row in the batch, whose loss the trainer sets to 0) is left out of the
    aggregation for that step (weight 0); otherwise MGDA, for one, would stop every update.
    Diagnostics: the weights and ``min_cosine``, the smallest cosine between two task
    gradients on the shared parameters (negative: the tasks conflict).
    """

    def __init__(self, n_tasks: int, parallel_chunk_size: int | None = None) -> None:
        super().__init__(n_tasks)
        self.parallel_chunk_size = (
            None
            if parallel_chunk_size is None
            else check_positive_int(parallel_chunk_size, "parallel_chunk_size")
        )
        self.weighting = self._make_weighting()

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        raise NotImplementedError

    def task_weights(self, gramian: torch.Tensor) -> torch.Tensor:
        """Weights of the task gradients given their Gramian (float64, shape (m, m))."""
        return self.weighting(gramian)

    def backward(
        self,
        losses: torch.Tensor,
        *,
        shared_parameters: Sequence[torch.nn.Parameter],
        extra_loss: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses = self._check_losses(losses)
        shared = _check_shared(shared_parameters, self.name)
        extra = None if extra_loss is None else _check_extra(extra_loss)
        roots = [losses] + ([extra] if extra is not None and extra.requires_grad else [])
        shared_ids = {id(p) for p in shared}
        others = [t for t in _graph_leaves(roots) if id(t) not in shared_ids]

        jacobians = jac(
            list(losses.unbind()),
            shared,
            retain_graph=True,
            parallel_chunk_size=self.parallel_chunk_size,
        )
        matrix = torch.cat([j.reshape(self.n_tasks, -1) for j in jacobians], dim=1)
        exact = global_mean(matrix.detach()).to(torch.float64)  # DDP: the global Jacobian
        gramian = exact @ exact.T
        with torch.no_grad():
            weights = torch.zeros(self.n_tasks, dtype=torch.float64, device=exact.device)
            active = gramian.diagonal() > 0  # a zero row: the task has no signal this batch
            if bool(active.all()):
                weights = self.task_weights(gramian).to(torch.float64)
            elif bool(active.any()):
                weights[active] = self.task_weights(gramian[active][:, active]).to(torch.float64)
            direction = (weights @ exact).to(matrix.dtype)
        offset = 0
        for p in shared:
            _accumulate(p, direction[offset : offset + p.numel()])
            offset += p.numel()

        if extra is not None and extra.requires_grad:
            grads = torch.autograd.grad(extra, shared, retain_graph=True, allow_unused=True)
            for p, g in zip(shared, grads, strict=True):
                if g is not None:
                    _accumulate(p, g)
        if others:
            total = losses.sum() + (extra if extra is not None else 0.0)
            torch.autograd.backward(total, inputs=others)

        stats = {f"weight_{i}": float(w) for i, w in enumerate(weights.tolist())}
        stats["min_cosine"] = _min_cosine(gramian)
        return stats

    def get_params(self) -> dict[str, Any]:
        return (
            {}
            if self.parallel_chunk_size is None
            else {"parallel_chunk_size": self.parallel_chunk_size}
        )


def _min_cosine(gramian: torch.Tensor) -> float:
    m = gramian.shape[0]
    if m < 2:
        return 1.0
    norms = gramian.diagonal().clamp_min(0).sqrt()
    outer = norms[:, None] * norms[None, :]
    cosine = torch.where(outer > 0, gramian / outer.clamp_min(1e-300), torch.ones_like(gramian))
    off = cosine[~torch.eye(m, dtype=torch.bool, device=gramian.device)]
    return float(off.min())


# --------------------------------------------------------------------------- scipy solvers
def _normalised(gramian: torch.Tensor, eps: float = 1e-20) -> np.ndarray:
    """Gramian divided by its trace (the squared Frobenius norm of J); zeros below ``eps``.

    torchjd zeroes Gramians whose trace is below 1e-4, which silences small but genuine
    gradients late in training; the problems solved here are scale invariant, so only an
    all-but-zero Jacobian is treated as zero.
    """
    array = gramian.detach().cpu().numpy().astype(np.float64)
    array = 0.5 * (array + array.T)
    trace = float(np.trace(array))
    return np.zeros_like(array) if trace < eps else array / trace


class NNLSProjector(DualConeProjector):
    r"""UPGrad's dual-cone projection solved exactly as non-negative least squares.

    Solves :math:`\min_v v^\top G v` subject to :math:`v \succeq u` (the quadratic program of
    torchjd's ``QuadprogProjector``, on the trace-normalised Gramian plus ``reg_eps`` times
    the identity, as there): with
    :math:`G = A^\top A` and :math:`v = u + x`, it is :math:`\min_{x\ge0}\|Ax + Au\|`,
    which ``scipy.optimize.nnls`` solves with an active-set method.
    """

    def __init__(self, *, reg_eps: float = 1e-4) -> None:
        self.reg_eps = reg_eps

    def __call__(self, U: torch.Tensor, G: PSDMatrix) -> torch.Tensor:
        gramian = _normalised(G)
        gramian = gramian + self.reg_eps * np.eye(gramian.shape[0])
        # A with A'A = G from the eigendecomposition (works for singular G as well)
        eigenvalues, vectors = np.linalg.eigh(gramian)
        factor = np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None] * vectors.T
        u_all = U.detach().cpu().numpy().astype(np.float64)
        flat = u_all.reshape(-1, gramian.shape[0])
        out = np.empty_like(flat)
        for row, u in enumerate(flat):
            x, _ = nnls(factor, -(factor @ u))
            out[row] = u + x
        return torch.as_tensor(out.reshape(u_all.shape), device=G.device, dtype=G.dtype)


class CAGradScipyWeighting(Weighting[PSDMatrix]):
    r"""Weights of CAGrad (Liu et al., NeurIPS 2021), as torchjd's ``CAGradWeighting``.

    With :math:`g_0` the mean gradient and :math:`\phi = c^2\|g_0\|^2`, solve
    :math:`\min_{w\in\Delta} g_w^\top g_0 + \sqrt\phi\,\|g_w\|` (SLSQP, from the uniform
    point) and return :math:`1/m + \sqrt\phi / \|g_w\| \cdot w`; zeros when
    :math:`\|g_w\|` is below ``norm_eps`` times the Frobenius norm of the Jacobian (a
    Pareto-stationary point). With ``c = 0`` this is
    the mean gradient.
    """

    def __init__(self, c: float, norm_eps: float = 1e-4) -> None:
        super().__init__()
        self.c = c
        self.norm_eps = norm_eps

    def forward(self, stat: PSDMatrix, /) -> torch.Tensor:
        gramian = _normalised(stat)
        m = gramian.shape[0]
        mean = np.full(m, 1.0 / m)
        linear = gramian @ mean
        sqrt_phi = self.c * math.sqrt(max(float(mean @ gramian @ mean), 0.0))

        def cost(w: np.ndarray) -> float:
            return float(w @ linear + sqrt_phi * math.sqrt(max(float(w @ gramian @ w), 0) + 1e-12))

        def grad(w: np.ndarray) -> np.ndarray:
            norm = math.sqrt(max(float(w @ gramian @ w), 0) + 1e-12)
            return np.asarray(linear + sqrt_phi * (gramian @ w) / norm)

        result = minimize(
            cost,
            mean,
            jac=grad,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints=[{"type": "eq", "fun": lambda w: float(w.sum() - 1.0)}],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        w = np.clip(result.x, 0.0, None)
        w = w / w.sum() if w.sum() > 0 else mean
        norm = math.sqrt(max(float(w @ gramian @ w), 0.0))
        # below norm_eps the hull of the gradients holds 0: a Pareto-stationary point
        weights = mean + (sqrt_phi / norm) * w if norm >= self.norm_eps else np.zeros(m)
        return torch.as_tensor(weights, device=stat.device, dtype=stat.dtype)


class NashMTLScipyWeighting(Weighting[PSDMatrix]):
    r"""Weights of Nash-MTL (Navon et al., ICML 2022), solved exactly.

    The bargaining solution :math:`\alpha > 0` satisfies :math:`G\alpha = 1/\alpha`, the
    stationarity condition of the strictly convex
    :math:`\tfrac12\alpha^\top G\alpha - \sum_i\log\alpha_i`, minimised here by damped Newton
    steps on the trace-normalised (and ``reg_eps``-regularised) Gramian, as torchjd normalises
    it. The update is then clipped to norm ``max_norm`` (0 disables), as in torchjd and the
    official code; torchjd's version approximates the same solution with a few convex-concave
    iterations every ``update_weights_every`` steps.
    """

    def __init__(self, max_norm: float = 1.0, reg_eps: float = 1e-6) -> None:
        super().__init__()
        self.max_norm = max_norm
        self.reg_eps = reg_eps

    def forward(self, stat: PSDMatrix, /) -> torch.Tensor:
        gramian = _normalised(stat)
        m = gramian.shape[0]
        if not gramian.any():
            return torch.zeros(m, device=stat.device, dtype=stat.dtype)
        gramian = gramian + self.reg_eps * np.eye(m)
        alpha = _nash_solution(gramian)
        if self.max_norm > 0:
            raw = stat.detach().cpu().numpy().astype(np.float64)
            norm = math.sqrt(max(float(alpha @ raw @ alpha), 0.0))
            if norm > self.max_norm:
                alpha = alpha * (self.max_norm / norm)
        return torch.as_tensor(alpha, device=stat.device, dtype=stat.dtype)


def _nash_solution(gramian: np.ndarray, tol: float = 1e-12, max_iter: int = 200) -> np.ndarray:
    def value(a: np.ndarray) -> float:
        return float(0.5 * a @ gramian @ a - np.log(a).sum())

    alpha = np.ones(gramian.shape[0])
    for _ in range(max_iter):
        grad = gramian @ alpha - 1.0 / alpha
        hessian = gramian + np.diag(1.0 / alpha**2)
        step = np.linalg.solve(hessian, grad)
        decrement = float(grad @ step)
        if decrement / 2 < tol:
            break
        t = 1.0
        while np.any(alpha - t * step <= 0):
            t *= 0.5
        current = value(alpha)
        while value(alpha - t * step) > current - 0.25 * t * decrement and t > 1e-12:
            t *= 0.5
        alpha = alpha - t * step
    return alpha


# --------------------------------------------------------------------------- the aggregators
class MGDAStrategy(AggregatorStrategy):
    """MGDA (Sener and Koltun, NeurIPS 2018): the min-norm point of the convex hull of the
    task gradients, by Frank-Wolfe (torchjd ``MGDAWeighting``). Permutation invariant up to
    the solver tolerance ``epsilon``."""

    name = "mgda"

    def __init__(
        self,
        n_tasks: int,
        epsilon: float = 1e-3,
        max_iters: int = 100,
        parallel_chunk_size: int | None = None,
    ) -> None:
        self.epsilon = _check_positive_float(epsilon, "epsilon")
        self.max_iters = check_positive_int(max_iters, "max_iters")
        super().__init__(n_tasks, parallel_chunk_size)

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        return MGDAWeighting(epsilon=self.epsilon, max_iters=self.max_iters)

    def get_params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "max_iters": self.max_iters, **super().get_params()}


class UPGradStrategy(AggregatorStrategy):
    """UPGrad (Quinton and Rey, 2024): each task gradient projected onto the dual cone of all
    of them, averaged (torchjd ``UPGradWeighting`` with the exact :class:`NNLSProjector`).
    The update never conflicts with any task gradient; permutation invariant."""

    name = "upgrad"

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        return UPGradWeighting(projector=NNLSProjector())


class PCGradStrategy(AggregatorStrategy):
    """PCGrad (Yu et al., NeurIPS 2020): project away conflicting components (torchjd
    ``PCGradWeighting``). The projection order is drawn from torch's global RNG, so results
    follow ``torch.manual_seed``; permutation invariant for two tasks only."""

    name = "pcgrad"

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        return PCGradWeighting()


class CAGradStrategy(AggregatorStrategy):
    """CAGrad (Liu et al., NeurIPS 2021) with conflict-aversion radius ``c`` (0 gives the mean
    gradient; the paper uses 0.4 to 0.5). Not rescaled: one task gives ``(1 + c)`` times its
    gradient. Permutation invariant."""

    name = "cagrad"

    def __init__(
        self, n_tasks: int, c: float = 0.4, parallel_chunk_size: int | None = None
    ) -> None:
        self.c = check_nonnegative_float(c, "c")
        if not math.isfinite(self.c):
            raise ParetorecError(f"c must be a non-negative number, got {show(c)}")
        super().__init__(n_tasks, parallel_chunk_size)

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        return CAGradScipyWeighting(c=self.c)

    def get_params(self) -> dict[str, Any]:
        return {"c": self.c, **super().get_params()}


class NashMTLStrategy(AggregatorStrategy):
    """Nash-MTL (Navon et al., ICML 2022): the Nash bargaining solution between tasks, update
    clipped to norm ``max_norm`` (0 disables; with clipping one task gives a shorter copy
    of its gradient). Solved exactly with numpy (no cvxpy needed); permutation invariant."""

    name = "nash_mtl"

    def __init__(
        self, n_tasks: int, max_norm: float = 1.0, parallel_chunk_size: int | None = None
    ) -> None:
        self.max_norm = check_nonnegative_float(max_norm, "max_norm")
        if not math.isfinite(self.max_norm):
            raise ParetorecError(f"max_norm must be a non-negative number, got {show(max_norm)}")
        super().__init__(n_tasks, parallel_chunk_size)

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        return NashMTLScipyWeighting(max_norm=self.max_norm)

    def get_params(self) -> dict[str, Any]:
        return {"max_norm": self.max_norm, **super().get_params()}


class IMTLGStrategy(AggregatorStrategy):
    """IMTL-G (Liu et al., ICLR 2021): the update has equal projections on every task's unit
    gradient (torchjd ``IMTLGWeighting``). Permutation invariant."""

    name = "imtl_g"

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        return IMTLGWeighting()


AlignedScale = Literal["min", "median", "rmse"]


class AlignedMTLStrategy(AggregatorStrategy):
    """Aligned-MTL (Senushkin et al., CVPR 2023): align the principal components of the
    Jacobian so it becomes well conditioned (torchjd ``AlignedMTLWeighting``;
    ``scale_mode`` picks the eigenvalue that sets the scale). Permutation invariant."""

    name = "aligned_mtl"

    def __init__(
        self,
        n_tasks: int,
        scale_mode: AlignedScale = "min",
        parallel_chunk_size: int | None = None,
    ) -> None:
        self.scale_mode: AlignedScale = check_choice(  # type: ignore[assignment]
            scale_mode, "scale_mode", ("min", "median", "rmse")
        )
        super().__init__(n_tasks, parallel_chunk_size)

    def _make_weighting(self) -> Weighting[PSDMatrix]:
        return AlignedMTLWeighting(scale_mode=self.scale_mode)

    def get_params(self) -> dict[str, Any]:
        return {"scale_mode": self.scale_mode, **super().get_params()}


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        FixedWeights,
        UncertaintyWeighting,
        GradNorm,
        DynamicWeightAverage,
        Chebyshev,
        MGDAStrategy,
        UPGradStrategy,
        PCGradStrategy,
        CAGradStrategy,
        NashMTLStrategy,
        IMTLGStrategy,
        AlignedMTLStrategy,
    )
}

AGGREGATOR_STRATEGIES = tuple(
    name for name, cls in STRATEGIES.items() if issubclass(cls, AggregatorStrategy)
)


def get_strategy(name: str, n_tasks: int, **params: Any) -> Strategy:
    """Build a strategy by name (see ``STRATEGIES``); unknown parameters are refused by name."""
    if name not in STRATEGIES:
        raise ParetorecError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    cls = STRATEGIES[name]
    accepted = [
        p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_tasks")
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParetorecError(
            f"strategy {name!r} got unknown parameter(s) {unknown}; "
            f"it accepts {', '.join(accepted) or 'none'}"
        )
    return cls(n_tasks, **params)
