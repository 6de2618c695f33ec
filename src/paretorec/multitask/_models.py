"""Multi-task ranking networks: Shared-Bottom, MMoE, PLE and ESMM.

Every model maps a :class:`Batch` to a dict ``task name -> output`` (a logit for binary
tasks, a value for regression tasks; ESMM adds its ``ctcvr`` logit) and exposes
:meth:`MultiTaskModel.shared_parameters`, the parameters more than one task's loss reaches
(what gradient aggregators such as MGDA or UPGrad balance).

Parallel sub-networks (the experts of a mixture, the towers of the tasks) are stacked:
one weight tensor of shape ``(n, in, out)`` per layer and one batched matrix product per
layer instead of ``n`` small ones, which is what keeps CPU training fast at small batch
sizes where per-operation overhead dominates.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import ParetorecError, check_positive_int, show
from ._features import EncodedFeatures, TaskSpec

#: Standard deviation of the initial embedding vectors.
EMBEDDING_INIT_STD = 0.05


@dataclass(frozen=True, eq=False)
class Batch:
    """A mini-batch: aligned tensors of one slice of a rows table.

    Attributes:
        user, item: int64 codes, shape (B,).
        dense: standardised row-level dense features, float32 (torch's default float dtype;
            B, n_row_dense).
        labels: float32 (the default float dtype; B, n_tasks), zero where the label is
            missing (or None to predict).
        mask: bool (B, n_tasks), True where the label exists (or None).
        index: positions of these rows in the rows table (int64, (B,)), so that hooks such as
            regularisers can look up anything else they keep per row.
    """

    user: Tensor
    item: Tensor
    dense: Tensor
    labels: Tensor | None = None
    mask: Tensor | None = None
    index: Tensor | None = None

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            user=self.user.to(device),
            item=self.item.to(device),
            dense=self.dense.to(device),
            labels=None if self.labels is None else self.labels.to(device),
            mask=None if self.mask is None else self.mask.to(device),
            index=None if self.index is None else self.index.to(device),
        )

    def slice(self, start: int, stop: int) -> Batch:
        return Batch(
            user=self.user[start:stop],
            item=self.item[start:stop],
            dense=self.dense[start:stop],
            labels=None if self.labels is None else self.labels[start:stop],
            mask=None if self.mask is None else self.mask[start:stop],
            index=None if self.index is None else self.index[start:stop],
        )

    def take(self, positions: Tensor) -> Batch:
        return Batch(
            user=self.user[positions],
            item=self.item[positions],
            dense=self.dense[positions],
            labels=None if self.labels is None else self.labels[positions],
            mask=None if self.mask is None else self.mask[positions],
            index=None if self.index is None else self.index[positions],
        )


# --------------------------------------------------------------------------- building blocks
class StackedLinear(nn.Module):
    """``n`` independent linear maps applied at once.

    Input ``(B, in)`` (the same input for all ``n``) or ``(n, B, in)``; output ``(n, B, out)``.
    Each map is initialised like :class:`torch.nn.Linear`.
    """

    def __init__(self, n: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.n, self.in_features, self.out_features = n, in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = nn.Parameter(
            torch.empty(n, in_features, out_features).uniform_(-bound, bound)
        )
        # Flat, so that the weights are the only matrices (GradNorm looks for the last one).
        self.bias = nn.Parameter(torch.empty(n * out_features).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            flat = self.forward_flat(x)
            return flat.view(x.shape[0], self.n, self.out_features).transpose(0, 1).contiguous()
        return torch.baddbmm(self.bias.view(self.n, 1, self.out_features), x, self.weight)

    def forward_flat(self, x: Tensor) -> Tensor:
        """Shared input (B, in) -> (B, n * out) with one matrix product, map-major columns."""
        flat_weight = self.weight.transpose(0, 1).reshape(self.in_features, -1)
        return torch.addmm(self.bias.view(1, -1), x, flat_weight)

    def extra_repr(self) -> str:
        return f"n={self.n}, in_features={self.in_features}, out_features={self.out_features}"


def _mix(gates: Tensor, experts: Tensor) -> Tensor:
    """``out[t, b] = sum_e gates[t, b, e] * experts[e, b]``: (T, B, E) x (E, B, h) -> (T, B, h).

    A short loop over experts of broadcast multiply-adds: several times faster on the CPU
    than the equivalent einsum, which becomes B tiny matrix products.
    """
    out = gates[:, :, 0:1] * experts[0]
    for e in range(1, experts.shape[0]):
        out = out + gates[:, :, e : e + 1] * experts[e]
    return out


class StackedMLP(nn.Module):
    """``n`` parallel MLPs (Linear -> [BatchNorm] -> ReLU -> Dropout per hidden layer)."""

    def __init__(
        self,
        n: int,
        in_features: int,
        units: Sequence[int],
        *,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.n = n
        dims = [in_features, *units]
        self.layers = nn.ModuleList(StackedLinear(n, a, b) for a, b in itertools.pairwise(dims))
        self.norms = nn.ModuleList(nn.BatchNorm1d(n * b) for b in units) if batch_norm else None
        self.dropout = dropout
        self.out_features = dims[-1]

    def forward(self, x: Tensor) -> Tensor:
        """(B, in) or (n, B, in) -> (n, B, out); the result may be a non-contiguous view."""
        for j, layer in enumerate(cast(list[StackedLinear], list(self.layers))):
            if x.dim() == 2:
                # Shared input: the (B, n * h) product is already BatchNorm's layout.
                b = x.shape[0]
                flat = layer.forward_flat(x)
                if self.norms is not None:
                    flat = self.norms[j](flat)
                flat = self._activate(flat)
                x = flat.view(b, self.n, layer.out_features).transpose(0, 1)
                continue
            x = layer(x)
            if self.norms is not None:
                n, b, h = x.shape
                x = self.norms[j](x.transpose(0, 1).reshape(b, n * h)).view(b, n, h).transpose(0, 1)
            x = self._activate(x)
        if not self.layers and x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n, *x.shape)
        return x

    def _activate(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        return x


class FeatureInput(nn.Module):
    """Embeds every feature of a batch and concatenates them: ``(B, output_dim)``.

    Ids and categorical values share one embedding table (one gather for all fields);
    multi-valued item columns are EmbeddingBags (mean); the optional frozen item vectors go
    through a learned linear projection; dense features are appended as they are.
    """

    user_fields: Tensor
    item_fields: Tensor
    history_indptr: Tensor
    history_items: Tensor
    history_keys: Tensor
    user_dense: Tensor
    item_dense: Tensor
    item_vectors: Tensor

    def __init__(self, features: EncodedFeatures, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        tables = features.tables
        self.embedding_dim = embedding_dim
        self.register_buffer("user_fields", torch.from_numpy(tables["user_fields"]).long())
        self.register_buffer("item_fields", torch.from_numpy(tables["item_fields"]).long())
        self.register_buffer("user_dense", torch.from_numpy(tables["user_dense"]).float())
        self.register_buffer("item_dense", torch.from_numpy(tables["item_dense"]).float())
        self.n_fields = int(tables["user_fields"].shape[1] + tables["item_fields"].shape[1])
        self.embedding = nn.Embedding(max(1, features.n_embeddings), embedding_dim)
        nn.init.normal_(self.embedding.weight, std=EMBEDDING_INIT_STD)
        self.bag_columns = list(features.spec.item_multi)
        self.bags = nn.ModuleList()
        for j, (column, size) in enumerate(features.bag_sizes.items()):
            self.register_buffer(f"bag_{j}", torch.from_numpy(tables[f"bag.{column}"]).long())
            bag = nn.EmbeddingBag(size + 1, embedding_dim, mode="mean", padding_idx=size)
            nn.init.normal_(bag.weight, std=EMBEDDING_INIT_STD)
            with torch.no_grad():
                bag.weight[size].zero_()
            self.bags.append(bag)
        self.history: nn.EmbeddingBag | None = None
        self.n_items = features.n_items
        if features.has_history:
            self.register_buffer(
                "history_indptr", torch.from_numpy(tables["history_indptr"]).long()
            )
            self.register_buffer("history_items", torch.from_numpy(tables["history_items"]).long())
            self.register_buffer("history_keys", torch.from_numpy(tables["history_keys"]).long())
            self.history = nn.EmbeddingBag(features.n_items, embedding_dim, mode="sum")
            nn.init.normal_(self.history.weight, std=EMBEDDING_INIT_STD)
        self.vector_projection: nn.Linear | None = None
        if features.item_vector_dim:
            self.register_buffer("item_vectors", torch.from_numpy(tables["item_vectors"]).float())
            self.vector_projection = nn.Linear(features.item_vector_dim, embedding_dim)
        self.n_row_dense = len(features.spec.row_dense)
        self.n_dense = features.n_dense
        n_embedded = (
            self.n_fields
            + len(self.bags)
            + (1 if self.vector_projection else 0)
            + (1 if self.history is not None else 0)
        )
        self.output_dim = n_embedded * embedding_dim + self.n_dense
        if self.output_dim == 0:
            raise ParetorecError(
                "features select nothing: enable user_id / item_id or name some columns"
            )
        self.dropout = dropout

    def embed(self, batch: Batch) -> Tensor:
        """Every embedded field of the batch: (B, n_embedded_fields, embedding_dim)."""
        user, item = batch.user, batch.item
        parts: list[Tensor] = []
        if self.n_fields:
            index = torch.cat([self.user_fields[user], self.item_fields[item]], dim=1)
            parts.append(self.embedding(index))
        for j, bag in enumerate(self.bags):
            parts.append(bag(getattr(self, f"bag_{j}")[item]).unsqueeze(1))
        if self.history is not None:
            parts.append(self._history(user, item).unsqueeze(1))
        if self.vector_projection is not None:
            parts.append(self.vector_projection(self.item_vectors[item]).unsqueeze(1))
        if not parts:
            return torch.zeros(len(batch), 0, self.embedding_dim, device=user.device)
        fields = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        if self.dropout > 0:
            fields = F.dropout(fields, self.dropout, self.training)
        return fields

    def _history(self, user: Tensor, item: Tensor) -> Tensor:
        """Mean history embedding of each row's user, the row's own item left out."""
        if self.history is None:
            raise RuntimeError("no history field")
        # Sum over each distinct user's history once, then spread to the rows.
        unique, inverse = torch.unique(user, return_inverse=True)
        starts = self.history_indptr[unique]
        lengths = self.history_indptr[unique + 1] - starts
        ends = torch.cumsum(lengths, 0)
        first = ends - lengths
        positions = torch.arange(int(ends[-1]) if len(ends) else 0, device=user.device)
        positions = positions + torch.repeat_interleave(starts - first, lengths)
        sums = self.history(self.history_items[positions], first)[inverse]
        counts = lengths[inverse].to(sums.dtype)
        # Is the row's item in its user's history? A binary search within the user's slice.
        row_starts = self.history_indptr[user]
        row_ends = self.history_indptr[user + 1]
        keys = user * self.n_items + item
        history_keys = self.history_keys
        at = torch.searchsorted(history_keys, keys).clamp(max=max(len(history_keys) - 1, 0))
        own = (at >= row_starts) & (at < row_ends) & (history_keys[at] == keys)
        own_vectors = self.history.weight[item] * own.unsqueeze(1).to(sums.dtype)
        counts = counts - own.to(sums.dtype)
        return (sums - own_vectors) / counts.clamp_min(1.0).unsqueeze(1)

    def concat(self, fields: Tensor, batch: Batch) -> Tensor:
        """The flat input of the networks: embedded fields then dense features."""
        parts = [fields.flatten(1)]
        if self.n_dense:
            parts += [self.user_dense[batch.user], self.item_dense[batch.item]]
            if self.n_row_dense:
                parts.append(batch.dense)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, batch: Batch) -> Tensor:
        return self.concat(self.embed(batch), batch)


def pairwise_interactions(fields: Tensor) -> Tensor:
    """Factorisation-machine vector ``sum_{f < g} e_f * e_g``: (B, F, d) -> (B, d)."""
    total = fields.sum(dim=1)
    return 0.5 * (total * total - (fields * fields).sum(dim=1))


class TaskHeads(nn.Module):
    """One tower per task (stacked), a scalar output each, plus optional id biases.

    Input ``(B, in)`` shared by all towers or ``(n_tasks, B, in)``; output ``(n_tasks, B)``.
    With ``id_bias`` each task adds a learned per-user and per-item bias to its output
    (zero at the start), the classic ``b_u + b_i`` of rating models.
    """

    def __init__(
        self,
        n_tasks: int,
        in_features: int,
        tower_units: Sequence[int],
        *,
        n_users: int,
        n_items: int,
        id_bias: bool,
        dropout: float,
        batch_norm: bool,
        interaction_dim: int = 0,
    ) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        # Registered before the towers: parameters() then ends with the output layer.
        self.user_bias: nn.Embedding | None = None
        self.item_bias: nn.Embedding | None = None
        if id_bias:
            self.user_bias = nn.Embedding(n_users, n_tasks)
            self.item_bias = nn.Embedding(n_items, n_tasks)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
        self.interaction_weight: nn.Parameter | None = None
        if interaction_dim:
            self.interaction_weight = nn.Parameter(torch.zeros(interaction_dim, n_tasks))
        self.towers = StackedMLP(
            n_tasks, in_features, tower_units, dropout=dropout, batch_norm=batch_norm
        )
        self.output = StackedLinear(n_tasks, self.towers.out_features, 1)

    def forward(self, x: Tensor, batch: Batch, interactions: Tensor | None = None) -> Tensor:
        out = self.output(self.towers(x)).squeeze(2)
        extra: Tensor | None = None
        if self.user_bias is not None and self.item_bias is not None:
            extra = self.user_bias(batch.user) + self.item_bias(batch.item)
        if self.interaction_weight is not None and interactions is not None:
            term = interactions @ self.interaction_weight
            extra = term if extra is None else extra + term
        return out if extra is None else out + extra.T

    def set_output_bias(self, values: Sequence[float]) -> None:
        with torch.no_grad():
            self.output.bias.copy_(torch.tensor(values, dtype=torch.float32))


# --------------------------------------------------------------------------- models
class MultiTaskModel(nn.Module):
    """Base class: feature input, per-task heads, masked per-task losses.

    Args:
        features: the fitted feature encoding (its tables become buffers).
        tasks: the task specs, in output order.
        embedding_dim: size of every embedding.
        tower_units: hidden sizes of each task tower (``()`` = a linear head).
        dropout: dropout after every hidden layer.
        embedding_dropout: dropout on the embedded features.
        batch_norm: BatchNorm after every hidden linear layer (as torch-rechub's MLP).
        id_bias: per-task user and item biases added to every output.
        fm: add a factorisation-machine term to every output: the pairwise products of all
            embedded fields (user x item among them), weighted per task and dimension.
            MLPs learn dot products poorly; this gives each head one directly.
    """

    architecture: ClassVar[str] = "base"
    binary_tasks: Tensor

    def __init__(
        self,
        features: EncodedFeatures,
        tasks: Sequence[TaskSpec],
        *,
        embedding_dim: int = 16,
        tower_units: Sequence[int] = (32,),
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        batch_norm: bool = False,
        id_bias: bool = True,
        fm: bool = False,
    ) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.task_names = [t.name for t in self.tasks]
        self.inputs = FeatureInput(features, embedding_dim, embedding_dropout)
        self.fm = fm
        self._head_options: dict[str, Any] = {
            "n_users": features.n_users,
            "n_items": features.n_items,
            "id_bias": id_bias,
            "dropout": dropout,
            "batch_norm": batch_norm,
            "interaction_dim": embedding_dim if fm else 0,
        }
        self.tower_units = tuple(tower_units)
        self.register_buffer(
            "binary_tasks", torch.tensor([t.kind == "binary" for t in self.tasks], dtype=torch.bool)
        )

    # ------------------------------------------------------------------ contract
    def forward(self, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that more than one task's loss reaches (the input layer at least).

        Ordered from input to output: the last matrix is the top shared layer (the one
        GradNorm measures gradient norms on).
        """
        raise NotImplementedError

    def loss_outputs(self) -> list[str]:
        """The output each task's loss is computed on (its own, by default)."""
        return list(self.task_names)

    def loss_labels(self, labels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Labels and mask each loss uses (ESMM derives its CTCVR label)."""
        return labels, mask

    def metric_labels(self, labels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Labels and mask each task's own output is scored against and started from.

        The validation metrics, the early-stopping monitor and the initial output bias use
        them. By default a task's labels where they exist; ESMM keeps its CVR task to the
        clicked rows (see :meth:`ESMM.metric_labels`).
        """
        return labels, mask

    def task_losses(self, outputs: Mapping[str, Tensor], labels: Tensor, mask: Tensor) -> Tensor:
        """Per-task loss, shape (n_tasks,): the mean over the rows where the label exists.

        Binary tasks use binary cross-entropy on logits, regression tasks squared error. A
        task without any labelled row in the batch contributes 0. Masked labels never reach
        the arithmetic (they may be NaN).
        """
        labels, mask = self.loss_labels(labels, mask)
        predictions = torch.stack([outputs[key] for key in self.loss_outputs()], dim=1)
        labels = torch.where(mask, labels, torch.zeros_like(labels))
        binary = self.binary_tasks
        per_row = torch.where(
            binary,
            F.binary_cross_entropy_with_logits(predictions, labels, reduction="none"),
            (predictions - labels) ** 2,
        )
        weights = mask.to(per_row.dtype)
        return (per_row * weights).sum(0) / weights.sum(0).clamp_min(1.0)

    def predictions(self, outputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Outputs as probabilities (binary, and ESMM's ctcvr) or values (regression)."""
        out = {}
        for task in self.tasks:
            value = outputs[task.name]
            if task.kind == "binary":
                value = torch.sigmoid(value)
            elif task.value_range is not None:
                value = value.clamp(*task.value_range)
            out[task.name] = value
        for key, value in outputs.items():
            if key not in out:
                out[key] = torch.sigmoid(value)
        return out

    def set_output_bias(self, values: Mapping[str, float]) -> None:
        """Start each output at a sensible value (label mean, or logit of positive rate)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _heads(self, n_tasks: int, in_features: int) -> TaskHeads:
        return TaskHeads(n_tasks, in_features, self.tower_units, **self._head_options)

    def _initial_outputs(self, values: Mapping[str, float], names: Sequence[str]) -> list[float]:
        kinds = {t.name: t.kind for t in self.tasks}
        out = []
        for name in names:
            value = float(values.get(name, 0.0 if kinds[name] == "regression" else 0.5))
            if kinds[name] == "binary":
                value = min(max(value, 1e-4), 1 - 1e-4)
                value = math.log(value / (1 - value))
            out.append(value)
        return out

    def _encode(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """The flat network input and, with ``fm``, the pairwise-interaction vector."""
        fields = self.inputs.embed(batch)
        interactions = pairwise_interactions(fields) if self.fm else None
        return self.inputs.concat(fields, batch), interactions

    def _as_dict(self, values: Tensor) -> dict[str, Tensor]:
        return {name: values[k] for k, name in enumerate(self.task_names)}

    def __repr__(self) -> str:
        n_params = sum(p.numel() for p in self.parameters())
        return f"{type(self).__name__}(tasks={self.task_names}, parameters={n_params:,})"


class SharedBottom(MultiTaskModel):
    """One shared MLP over the embedded features, one tower per task (Caruana, 1997)."""

    architecture = "shared_bottom"

    def __init__(
        self,
        features: EncodedFeatures,
        tasks: Sequence[TaskSpec],
        *,
        bottom_units: Sequence[int] = (128, 64),
        **common: Any,
    ) -> None:
        super().__init__(features, tasks, **common)
        self.bottom = StackedMLP(
            1,
            self.inputs.output_dim,
            _check_units(bottom_units, "bottom_units", allow_empty=False),
            dropout=self._head_options["dropout"],
            batch_norm=self._head_options["batch_norm"],
        )
        self.heads = self._heads(len(self.tasks), self.bottom.out_features)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x, interactions = self._encode(batch)
        shared = self.bottom(x)[0]
        return self._as_dict(self.heads(shared, batch, interactions))

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.inputs.parameters(), *self.bottom.parameters()]

    def set_output_bias(self, values: Mapping[str, float]) -> None:
        self.heads.set_output_bias(self._initial_outputs(values, self.task_names))


class MMoE(MultiTaskModel):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

    ``n_experts`` MLP experts over the embedded features; each task mixes their outputs
    with its own softmax gate (a linear map of the same features) and feeds its tower.
    """

    architecture = "mmoe"

    def __init__(
        self,
        features: EncodedFeatures,
        tasks: Sequence[TaskSpec],
        *,
        n_experts: int = 4,
        expert_units: Sequence[int] = (64,),
        **common: Any,
    ) -> None:
        super().__init__(features, tasks, **common)
        self.n_experts = check_positive_int(n_experts, "n_experts")
        in_features = self.inputs.output_dim
        self.experts = StackedMLP(
            self.n_experts,
            in_features,
            _check_units(expert_units, "expert_units", allow_empty=False),
            dropout=self._head_options["dropout"],
            batch_norm=self._head_options["batch_norm"],
        )
        self.gates = StackedLinear(len(self.tasks), in_features, self.n_experts)
        self.heads = self._heads(len(self.tasks), self.experts.out_features)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x, interactions = self._encode(batch)
        experts = self.experts(x)  # (E, B, h)
        gates = torch.softmax(self.gates(x), dim=2)  # (T, B, E)
        mixed = _mix(gates, experts)
        return self._as_dict(self.heads(mixed, batch, interactions))

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.inputs.parameters(), *self.experts.parameters()]

    def set_output_bias(self, values: Mapping[str, float]) -> None:
        self.heads.set_output_bias(self._initial_outputs(values, self.task_names))


class _ExtractionLevel(nn.Module):
    """One Customized Gate Control level of PLE (task experts, shared experts, gates)."""

    def __init__(
        self,
        n_tasks: int,
        n_task_experts: int,
        n_shared_experts: int,
        in_features: int,
        units: Sequence[int],
        *,
        last: bool,
        dropout: float,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        self.n_tasks, self.n_task_experts, self.n_shared_experts = (
            n_tasks,
            n_task_experts,
            n_shared_experts,
        )
        options: dict[str, Any] = {"dropout": dropout, "batch_norm": batch_norm}
        self.task_experts = StackedMLP(n_tasks * n_task_experts, in_features, units, **options)
        self.shared_experts = StackedMLP(n_shared_experts, in_features, units, **options)
        self.task_gates = StackedLinear(n_tasks, in_features, n_task_experts + n_shared_experts)
        self.shared_gate: StackedLinear | None = (
            None
            if last
            else StackedLinear(1, in_features, n_tasks * n_task_experts + n_shared_experts)
        )
        self.out_features = self.task_experts.out_features

    def forward(self, task_inputs: Tensor, shared_input: Tensor) -> tuple[Tensor, Tensor | None]:
        """Task inputs (B, in) at the first level, else (T, B, in); shared input (B, in)."""
        t, k = self.n_tasks, self.n_task_experts
        if task_inputs.dim() == 2:
            task_out = self.task_experts(task_inputs)
        else:
            task_out = self.task_experts(task_inputs.repeat_interleave(k, dim=0))
        shared_out = self.shared_experts(shared_input)  # (S, B, h)
        _, b, h = shared_out.shape
        candidates = torch.cat(
            [task_out.reshape(t, k, b, h), shared_out.unsqueeze(0).expand(t, -1, -1, -1)], dim=1
        )  # (T, k + S, B, h)
        gates = torch.softmax(self.task_gates(task_inputs), dim=2)  # (T, B, k + S)
        task_mixed = gates[:, :, 0:1] * candidates[:, 0]
        for g in range(1, candidates.shape[1]):
            task_mixed = task_mixed + gates[:, :, g : g + 1] * candidates[:, g]
        if self.shared_gate is None:
            return task_mixed, None
        shared_gates = torch.softmax(self.shared_gate(shared_input), dim=2)  # (1, B, T*k + S)
        everything = torch.cat([task_out, shared_out], dim=0)
        return task_mixed, _mix(shared_gates, everything)[0]


class PLE(MultiTaskModel):
    """Progressive Layered Extraction (Tang et al., RecSys 2020): ``n_levels`` CGC levels.

    Each level has ``n_task_experts`` experts per task and ``n_shared_experts`` shared
    ones; a task's gate mixes its own and the shared experts, and (below the top level) a
    shared gate mixes all of them into the next level's shared input.
    """

    architecture = "ple"

    def __init__(
        self,
        features: EncodedFeatures,
        tasks: Sequence[TaskSpec],
        *,
        n_levels: int = 2,
        n_task_experts: int = 1,
        n_shared_experts: int = 2,
        expert_units: Sequence[int] = (64,),
        **common: Any,
    ) -> None:
        super().__init__(features, tasks, **common)
        self.n_levels = check_positive_int(n_levels, "n_levels")
        n_task_experts = check_positive_int(n_task_experts, "n_task_experts")
        n_shared_experts = check_positive_int(n_shared_experts, "n_shared_experts")
        units = _check_units(expert_units, "expert_units", allow_empty=False)
        in_features = self.inputs.output_dim
        levels = []
        for level in range(self.n_levels):
            levels.append(
                _ExtractionLevel(
                    len(self.tasks),
                    n_task_experts,
                    n_shared_experts,
                    in_features,
                    units,
                    last=level == self.n_levels - 1,
                    dropout=self._head_options["dropout"],
                    batch_norm=self._head_options["batch_norm"],
                )
            )
            in_features = units[-1]
        self.levels = nn.ModuleList(levels)
        self.heads = self._heads(len(self.tasks), in_features)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x, interactions = self._encode(batch)
        task_inputs: Tensor = x
        shared: Tensor | None = x
        for level in self.levels:
            if shared is None:  # only the last level drops the shared path
                raise RuntimeError("PLE lost its shared input before the last level")
            task_inputs, shared = level(task_inputs, shared)
        return self._as_dict(self.heads(task_inputs, batch, interactions))

    def shared_parameters(self) -> list[nn.Parameter]:
        params = list(self.inputs.parameters())
        last = self.n_levels - 1
        levels = cast(list[_ExtractionLevel], list(self.levels))
        for j, level in enumerate(levels):
            if j < last - 1:  # task gates feed task experts that feed a shared gate
                params += list(level.task_gates.parameters())
            if j < last:  # task experts feed the shared gate, hence every task above
                params += list(level.task_experts.parameters())
            if level.shared_gate is not None:
                params += list(level.shared_gate.parameters())
            params += list(level.shared_experts.parameters())
        return params

    def set_output_bias(self, values: Mapping[str, float]) -> None:
        self.heads.set_output_bias(self._initial_outputs(values, self.task_names))


class ESMM(MultiTaskModel):
    """Entire Space Multi-task Model (Ma et al., SIGIR 2018).

    A CTR tower and a CVR tower over shared embeddings; ``pCTCVR = pCTR * pCVR``. The CTR
    task's loss is its own, on every row; the CVR task's loss is the CTCVR loss on every
    row (label: clicked and converted; rows clicked with an unknown conversion are masked),
    so the CVR tower is learned over the entire space, never on clicked rows alone. Other
    tasks get ordinary towers on the shared embeddings. Outputs: every task plus
    ``ctcvr_name`` (a logit whose sigmoid equals pCTR * pCVR). The CVR output is pCVR,
    P(conversion | click): its metrics (and its starting bias) use the clicked rows only,
    whether or not the task has a ``mask_column``.

    Args:
        ctr_task: the click task (default: the first binary task).
        cvr_task: the conversion task (default: the second binary task).
        ctcvr_name: key of the CTCVR output.
    """

    architecture = "esmm"

    def __init__(
        self,
        features: EncodedFeatures,
        tasks: Sequence[TaskSpec],
        *,
        ctr_task: str | None = None,
        cvr_task: str | None = None,
        ctcvr_name: str = "ctcvr",
        **common: Any,
    ) -> None:
        super().__init__(features, tasks, **common)
        binary = [t.name for t in self.tasks if t.kind == "binary"]
        if len(binary) < 2:
            raise ParetorecError(
                f"esmm needs two binary tasks (click and conversion); got {self.task_names}"
            )
        self.ctr_task = _check_task_name(ctr_task or binary[0], "ctr_task", binary)
        self.cvr_task = _check_task_name(
            cvr_task or next(n for n in binary if n != self.ctr_task), "cvr_task", binary
        )
        if self.ctr_task == self.cvr_task:
            raise ParetorecError(f"ctr_task and cvr_task must differ, got {self.ctr_task!r} twice")
        if not isinstance(ctcvr_name, str) or not ctcvr_name or ctcvr_name in self.task_names:
            raise ParetorecError(
                f"ctcvr_name must be a non-empty name that is not a task name, got "
                f"{show(ctcvr_name)}"
            )
        self.ctcvr_name = ctcvr_name
        self.ctr_index = self.task_names.index(self.ctr_task)
        self.cvr_index = self.task_names.index(self.cvr_task)
        self.other_names = [n for n in self.task_names if n != self.ctr_task]
        in_features = self.inputs.output_dim
        self.ctr_head = self._heads(1, in_features)
        self.heads = self._heads(len(self.other_names), in_features)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x, interactions = self._encode(batch)
        ctr = self.ctr_head(x, batch, interactions)[0]
        others = self.heads(x, batch, interactions)
        out = {name: others[k] for k, name in enumerate(self.other_names)}
        out[self.ctr_task] = ctr
        log_ctcvr = F.logsigmoid(ctr) + F.logsigmoid(out[self.cvr_task])
        # logit(p) = log p - log(1 - p); clamped so that p == 1 in float stays finite.
        log_ctcvr = log_ctcvr.clamp(max=-1e-7)
        out[self.ctcvr_name] = log_ctcvr - torch.log(-torch.expm1(log_ctcvr))
        return {name: out[name] for name in [*self.task_names, self.ctcvr_name]}

    def loss_outputs(self) -> list[str]:
        return [self.ctcvr_name if n == self.cvr_task else n for n in self.task_names]

    def loss_labels(self, labels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        click = labels[:, self.ctr_index]
        click_known = mask[:, self.ctr_index]
        conversion = torch.where(mask[:, self.cvr_index], labels[:, self.cvr_index], 0.0)
        clicked = click_known & (click > 0.5)
        ctcvr = torch.where(clicked, conversion, torch.zeros_like(conversion))
        # Not clicked: not converted either. Clicked with unknown conversion: no label.
        ctcvr_known = click_known & (~clicked | mask[:, self.cvr_index])
        labels = labels.clone()
        mask = mask.clone()
        labels[:, self.cvr_index] = ctcvr
        mask[:, self.cvr_index] = ctcvr_known
        return labels, mask

    def metric_labels(self, labels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The CVR task is scored (and its output started) on clicked rows only.

        pCVR is P(conversion | click): an unclicked row's conversion is 0 whatever the CVR,
        so scoring pCVR there mixes the CTR into the metric, and the mean conversion over
        every row (the CTCVR rate) is the wrong starting value for pCVR.
        """
        clicked = mask[:, self.ctr_index] & (labels[:, self.ctr_index] > 0.5)
        mask = mask.clone()
        mask[:, self.cvr_index] &= clicked
        return labels, mask

    def shared_parameters(self) -> list[nn.Parameter]:
        # The CTR tower also reaches the CTCVR loss: it is the top shared layer.
        return [*self.inputs.parameters(), *self.ctr_head.parameters()]

    def set_output_bias(self, values: Mapping[str, float]) -> None:
        self.ctr_head.set_output_bias(self._initial_outputs(values, [self.ctr_task]))
        self.heads.set_output_bias(self._initial_outputs(values, self.other_names))


ARCHITECTURES: dict[str, type[MultiTaskModel]] = {
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "esmm": ESMM,
}

#: Options every architecture takes (see :class:`MultiTaskModel`).
COMMON_OPTIONS = (
    "embedding_dim",
    "tower_units",
    "dropout",
    "embedding_dropout",
    "batch_norm",
    "id_bias",
    "fm",
)


def architecture_options(architecture: str) -> list[str]:
    """The architecture-specific keyword arguments of ``architecture``."""
    cls = ARCHITECTURES[check_architecture(architecture)]
    signature = inspect.signature(cls.__init__)
    return [
        name for name, p in signature.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def check_architecture(architecture: Any) -> str:
    if architecture not in ARCHITECTURES:
        raise ParetorecError(
            f"architecture must be one of {', '.join(repr(a) for a in ARCHITECTURES)}; "
            f"got {show(architecture)}"
        )
    return str(architecture)


def build_model(
    architecture: str,
    features: EncodedFeatures,
    tasks: Sequence[TaskSpec],
    *,
    architecture_params: Mapping[str, Any] | None = None,
    **common: Any,
) -> MultiTaskModel:
    """Instantiate an architecture by name with validated options."""
    name = check_architecture(architecture)
    params = dict(architecture_params or {})
    allowed = architecture_options(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ParetorecError(
            f"architecture_params has unknown option(s) {unknown} for {name!r}; "
            f"options are {allowed or 'none'}"
        )
    common = check_common_options(common)
    return ARCHITECTURES[name](features, tasks, **params, **common)


def check_common_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(COMMON_OPTIONS))
    if unknown:
        raise ParetorecError(
            f"unknown model option(s) {unknown}; options are {list(COMMON_OPTIONS)}"
        )
    out = dict(options)
    if "embedding_dim" in out:
        out["embedding_dim"] = check_positive_int(out["embedding_dim"], "embedding_dim")
    if "tower_units" in out:
        out["tower_units"] = _check_units(out["tower_units"], "tower_units", allow_empty=True)
    for name in ("dropout", "embedding_dropout"):
        if name in out:
            out[name] = _check_dropout(out[name], name)
    for name in ("batch_norm", "id_bias", "fm"):
        if name in out and not isinstance(out[name], bool):
            raise ParetorecError(f"{name} must be a bool, got {show(out[name])}")
    return out


def _check_units(value: Any, name: str, *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ParetorecError(f"{name} must be a list of positive ints, got {show(value)}")
    units = tuple(check_positive_int(v, f"{name} entry") for v in value)
    if not units and not allow_empty:
        raise ParetorecError(f"{name} must list at least one layer size, got {show(value)}")
    return units


def _check_dropout(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ParetorecError(f"{name} must be a number in [0, 1), got {show(value)}")
    return float(value)


def _check_task_name(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ParetorecError(
            f"{name} must name a binary task ({', '.join(repr(c) for c in choices)}); "
            f"got {show(value)}"
        )
    return str(value)
