"""Bayesian Personalised Ranking matrix factorisation (BPR-MF) trained with PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from .._validation import (
    ParetorecError,
    check_choice,
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_int,
)
from ..data import Dataset
from ._base import CandidateModel, register_model

DEVICES = ("cpu", "cuda")
OPTIMIZERS = ("adam", "sgd")
#: Rejection rounds before giving up on drawing negatives (a user needs at least one
#: item outside their history, which :meth:`BPRModel._fit` guarantees).
_MAX_REJECTION_ROUNDS = 1000


@register_model("bpr")
class BPRModel(CandidateModel):
    """BPR-MF (Rendle et al., 2009): score(u, i) = <p_u, q_i> + b_i.

    Every epoch visits each training (user, positive item) pair once in a random order and
    pairs it with a negative item drawn uniformly from the items the user has not
    interacted with. Mini-batches minimise
    ``-log sigmoid(x_up - x_un) + regularization / 2 * (|p_u|^2 + |q_p|^2 + |q_n|^2 +
    b_p^2 + b_n^2)`` summed over the batch, so the regulariser only touches the rows a
    batch uses (as in per-sample SGD).

    Args:
        factors: latent dimension.
        epochs: passes over the training interactions.
        learning_rate: step size of the optimiser.
        regularization: L2 weight on the factors and biases a batch touches.
        batch_size: triples per optimisation step.
        optimizer: ``"adam"`` or ``"sgd"`` (plain SGD on the summed batch loss).
        item_bias: learn a per-item bias.
        seed: seeds the initialisation and the sampling; reruns give identical scores
            on the same device.
        device: ``"cpu"`` or ``"cuda"`` (an error if CUDA is not available).
        progress: show a progress bar over epochs with the mean loss.
    """

    def __init__(
        self,
        factors: int = 200,
        epochs: int = 30,
        learning_rate: float = 0.001,
        regularization: float = 0.001,
        batch_size: int = 1024,
        optimizer: str = "adam",
        item_bias: bool = True,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        super().__init__()
        self.factors = check_positive_int(factors, "factors")
        self.epochs = check_positive_int(epochs, "epochs")
        self.learning_rate = check_nonnegative_float(learning_rate, "learning_rate")
        if self.learning_rate == 0 or not np.isfinite(self.learning_rate):
            raise ParetorecError(
                f"learning_rate must be a positive finite number, got {learning_rate!r}"
            )
        self.regularization = check_nonnegative_float(regularization, "regularization")
        if not np.isfinite(self.regularization):
            raise ParetorecError(f"regularization must be finite, got {regularization!r}")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
        self.item_bias = _check_bool(item_bias, "item_bias")
        self.seed = check_nonnegative_int(seed, "seed")
        self.device = check_choice(device, "device", DEVICES)
        self.progress = _check_bool(progress, "progress")
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.item_biases: np.ndarray | None = None
        #: Mean training loss of each epoch of the last fit.
        self.loss_history: list[float] = []

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "item_bias": self.item_bias,
            "seed": self.seed,
            "device": self.device,
            "progress": self.progress,
        }

    # ------------------------------------------------------------------ training
    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        device = self._torch_device()
        n_users, n_items = matrix.shape
        counts = np.diff(matrix.indptr)
        users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
        positives = matrix.indices.astype(np.int64)
        # A user who has interacted with every item has no negative to contrast with.
        trainable = counts[users] < n_items
        users, positives = users[trainable], positives[trainable]
        if len(users) == 0:
            raise ParetorecError(
                f"train: every user with interactions has interacted with all {n_items} "
                f"items, so BPR has no negative item to sample (dataset {train.name!r})"
            )
        # Sorted (user, item) keys make "has u interacted with j?" a binary search.
        seen_keys = np.sort(users * n_items + positives)

        rng = np.random.default_rng(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        scale = 1.0 / self.factors
        user_init = (torch.rand(n_users, self.factors, generator=generator) - 0.5) * scale
        item_init = (torch.rand(n_items, self.factors, generator=generator) - 0.5) * scale
        user_emb = torch.nn.Parameter(user_init.to(device))
        item_emb = torch.nn.Parameter(item_init.to(device))
        bias = torch.nn.Parameter(torch.zeros(n_items, device=device))
        params = [user_emb, item_emb] + ([bias] if self.item_bias else [])
        optimizer: torch.optim.Optimizer
        if self.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=self.learning_rate)
        else:
            optimizer = torch.optim.SGD(params, lr=self.learning_rate)

        n_pairs = len(users)
        self.loss_history = []
        bar = tqdm(range(self.epochs), desc="bpr", unit="epoch", disable=not self.progress)
        for _ in bar:
            order = rng.permutation(n_pairs)
            negatives = _sample_negatives(users[order], seen_keys, n_items, rng)
            batch_users = torch.from_numpy(users[order]).to(device)
            batch_pos = torch.from_numpy(positives[order]).to(device)
            batch_neg = torch.from_numpy(negatives).to(device)
            total = 0.0
            for start in range(0, n_pairs, self.batch_size):
                u = batch_users[start : start + self.batch_size]
                i = batch_pos[start : start + self.batch_size]
                j = batch_neg[start : start + self.batch_size]
                p_u, q_i, q_j = user_emb[u], item_emb[i], item_emb[j]
                diff = (p_u * (q_i - q_j)).sum(dim=1)
                penalty = p_u.square().sum() + q_i.square().sum() + q_j.square().sum()
                if self.item_bias:
                    b_i, b_j = bias[i], bias[j]
                    diff = diff + b_i - b_j
                    penalty = penalty + b_i.square().sum() + b_j.square().sum()
                ranking_loss = -torch.nn.functional.logsigmoid(diff).sum()
                loss = ranking_loss + 0.5 * self.regularization * penalty
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(ranking_loss.detach())
            self.loss_history.append(total / n_pairs)
            bar.set_postfix(loss=f"{self.loss_history[-1]:.4f}")

        self.user_factors = user_emb.detach().cpu().numpy().astype(np.float32)
        self.item_factors = item_emb.detach().cpu().numpy().astype(np.float32)
        self.item_biases = bias.detach().cpu().numpy().astype(np.float32)

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


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParetorecError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def _sample_negatives(
    users: np.ndarray, seen_keys: np.ndarray, n_items: int, rng: np.random.Generator
) -> np.ndarray:
    """One item per entry of ``users``, uniform over the items that user has not seen.

    Draws uniformly over the catalogue and redraws only the collisions until none are left.
    """
    negatives = rng.integers(0, n_items, size=len(users), dtype=np.int64)
    pending = np.arange(len(users))
    for _ in range(_MAX_REJECTION_ROUNDS):
        keys = users[pending] * n_items + negatives[pending]
        at = np.minimum(np.searchsorted(seen_keys, keys), len(seen_keys) - 1)
        pending = pending[seen_keys[at] == keys]
        if len(pending) == 0:
            return negatives
        negatives[pending] = rng.integers(0, n_items, size=len(pending), dtype=np.int64)
    raise RuntimeError("negative sampling did not converge; a user may have no unseen item")
