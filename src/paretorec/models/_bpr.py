"""Bayesian Personalised Ranking matrix factorisation (BPR-MF) trained with PyTorch."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from .._validation import (
    ParetorecError,
    check_choice,
    check_fraction,
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_int,
)
from ..data import Dataset
from ..data._sampling import draw_unseen
from ._base import CandidateModel, mask_seen, register_model, top_k_indices, warn_too_few_steps

DEVICES = ("cpu", "cuda")
#: Factors start uniform in ``[-_INIT_RANGE / 2, _INIT_RANGE / 2]``: large enough for SGD to
#: leave the near-zero saddle quickly, small enough not to dominate the learned signal.
_INIT_RANGE = 0.1
#: Fewer SGD steps than this cannot converge from the random start (a warning).
MIN_STEPS = 500
#: The default epoch cap: at least this many epochs (tuned on MovieLens-100k) and at least
#: ``steps`` SGD steps (small sets need many more epochs), never more than MAX_EPOCHS.
DEFAULT_EPOCHS = 40
MAX_EPOCHS = 500


@register_model("bpr")
class BPRModel(CandidateModel):
    """BPR-MF (Rendle et al., 2009): ``score(u, i) = <p_u, q_i> + b_i``.

    Every epoch visits each training (user, positive item) pair once, in a random order,
    and pairs it with a negative item drawn uniformly from the items that user has not
    interacted with. Mini-batch SGD minimises, per triple,
    ``-log sigmoid(x_up - x_un) + regularization / 2 * (|p_u|^2 + |q_p|^2 + |q_n|^2 +
    b_p^2 + b_n^2)``; the gradient is summed over the batch (not averaged), so one step
    equals ``batch_size`` per-sample SGD steps taken from the same point, as in Cornac's
    BPR, and the regulariser only touches the rows a batch uses.

    The schedule scales with the data: by default the epoch cap is 40 epochs or what
    ``steps`` SGD steps take, whichever is more (40 on MovieLens-100k, several hundred on a
    10k-event set, where 40 epochs are only a few hundred steps and collapse towards
    popularity), and training
    early-stops on a validation carve: ``validation_share`` of each user's interactions
    (users with at least 3) are held out, nDCG@10 on them is measured every
    ``eval_every`` epochs, training stops after ``patience`` evaluations without gain, and
    the model is refitted on all the interactions for the best epoch count
    (``best_epoch``; ``epochs_run`` is how many epochs the search ran). A fit with fewer
    than ``MIN_STEPS`` steps warns (:class:`~paretorec.models.ConvergenceWarning`).

    The defaults were tuned on MovieLens-100k (per-user 75/25 split): nDCG@10 about 0.44,
    matching Cornac's BPR with 200 factors and 100 epochs, in about 40 epochs.

    Args:
        factors: latent dimension.
        epochs: the epoch cap (a ceiling: early stopping may stop sooner); ``None``
            (default): ``DEFAULT_EPOCHS`` or ``steps`` SGD steps' worth, whichever is
            more, at most ``MAX_EPOCHS``.
        steps: SGD steps (batches) the default epoch cap guarantees at least.
        validation_share: share of each user's interactions held out for early stopping,
            or ``None`` to train the full cap on everything.
        patience: evaluations without improvement before stopping.
        eval_every: epochs between evaluations (default: a twentieth of the cap).
        learning_rate: SGD step size (per triple; see above).
        regularization: L2 weight on the factors and biases a triple touches.
        batch_size: triples per SGD step.
        item_bias: learn a per-item bias.
        seed: seeds the initialisation and the sampling: reruns on the CPU give identical
            scores; on CUDA, atomic scatter-adds make reruns differ in the last float bits
            (about 1e-6), which rarely changes a ranking.
        device: ``"cpu"`` or ``"cuda"`` (an error if CUDA is not available).
        num_threads: torch intra-op threads while training on the CPU (restored after
            ``fit``), or ``None`` to keep torch's setting. The per-step tensors are small,
            so a second thread saves only about a quarter of the time on idle cores, and
            on cores shared with other work the threads' synchronisation can stall
            training tenfold; hence 1.
        progress: show a progress bar over epochs with the mean ranking loss.
    """

    def __init__(
        self,
        factors: int = 200,
        epochs: int | None = None,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        batch_size: int = 1024,
        item_bias: bool = True,
        seed: int = 0,
        device: str = "cpu",
        num_threads: int | None = 1,
        progress: bool = False,
        steps: int = 3000,
        validation_share: float | None = 0.1,
        patience: int = 5,
        eval_every: int | None = None,
    ) -> None:
        super().__init__()
        self.factors = check_positive_int(factors, "factors")
        self.epochs = None if epochs is None else check_positive_int(epochs, "epochs")
        self.steps = check_positive_int(steps, "steps")
        self.validation_share = (
            None
            if validation_share is None
            else check_fraction(validation_share, "validation_share")
        )
        self.patience = check_positive_int(patience, "patience")
        self.eval_every = (
            None if eval_every is None else check_positive_int(eval_every, "eval_every")
        )
        self.learning_rate = _check_positive_float(learning_rate, "learning_rate")
        self.regularization = check_nonnegative_float(regularization, "regularization")
        if not np.isfinite(self.regularization):
            raise ParetorecError(
                f"regularization must be a finite non-negative number, got {regularization!r}"
            )
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.item_bias = _check_bool(item_bias, "item_bias")
        self.seed = check_nonnegative_int(seed, "seed")
        self.device = check_choice(device, "device", DEVICES)
        self.num_threads = (
            None if num_threads is None else check_positive_int(num_threads, "num_threads")
        )
        self.progress = _check_bool(progress, "progress")
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.item_biases: np.ndarray | None = None
        #: Mean ranking loss ``-log sigmoid(x_up - x_un)`` of each epoch of the last fit.
        self.loss_history: list[float] = []
        #: (epoch, validation nDCG@10) of each early-stopping evaluation of the last fit.
        self.validation_history: list[tuple[int, float]] = []
        #: Epochs the early-stopping search ran, and the epoch count it chose (the final
        #: model's); without validation both are the epoch cap.
        self.epochs_run: int | None = None
        self.best_epoch: int | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "batch_size": self.batch_size,
            "item_bias": self.item_bias,
            "seed": self.seed,
            "device": self.device,
            "num_threads": self.num_threads,
            "progress": self.progress,
            "steps": self.steps,
            "validation_share": self.validation_share,
            "patience": self.patience,
            "eval_every": self.eval_every,
        }

    # ------------------------------------------------------------------ training
    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        device = self._torch_device()
        previous_threads = torch.get_num_threads()
        wanted = previous_threads if device.type != "cpu" else self.num_threads
        if wanted is not None and wanted != previous_threads:
            torch.set_num_threads(wanted)
        try:
            self._train(train, matrix, device)
        finally:
            if torch.get_num_threads() != previous_threads:
                torch.set_num_threads(previous_threads)

    def _train(self, train: Dataset, matrix: sp.csr_matrix, device: torch.device) -> None:
        n_items = matrix.shape[1]
        counts = np.diff(matrix.indptr)
        if not (counts[counts > 0] < n_items).any():
            raise ParetorecError(
                f"train: every user with interactions has interacted with all {n_items} "
                f"items, so BPR has no negative item to sample (dataset {train.name!r})"
            )
        batches = max(1, math.ceil(matrix.nnz / self.batch_size))
        if self.epochs is not None:
            cap = self.epochs
        else:
            cap = min(MAX_EPOCHS, max(DEFAULT_EPOCHS, math.ceil(self.steps / batches)))
        warn_too_few_steps(
            "bpr",
            cap * batches,
            MIN_STEPS,
            f"{cap} epoch(s) x {batches} batch(es) of {self.batch_size}: raise epochs (or "
            "steps) or lower batch_size",
        )
        self.validation_history = []
        fit_matrix, holdout = self._carve(matrix)
        best = cap
        if holdout is not None:
            _, evaluations = self._sgd(fit_matrix, cap, device, holdout=holdout)
            self.validation_history = evaluations
            self.epochs_run = evaluations[-1][0] if evaluations else cap
            best = max(evaluations, key=lambda pair: pair[1])[0] if evaluations else cap
        else:
            self.epochs_run = cap
        self.best_epoch = best
        factors, _ = self._sgd(matrix, best, device)
        self.user_factors, self.item_factors, self.item_biases = factors

    def _carve(self, matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        """Hold out ``validation_share`` of each user's items (users with >= 3 items)."""
        if self.validation_share is None:
            return matrix, None
        counts = np.diff(matrix.indptr)
        rows = np.repeat(np.arange(matrix.shape[0]), counts)
        draws = np.random.default_rng(self.seed + 1).random(matrix.nnz)
        order = np.lexsort((draws, rows))
        position = np.empty(matrix.nnz, dtype=np.int64)
        starts = np.repeat(matrix.indptr[:-1], counts)
        position[order] = np.arange(matrix.nnz) - starts[order]
        quota = np.maximum(1, np.round(self.validation_share * counts)).astype(np.int64)
        held = (counts[rows] >= 3) & (position < quota[rows])
        if not held.any():
            return matrix, None
        coo = matrix.tocoo()
        shape = matrix.shape
        keep = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=shape)
        out = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=shape)
        return keep, out

    def _sgd(
        self,
        matrix: sp.csr_matrix,
        epochs: int,
        device: torch.device,
        holdout: sp.csr_matrix | None = None,
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[tuple[int, float]]]:
        """Train from scratch for ``epochs`` (early-stopping on ``holdout`` when given)."""
        n_users, n_items = matrix.shape
        counts = np.diff(matrix.indptr)
        users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
        positives = matrix.indices.astype(np.int64)
        # A user who has interacted with every item has no negative to contrast with.
        trainable = counts[users] < n_items
        users, positives = users[trainable], positives[trainable]
        # Sorted (user, item) keys make "has u interacted with j?" a binary search.
        seen_keys = np.sort(users * n_items + positives)

        rng = np.random.default_rng(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        # Initialised on the CPU so that every device starts from the same factors.
        user_factors = _uniform_init(n_users, self.factors, generator).to(device)
        item_factors = _uniform_init(n_items, self.factors, generator).to(device)
        item_biases = torch.zeros(n_items, device=device)
        lr, reg = self.learning_rate, self.regularization

        n_pairs = len(users)
        self.loss_history = []
        every = self.eval_every or max(1, epochs // 20)
        evaluations: list[tuple[int, float]] = []
        best_score, stale = -math.inf, 0
        label = "bpr (early stopping)" if holdout is not None else "bpr"
        bar = tqdm(range(epochs), desc=label, unit="epoch", disable=not self.progress)
        for epoch in bar:
            order = rng.permutation(n_pairs)
            epoch_users = users[order]
            epoch_negatives = draw_unseen(epoch_users, seen_keys, n_items, rng)
            all_u = torch.from_numpy(epoch_users).to(device)
            all_i = torch.from_numpy(positives[order]).to(device)
            all_j = torch.from_numpy(epoch_negatives).to(device)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for start in range(0, n_pairs, self.batch_size):
                u = all_u[start : start + self.batch_size]
                i = all_i[start : start + self.batch_size]
                j = all_j[start : start + self.batch_size]
                p_u, q_i, q_j = user_factors[u], item_factors[i], item_factors[j]
                x = (p_u * (q_i - q_j)).sum(dim=1)
                if self.item_bias:
                    b_i, b_j = item_biases[i], item_biases[j]
                    x += b_i - b_j
                total += torch.nn.functional.softplus(-x).sum(dtype=torch.float64)
                # d(-log sigmoid(x)) / dx = -sigmoid(-x); steps go against the gradient.
                weight = torch.sigmoid(-x)
                w = weight[:, None]
                user_factors.index_add_(0, u, w * (q_i - q_j) - reg * p_u, alpha=lr)
                item_factors.index_add_(0, i, w * p_u - reg * q_i, alpha=lr)
                item_factors.index_add_(0, j, -w * p_u - reg * q_j, alpha=lr)
                if self.item_bias:
                    item_biases.index_add_(0, i, weight - reg * b_i, alpha=lr)
                    item_biases.index_add_(0, j, -weight - reg * b_j, alpha=lr)
            self.loss_history.append(float(total) / max(n_pairs, 1))
            bar.set_postfix(loss=f"{self.loss_history[-1]:.4f}")
            if holdout is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
                score = _holdout_ndcg(
                    user_factors.cpu().numpy(),
                    item_factors.cpu().numpy(),
                    item_biases.cpu().numpy(),
                    matrix,
                    holdout,
                )
                evaluations.append((epoch + 1, score))
                bar.set_postfix(loss=f"{self.loss_history[-1]:.4f}", valid_ndcg=f"{score:.4f}")
                if score > best_score:
                    best_score, stale = score, 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        factors = (
            user_factors.cpu().numpy().astype(np.float32),
            item_factors.cpu().numpy().astype(np.float32),
            item_biases.cpu().numpy().astype(np.float32),
        )
        return factors, evaluations

    def _torch_device(self) -> torch.device:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ParetorecError(
                "device is 'cuda' but CUDA is not available in this torch build or machine; "
                "use device='cpu'"
            )
        return torch.device(self.device)

    # ------------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray) -> np.ndarray:
        user_factors, item_factors, item_biases = self._factors()
        scores = user_factors[users] @ item_factors.T
        scores += item_biases
        return scores.astype(np.float32, copy=False)

    def _factors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.user_factors is None or self.item_factors is None or self.item_biases is None:
            raise ParetorecError("BPRModel has no learned factors; call fit(train) first")
        return self.user_factors, self.item_factors, self.item_biases

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        user_factors, item_factors, item_biases = self._factors()
        return {
            "user_factors": user_factors,
            "item_factors": item_factors,
            "item_biases": item_biases,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        missing = {"user_factors", "item_factors", "item_biases"} - set(state)
        if missing:
            raise ParetorecError(f"saved BPR model lacks array(s) {sorted(missing)}")
        self.user_factors = np.asarray(state["user_factors"], dtype=np.float32)
        self.item_factors = np.asarray(state["item_factors"], dtype=np.float32)
        self.item_biases = np.asarray(state["item_biases"], dtype=np.float32)


def _holdout_ndcg(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_biases: np.ndarray,
    seen: sp.csr_matrix,
    holdout: sp.csr_matrix,
    k: int = 10,
) -> float:
    """Mean nDCG@k of the held-out items (training items excluded) over users with some."""
    users = np.flatnonzero(np.diff(holdout.indptr) > 0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for start in range(0, len(users), 1024):
        batch = users[start : start + 1024]
        scores = user_factors[batch] @ item_factors.T + item_biases
        mask_seen(scores, seen, batch)
        top = top_k_indices(scores.astype(np.float32), k)
        relevant = holdout[batch]
        dense = relevant.toarray()
        hits = np.take_along_axis(dense, np.ascontiguousarray(top), axis=1) > 0
        ideal = np.minimum(np.diff(relevant.indptr), k)
        idcg = np.cumsum(discounts)[ideal - 1]
        total += float(((hits * discounts).sum(axis=1) / idcg).sum())
    return total / max(len(users), 1)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParetorecError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def _check_positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParetorecError(f"{name} must be a positive finite number, got {value!r}")
    number = float(value)
    if not 0 < number < np.inf:
        raise ParetorecError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _uniform_init(rows: int, columns: int, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(rows, columns, generator=generator) - 0.5) * _INIT_RANGE
