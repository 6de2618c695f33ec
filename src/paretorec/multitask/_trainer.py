"""Mini-batch training of a multi-task model with a multi-objective strategy.

The rows table is encoded once into device tensors (a :class:`Batch` holding every row); an
epoch permutes it with one gather and walks contiguous slices, so a step costs one model
forward and backward and nothing else. The strategy turns the per-task losses into
gradients (``strategy.backward``), the optimiser steps, and validation after each epoch
drives early stopping and best-checkpoint restore.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .._threads import thread_limit
from .._validation import (
    ParetorecError,
    check_choice,
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_int,
    show,
)
from ..evaluation import auc, logloss, rmse
from . import _distributed
from ._features import EncodedFeatures, TaskSpec, check_rows, task_labels
from ._models import ESMM, Batch, MultiTaskModel
from ._strategies import Strategy, get_strategy

#: A regulariser: ``(batch, outputs) -> extra loss`` (outputs are the model's raw outputs:
#: logits for binary tasks); ``None`` adds nothing.
Regularizer = Callable[[Batch, Mapping[str, Tensor]], Tensor | None]

METRICS = ("auc", "logloss", "rmse", "loss")
MAXIMISED = ("auc",)
OPTIMIZERS = ("adam", "adamw")
DEVICES = ("auto", "cpu", "cuda")


# --------------------------------------------------------------------------- rows -> tensors
def encode_rows(
    rows: pd.DataFrame,
    features: EncodedFeatures,
    tasks: Sequence[TaskSpec] | None = None,
    *,
    name: str = "rows",
) -> Batch:
    """Encode a rows table into one :class:`Batch` (labels only when ``tasks`` is given).

    Dense features and labels take torch's default float dtype (float32 unless
    ``torch.set_default_dtype`` changed it, as the ``scale`` benchmark's float64 DDP check
    does), so a model built under float64 trains in float64 end to end."""
    users, items = check_rows(rows, features.n_users, features.n_items, name)
    floats = torch.get_default_dtype()
    labels = mask = None
    if tasks is not None:
        arrays = task_labels(rows, tasks, name)
        labels = torch.from_numpy(arrays.labels).to(floats)
        mask = torch.from_numpy(arrays.mask)
    return Batch(
        user=torch.from_numpy(np.array(users, dtype=np.int64)),
        item=torch.from_numpy(np.array(items, dtype=np.int64)),
        dense=torch.from_numpy(features.row_dense(rows)).to(floats),
        labels=labels,
        mask=mask,
        index=torch.arange(len(rows), dtype=torch.int64),
    )


def label_means(
    batch: Batch, tasks: Sequence[TaskSpec], *, model: MultiTaskModel | None = None
) -> dict[str, float]:
    """Mean label of each task over the rows where it exists (the outputs' starting point).

    With ``model``, over the rows its outputs are scored on
    (:meth:`MultiTaskModel.metric_labels`): ESMM's pCVR starts at the conversion rate of
    the clicked rows, not at the CTCVR rate of every row.
    """
    if batch.labels is None or batch.mask is None:
        raise ParetorecError("label_means needs a batch with labels")
    labels, mask = batch.labels, batch.mask
    if model is not None:
        labels, mask = model.metric_labels(labels, mask)
    out = {}
    for k, task in enumerate(tasks):
        where = mask[:, k]
        out[task.name] = float(labels[where, k].mean()) if bool(where.any()) else 0.0
    return out


# --------------------------------------------------------------------------- devices, seeds
def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; ``"cuda"`` without CUDA is an error."""
    if not isinstance(device, str):
        raise ParetorecError(f"device must be one of {', '.join(DEVICES)}; got {show(device)}")
    kind = device.split(":", 1)[0]
    check_choice(kind, "device", DEVICES)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ParetorecError(
            "device is 'cuda' but CUDA is not available in this torch build or machine; "
            "use device='cpu' or 'auto'"
        )
    return torch.device(device)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Seed torch's global generators inside the block and restore them afterwards."""
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` threads in torch and the BLAS / OpenMP pools (``None``:
    paretorec's setting, ``paretorec --threads`` / ``$PARETOREC_THREADS``); restored after."""
    with thread_limit(n):
        yield


# --------------------------------------------------------------------------- metrics
def default_metric(task: TaskSpec) -> str:
    return "auc" if task.kind == "binary" else "rmse"


def task_metrics(
    predictions: Mapping[str, np.ndarray],
    labels: np.ndarray,
    mask: np.ndarray,
    tasks: Sequence[TaskSpec],
) -> dict[str, float]:
    """``<task>_auc`` and ``<task>_logloss`` per binary task, ``<task>_rmse`` per regression.

    Computed over the rows where the task's label exists. A metric that is undefined there
    (no labelled row, or a single class for AUC) is NaN: a documented policy, not an error,
    so one degenerate validation slice never aborts training.
    """
    out: dict[str, float] = {}
    for k, task in enumerate(tasks):
        where = mask[:, k]
        y = labels[where, k]
        p = np.asarray(predictions[task.name], dtype=np.float64)[where]
        if task.kind == "binary":
            both = y.size > 0 and 0 < y.sum() < y.size
            out[f"{task.name}_auc"] = auc(y, p) if both else math.nan
            out[f"{task.name}_logloss"] = logloss(y, p) if y.size else math.nan
        else:
            out[f"{task.name}_rmse"] = rmse(y, p) if y.size else math.nan
    return out


def model_metrics(
    model: MultiTaskModel,
    predictions: Mapping[str, np.ndarray],
    labels: Tensor,
    mask: Tensor,
) -> dict[str, float]:
    """:func:`task_metrics` on the rows each output is scored on, plus ESMM's CTCVR.

    The rows are :meth:`MultiTaskModel.metric_labels` (ESMM: pCVR on clicked rows only);
    ESMM adds ``<ctcvr>_auc`` / ``_logloss`` over every row whose click-and-convert label
    is known.
    """
    scored_labels, scored_mask = model.metric_labels(labels, mask)
    metrics = task_metrics(
        predictions, scored_labels.cpu().numpy(), scored_mask.cpu().numpy(), model.tasks
    )
    if isinstance(model, ESMM):
        derived, known = model.loss_labels(labels, mask)
        k = model.cvr_index
        ctcvr = TaskSpec(model.ctcvr_name, "binary")
        metrics.update(
            task_metrics(
                predictions,
                derived[:, k : k + 1].cpu().numpy(),
                known[:, k : k + 1].cpu().numpy(),
                [ctcvr],
            )
        )
    return metrics


@torch.no_grad()
def forward_all(model: MultiTaskModel, batch: Batch, batch_size: int) -> dict[str, Tensor]:
    """Raw outputs of ``model`` over every row of ``batch`` (evaluation mode, in chunks)."""
    was_training = model.training
    if was_training:  # train() walks every submodule: skip it when already evaluating
        model.eval()
    try:
        parts: dict[str, list[Tensor]] = {}
        for start in range(0, len(batch), batch_size):
            outputs = model(batch.slice(start, start + batch_size))
            for key, value in outputs.items():
                parts.setdefault(key, []).append(value)
        if not parts:  # no rows: empty outputs with the right keys
            return {key: value[:0] for key, value in model(batch.slice(0, 1)).items()}
        return {key: torch.cat(values) for key, values in parts.items()}
    finally:
        if was_training:
            model.train()


# --------------------------------------------------------------------------- history
@dataclass
class EpochRecord:
    """What one epoch did: mean training loss per task, validation metrics, speed."""

    epoch: int
    train_loss: dict[str, float]
    valid: dict[str, float]
    seconds: float
    samples_per_second: float
    diagnostics: dict[str, float] = field(default_factory=dict)


@dataclass
class History:
    """The per-epoch record of one fit, and which epoch's weights were kept."""

    epochs: list[EpochRecord] = field(default_factory=list)
    monitor: str | None = None
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "monitor": self.monitor,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> History:
        return cls(
            epochs=[EpochRecord(**e) for e in raw.get("epochs", [])],
            monitor=raw.get("monitor"),
            best_epoch=raw.get("best_epoch"),
            best_value=raw.get("best_value"),
            stopped_early=bool(raw.get("stopped_early", False)),
        )

    def metric(self, name: str) -> list[float]:
        """One validation metric (or ``train_<task>`` loss) per epoch."""
        if name.startswith("train_"):
            return [e.train_loss[name[len("train_") :]] for e in self.epochs]
        return [e.valid[name] for e in self.epochs]

    @property
    def samples_per_second(self) -> float:
        """Mean training throughput over the epochs (rows per second, validation excluded)."""
        seconds = sum(e.seconds for e in self.epochs)
        rows = sum(e.seconds * e.samples_per_second for e in self.epochs)
        return rows / seconds if seconds > 0 else 0.0

    def __repr__(self) -> str:
        best = f", best_epoch={self.best_epoch}" if self.best_epoch is not None else ""
        return f"History(epochs={len(self.epochs)}, monitor={self.monitor!r}{best})"


# --------------------------------------------------------------------------- trainer
class Trainer:
    """Trains a :class:`MultiTaskModel` with a multi-objective strategy.

    Args:
        epochs: maximum passes over the training rows.
        batch_size: rows per optimiser step (the last, smaller batch is kept unless it has
            a single row, which BatchNorm cannot normalise).
        lr: learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 penalty (Adam) on model weights;
            strategy parameters are never decayed.
        optimizer: ``"adamw"`` or ``"adam"``.
        patience: epochs without improvement of the monitored metric before stopping;
            ``None`` trains every epoch (the best epoch is still restored).
        monitor_task / monitor_metric: the validation metric that picks the best epoch:
            ``auc`` / ``logloss`` of a binary task, ``rmse`` of a regression task, or
            ``loss`` (the sum of the validation task losses). Defaults: the first task and
            its natural metric (AUC or RMSE). The sum follows the largest loss: for ESMM
            it is the CTR loss plus the much smaller CTCVR loss, so it picks the epoch of
            the best CTR; monitor the conversion task to pick the best CVR (ESMM scores
            pCVR on clicked rows, :meth:`MultiTaskModel.metric_labels`).
        min_delta: an improvement must exceed this to count.
        restore_best: load the best epoch's weights at the end (needs validation rows).
        seed: seeds the shuffling, dropout and any randomness of the strategy.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        progress: show a tqdm bar over epochs.
        eval_batch_size: rows per forward pass during validation.
        num_threads: threads (torch and BLAS) while training (restored afterwards), or
            ``None`` for paretorec's setting (``paretorec --threads``). On cores shared
            with other work one thread is often faster than two: the threads'
            synchronisation stalls (see BPRModel).
    """

    def __init__(
        self,
        *,
        epochs: int = 30,
        batch_size: int = 1024,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adamw",
        patience: int | None = 3,
        monitor_task: str | None = None,
        monitor_metric: str | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
        eval_batch_size: int = 16384,
        num_threads: int | None = None,
    ) -> None:
        self.epochs = check_positive_int(epochs, "epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.lr = _check_positive_float(lr, "lr")
        self.weight_decay = check_nonnegative_float(weight_decay, "weight_decay")
        self.optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
        self.patience = None if patience is None else check_nonnegative_int(patience, "patience")
        if monitor_task is not None and not isinstance(monitor_task, str):
            raise ParetorecError(
                f"monitor_task must be a task name or None, got {show(monitor_task)}"
            )
        self.monitor_task = monitor_task
        self.monitor_metric = (
            None
            if monitor_metric is None
            else check_choice(monitor_metric, "monitor_metric", METRICS)
        )
        self.min_delta = check_nonnegative_float(min_delta, "min_delta")
        self.restore_best = _check_bool(restore_best, "restore_best")
        self.seed = check_nonnegative_int(seed, "seed")
        resolve_device(device)  # validate now, resolve at fit time
        self.device = device
        self.progress = _check_bool(progress, "progress")
        self.eval_batch_size = check_positive_int(eval_batch_size, "eval_batch_size")
        self.num_threads = (
            None if num_threads is None else check_positive_int(num_threads, "num_threads")
        )

    def get_params(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "optimizer": self.optimizer,
            "patience": self.patience,
            "monitor_task": self.monitor_task,
            "monitor_metric": self.monitor_metric,
            "min_delta": self.min_delta,
            "restore_best": self.restore_best,
            "seed": self.seed,
            "device": self.device,
            "progress": self.progress,
            "eval_batch_size": self.eval_batch_size,
            "num_threads": self.num_threads,
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Trainer({params})"

    # ------------------------------------------------------------------ monitor
    def monitor_for(self, tasks: Sequence[TaskSpec]) -> tuple[str, bool]:
        """The monitored metric's key in the validation dict and whether higher is better."""
        names = [t.name for t in tasks]
        task_name = self.monitor_task if self.monitor_task is not None else names[0]
        if task_name not in names:
            raise ParetorecError(
                f"monitor_task must be one of {', '.join(repr(n) for n in names)}; "
                f"got {task_name!r}"
            )
        task = tasks[names.index(task_name)]
        metric = self.monitor_metric or default_metric(task)
        if metric == "loss":
            return "loss", False
        allowed = ("auc", "logloss") if task.kind == "binary" else ("rmse",)
        if metric not in allowed:
            raise ParetorecError(
                f"monitor_metric {metric!r} does not apply to the {task.kind} task "
                f"{task_name!r}; use {' or '.join(repr(a) for a in (*allowed, 'loss'))}"
            )
        return f"{task_name}_{metric}", metric in MAXIMISED

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        model: MultiTaskModel,
        train: Batch,
        valid: Batch | None = None,
        *,
        strategy: Strategy | None = None,
        regularizer: Regularizer | None = None,
    ) -> History:
        """Train ``model`` in place on ``train`` (validating on ``valid``); returns the history.

        Inside an initialised ``torch.distributed`` process group of several ranks (e.g.
        under ``torchrun``) the fit is data-parallel, with the parameters one process would
        reach: see :mod:`paretorec.multitask._distributed`.
        """
        if not isinstance(model, MultiTaskModel):
            raise ParetorecError(f"model must be a MultiTaskModel, got {type(model).__name__}")
        tasks = model.tasks
        for part, name in ((train, "train"), (valid, "valid")):
            if part is None:
                continue
            if part.labels is None or part.mask is None:
                raise ParetorecError(f"{name} rows must carry labels (encode them with tasks)")
            if part.labels.shape[1] != len(tasks):
                raise ParetorecError(
                    f"{name} rows carry {part.labels.shape[1]} label columns, the model has "
                    f"{len(tasks)} tasks"
                )
        if len(train) == 0:
            raise ParetorecError("train rows are empty")
        if strategy is None:
            strategy = get_strategy("fixed", len(tasks))
        if not isinstance(strategy, Strategy):
            raise ParetorecError(f"strategy must be a Strategy, got {type(strategy).__name__}")
        if strategy.n_tasks != len(tasks):
            raise ParetorecError(
                f"strategy was built for {strategy.n_tasks} tasks, the model has {len(tasks)}"
            )
        if regularizer is not None and not callable(regularizer):
            raise ParetorecError(f"regularizer must be callable, got {type(regularizer).__name__}")
        monitor, maximise = self.monitor_for(tasks) if valid is not None else (None, False)
        _distributed.check_supported(model, strategy, regularizer)
        device = resolve_device(self.device)
        with seeded(self.seed, device), threads(self.num_threads):
            return self._fit(model, train, valid, strategy, regularizer, monitor, maximise, device)

    def _fit(
        self,
        model: MultiTaskModel,
        train: Batch,
        valid: Batch | None,
        strategy: Strategy,
        regularizer: Regularizer | None,
        monitor: str | None,
        maximise: bool,
        device: torch.device,
    ) -> History:
        model.to(device)
        for p in strategy.parameters():
            p.data = p.data.to(device)
        # under DDP (a process group of >1 ranks) this rank keeps its shard of the rows
        ddp = _distributed.current()
        n = len(train)
        if ddp is not None:
            train = train.take(_distributed.shard_positions(n, ddp))
        train = train.to(device)
        valid = valid.to(device) if valid is not None else None
        optimizer = self._optimizer(model, strategy)
        shared = model.shared_parameters()
        generator = torch.Generator().manual_seed(self.seed)
        history = History(monitor=monitor)
        best_state: dict[str, Tensor] | None = None
        best_value = -math.inf if maximise else math.inf
        bad_epochs = 0
        n_tasks = len(model.tasks)
        bar = tqdm(range(1, self.epochs + 1), desc=model.architecture, unit="epoch",
                   disable=not self.progress or not _distributed.is_main_process())  # fmt: skip
        for epoch in bar:
            model.train()
            start_time = time.perf_counter()
            order = torch.randperm(n, generator=generator)
            bounds = [*range(0, n, self.batch_size), n]
            if ddp is not None:  # this rank's rows of each global batch
                order, bounds = _distributed.epoch_plan(order, self.batch_size, ddp)
            shuffled = train.take(order.to(device))
            labels, mask = _labelled(shuffled)
            if ddp is not None:
                counts = _distributed.label_counts(model, labels, mask, bounds)
            loss_sum = torch.zeros(n_tasks, dtype=torch.float64, device=device)
            n_steps = 0
            n_seen = 0
            diagnostics: dict[str, float] = {}
            for step, (start, stop) in enumerate(itertools.pairwise(bounds)):
                batch = shuffled.slice(start, stop)
                if min(self.batch_size, n - step * self.batch_size) < 2 and n_steps > 0:
                    continue  # a lone trailing row (BatchNorm cannot normalise one row)
                outputs = model(batch)
                losses = model.task_losses(outputs, labels[start:stop], mask[start:stop])
                if ddp is not None:
                    losses = _distributed.global_losses(
                        model, losses, labels[start:stop], mask[start:stop], counts[step], ddp
                    )
                extra = regularizer(batch, outputs) if regularizer is not None else None
                optimizer.zero_grad(set_to_none=True)
                info = strategy.backward(losses, shared_parameters=shared, extra_loss=extra)
                if ddp is not None:
                    _distributed.average_gradients(
                        _distributed.all_parameters(model, strategy), ddp
                    )
                optimizer.step()
                loss_sum += losses.detach().to(torch.float64)
                for key, value in (info or {}).items():
                    diagnostics[key] = diagnostics.get(key, 0.0) + float(value)
                n_steps += 1
                n_seen += len(batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start_time
            mean_losses = (loss_sum / max(n_steps, 1)).cpu().tolist()
            if not all(math.isfinite(v) for v in mean_losses):
                raise ParetorecError(
                    f"training diverged at epoch {epoch}: task losses {mean_losses}; "
                    "lower lr or check the labels"
                )
            strategy.end_epoch(mean_losses)
            record = EpochRecord(
                epoch=epoch,
                train_loss=dict(zip(model.task_names, mean_losses, strict=True)),
                valid=self.validate(model, valid) if valid is not None else {},
                seconds=seconds,
                samples_per_second=n_seen / seconds if seconds > 0 else 0.0,
                diagnostics={k: v / max(n_steps, 1) for k, v in diagnostics.items()},
            )
            history.epochs.append(record)
            postfix = {"loss": f"{sum(mean_losses):.4f}"}
            if monitor is not None:
                value = record.valid[monitor]
                postfix[monitor] = f"{value:.4f}"
                improved = (
                    value > best_value + self.min_delta
                    if maximise
                    else value < best_value - self.min_delta
                )
                if improved:
                    best_value = value
                    history.best_epoch, history.best_value = epoch, value
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    bad_epochs = 0
                else:
                    bad_epochs += 1
            bar.set_postfix(postfix)
            if self.patience is not None and monitor is not None and bad_epochs >= self.patience:
                history.stopped_early = True
                break
        if self.restore_best and best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return history

    def validate(self, model: MultiTaskModel, valid: Batch) -> dict[str, float]:
        """Every task metric on ``valid`` (:func:`model_metrics`) plus ``loss``, the sum of
        the task losses."""
        if valid.labels is None or valid.mask is None:
            raise ParetorecError("validation rows must carry labels")
        outputs = forward_all(model, valid, self.eval_batch_size)
        with torch.no_grad():
            losses = model.task_losses(outputs, valid.labels, valid.mask)
        predictions = {k: v.cpu().numpy() for k, v in model.predictions(outputs).items()}
        metrics = model_metrics(model, predictions, valid.labels, valid.mask)
        metrics["loss"] = float(losses.sum())
        return metrics

    def _optimizer(self, model: MultiTaskModel, strategy: Strategy) -> torch.optim.Optimizer:
        groups: list[dict[str, Any]] = [
            {"params": [p for p in model.parameters() if p.requires_grad]}
        ]
        extra = [p for p in strategy.parameters() if p.requires_grad]
        if extra:
            groups.append({"params": extra, "weight_decay": 0.0})
        kind = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
        try:
            # The fused kernel updates every tensor in one call: 3x faster steps on the CPU.
            return kind(groups, lr=self.lr, weight_decay=self.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # torch or device without fused Adam
            return kind(groups, lr=self.lr, weight_decay=self.weight_decay)


def _labelled(batch: Batch) -> tuple[Tensor, Tensor]:
    if batch.labels is None or batch.mask is None:
        raise ParetorecError("rows must carry labels (encode them with tasks)")
    return batch.labels, batch.mask


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParetorecError(f"{name} must be a bool, got {show(value)} ({type(value).__name__})")
    return bool(value)


def _check_positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ParetorecError(f"{name} must be a positive finite number, got {show(value)}")
    number = float(value)
    if not 0 < number < math.inf:
        raise ParetorecError(f"{name} must be a positive finite number, got {show(value)}")
    return number
