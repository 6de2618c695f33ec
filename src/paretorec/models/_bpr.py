"""Bayesian Personalised Ranking matrix factorisation (BPR-MF) trained with PyTorch."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from .._threads import thread_limit
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


#: (user, history item) pairs per fold-in chunk (its work arrays are pairs x negatives).
_FOLD_IN_CHUNK_PAIRS = 65_536


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
        num_threads: threads (torch and BLAS) while training on the CPU (restored after
            ``fit``), or ``None`` for paretorec's setting (``paretorec --threads``). The
            per-step tensors are small, so a second thread saves only about a quarter of
            the time on idle cores, and on cores shared with other work the threads'
            synchronisation can stall training tenfold; hence 1.
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
        self._train(train, matrix, self._torch_device())

    def _fit_threads(self) -> int | None:
        """``num_threads`` on the CPU; on an accelerator paretorec's setting."""
        return self.num_threads if self._torch_device().type == "cpu" else None

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
        factors = (user_factors, item_factors, item_biases)
        self.loss_history, evaluations = self._epochs(
            users,
            positives,
            seen_keys,
            n_items,
            factors,
            epochs,
            rng,
            device,
            matrix=matrix,
            holdout=holdout,
        )
        arrays = tuple(f.cpu().numpy().astype(np.float32) for f in factors)
        return (arrays[0], arrays[1], arrays[2]), evaluations

    def _epochs(
        self,
        users: np.ndarray,
        positives: np.ndarray,
        seen_keys: np.ndarray,
        n_items: int,
        factors: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        epochs: int,
        rng: np.random.Generator,
        device: torch.device,
        *,
        matrix: sp.csr_matrix | None = None,
        holdout: sp.csr_matrix | None = None,
    ) -> tuple[list[float], list[tuple[int, float]]]:
        """``epochs`` passes of SGD over the (user, positive) pairs, updating ``factors`` in
        place; with ``holdout`` (and the training ``matrix``), nDCG on it every few epochs
        and a stop after ``patience`` evaluations without a gain. Returns the mean loss per
        epoch and the ``(epoch, holdout nDCG)`` evaluations."""
        user_factors, item_factors, item_biases = factors
        lr, reg = self.learning_rate, self.regularization
        n_pairs = len(users)
        history: list[float] = []
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
            history.append(float(total) / max(n_pairs, 1))
            bar.set_postfix(loss=f"{history[-1]:.4f}")
            if (
                holdout is not None
                and matrix is not None
                and ((epoch + 1) % every == 0 or epoch + 1 == epochs)
            ):
                score = _holdout_ndcg(
                    user_factors.cpu().numpy(),
                    item_factors.cpu().numpy(),
                    item_biases.cpu().numpy(),
                    matrix,
                    holdout,
                )
                evaluations.append((epoch + 1, score))
                bar.set_postfix(loss=f"{history[-1]:.4f}", valid_ndcg=f"{score:.4f}")
                if score > best_score:
                    best_score, stale = score, 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        return history, evaluations

    def partial_fit(
        self, data: Dataset, *, epochs: int = 2, replay: float = 1.0, seed: int | None = None
    ) -> BPRModel:
        """Absorb new interactions without a full retrain.

        ``data`` holds everything known now, with the model's id maps (same numbers of users
        and items). Its interactions the model has not seen are trained for ``epochs``
        epochs from the current factors, mixed with ``replay`` times as many old pairs
        drawn at random (so the item factors do not drift toward the newest users only);
        negatives avoid every known interaction. Updates :attr:`seen` to ``data``.
        Cost: O(epochs x (1 + replay) x new pairs) instead of O(epochs x all pairs).
        """
        user_factors, item_factors, item_biases = self._factors()
        if not isinstance(data, Dataset):
            raise ParetorecError(f"data must be a paretorec Dataset, got {type(data).__name__}")
        seen = self.seen
        if (data.n_users, data.n_items) != seen.shape:
            raise ParetorecError(
                f"data must share the model's id maps ({seen.shape[0]} users, {seen.shape[1]} "
                f"items), got {data.n_users} users, {data.n_items} items"
            )
        epochs = check_positive_int(epochs, "epochs")
        replay = check_nonnegative_float(replay, "replay")
        matrix = data.to_csr()
        matrix.data[:] = 1.0
        n_users, n_items = matrix.shape
        fresh = (matrix - matrix.multiply(seen)).tocsr()
        fresh.eliminate_zeros()
        counts = np.diff(matrix.indptr)
        all_users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
        all_items = matrix.indices.astype(np.int64)
        new_counts = np.diff(fresh.indptr)
        users = np.repeat(np.arange(n_users, dtype=np.int64), new_counts)
        positives = fresh.indices.astype(np.int64)
        rng = np.random.default_rng(self.seed + 1 if seed is None else seed)
        n_replay = min(round(replay * len(users)), len(all_users))
        if n_replay:
            pick = rng.choice(len(all_users), size=n_replay, replace=False)
            users = np.concatenate([users, all_users[pick]])
            positives = np.concatenate([positives, all_items[pick]])
        trainable = counts[users] < n_items
        users, positives = users[trainable], positives[trainable]
        self._seen = matrix
        if len(users) == 0:
            return self
        seen_keys = np.sort(all_users * n_items + all_items)
        factors = (
            torch.from_numpy(user_factors.copy()),
            torch.from_numpy(item_factors.copy()),
            torch.from_numpy(item_biases.copy()),
        )
        with thread_limit(self.num_threads):
            self._epochs(
                users, positives, seen_keys, n_items, factors, epochs, rng, torch.device("cpu")
            )
        self.user_factors, self.item_factors, self.item_biases = (
            f.numpy().astype(np.float32) for f in factors
        )
        return self

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

    supports_fold_in = True
    #: Gradient steps on a folded-in user vector (item factors fixed).
    fold_in_steps: int = 10
    #: Negative items per fold-in step (the same seeded draw for every user, so a
    #: history's scores do not depend on the batch it is folded in with).
    fold_in_negatives: int = 64

    def _score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        user_factors = self.fold_in(histories)
        _, item_factors, item_biases = self._factors()
        scores = user_factors @ item_factors.T
        scores += item_biases
        return scores.astype(np.float32, copy=False)

    def fold_in(self, histories: Sequence[np.ndarray], *, steps: int | None = None) -> np.ndarray:
        """User vectors (len(histories), factors) learned from histories, items fixed.

        Runs ``steps`` (default :attr:`fold_in_steps`) gradient steps of the training
        objective on a fresh user vector (zeros): at each step every history item is
        contrasted with all of :attr:`fold_in_negatives` items drawn once per step (the
        user's own items left out), and the pair gradients are averaged over the
        negatives and summed over the positives, so one step moves the vector about as
        far as one training epoch. Deterministic, batch-independent, O(steps x
        |history| x negatives x factors) per user. On MovieLens-100k (75/25 split) the
        folded-in vectors rank test items as well as the trained ones (nDCG@10 0.44 vs
        0.43): the fresh vector sees the final item factors rather than drifting ones.
        """
        _, item_factors, item_biases = self._factors()
        steps = self.fold_in_steps if steps is None else check_positive_int(steps, "steps")
        n_items, factors = item_factors.shape
        q = torch.from_numpy(item_factors)
        b = torch.from_numpy(item_biases if self.item_bias else np.zeros_like(item_biases))
        generator = torch.Generator().manual_seed(self.seed)
        k = min(self.fold_in_negatives, n_items)
        draws = [torch.randperm(n_items, generator=generator)[:k] for _ in range(steps)]
        out = np.zeros((len(histories), factors), dtype=np.float32)
        unique = [np.unique(np.asarray(h, dtype=np.int64)) for h in histories]
        # chunks bound the (pairs x negatives) work arrays; no padding, so a day's batch
        # with one long history costs its total length, not users x the longest
        chunk: list[int] = []
        pairs = 0
        for row, items in enumerate(unique):
            chunk.append(row)
            pairs += len(items)
            if pairs >= _FOLD_IN_CHUNK_PAIRS or row == len(unique) - 1:
                out[chunk] = self._fold_in_chunk([unique[r] for r in chunk], q, b, draws)
                chunk, pairs = [], 0
        return out

    def _fold_in_chunk(
        self,
        histories: list[np.ndarray],
        q: torch.Tensor,
        b: torch.Tensor,
        draws: list[torch.Tensor],
    ) -> np.ndarray:
        """Fold-in steps for a few users over their (user, history item) pairs, unpadded."""
        n_users, n_items = len(histories), q.shape[0]
        lengths = torch.tensor([len(h) for h in histories], dtype=torch.int64)
        owner = torch.repeat_interleave(torch.arange(n_users), lengths)  # (P,) pair -> user
        items = torch.from_numpy(np.concatenate(histories)) if len(owner) else owner
        member = torch.zeros((n_users, n_items), dtype=torch.bool)
        member[owner, items] = True
        n_positive = lengths.to(torch.float32)[:, None]
        q_pos, b_pos = q[items], b[items]  # (P, f), (P,)
        p = torch.zeros((n_users, q.shape[1]), dtype=torch.float32)
        lr, reg = self.learning_rate, self.regularization
        for negatives in draws:
            usable = (~member[:, negatives]).float()  # (U, K): a user's own items are no negatives
            usable = usable / usable.sum(dim=1, keepdim=True).clamp_min(1.0)
            q_neg, b_neg = q[negatives], b[negatives]  # (K, f), (K,)
            s_pos = (p[owner] * q_pos).sum(dim=1) + b_pos  # (P,)
            s_neg = p @ q_neg.T + b_neg  # (U, K)
            # d(-log sigmoid(x_ui - x_uj)) / d p = -sigmoid(x_uj - x_ui) (q_i - q_j)
            w = torch.sigmoid(s_neg[owner] - s_pos[:, None]) * usable[owner]  # (P, K)
            gradient = torch.zeros_like(p).index_add_(0, owner, w.sum(dim=1)[:, None] * q_pos)
            gradient -= torch.zeros((n_users, len(negatives))).index_add_(0, owner, w) @ q_neg
            p = p + lr * (gradient - reg * n_positive * p)
        return p.numpy()

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
