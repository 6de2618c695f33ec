"""A causal transformer over each user's item history (SASRec-style next-item model).

Items enter the network through one of three representations (``item_mode``):

* ``"id"``: a learned embedding per item code (transductive: an item never seen in training
  keeps its random initial vector);
* ``"text"``: a learned projection of frozen language-model vectors of the item text
  (inductive: any item with text gets a meaningful vector, seen in training or not);
* ``"hybrid"``: the sum of both. The ID part of items absent from training is zero, and
  during training the ID part of a random share of items (``id_dropout``) is dropped so the
  network learns to work from text alone for those, the way it must for a cold item.

The same item table embeds the inputs and scores the outputs (weight tying). Scores are
cosine similarities divided by ``temperature`` (or dot products when it is ``None``).

In text and hybrid modes the language model itself can train with the sequence model
(``text_adapter``): LoRA adapters on its attention projections (``"lora"``, needs
``peft``) or its last ``unfreeze_layers`` transformer layers (``"last_layers"``), at their
own ``text_learning_rate``. Each step re-encodes, with gradient, only the texts of items
in the batch (inputs, targets, sampled negatives; at most ``text_grad_items``); every
other item comes from a table refreshed without gradient at the end of each epoch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm.auto import tqdm

from .._distributed import DistributedContext, average_gradients, current, global_sum
from .._validation import (
    ParetorecError,
    check_choice,
    check_fraction,
    check_positive_int,
    show,
)
from ..data import Dataset
from ..data._dataset import ITEM, TIMESTAMP, USER
from ..text._checks import check_texts
from ._base import CandidateModel, register_model, top_k_indices, warn_too_few_steps

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ITEM_MODES = ("id", "text", "hybrid")
LOSSES = ("full", "sampled")
TEXT_ADAPTERS = ("frozen", "lora", "last_layers")
LORA_EXTRA = "paretorec[lora]"
# Attention projections of common transformer families, tried in order for LoRA.
_ATTENTION_PROJECTIONS = (
    ("query", "key", "value"),  # BERT, MiniLM, RoBERTa
    ("q_proj", "k_proj", "v_proj"),  # BART, Llama, most decoders
    ("q_lin", "k_lin", "v_lin"),  # DistilBERT
    ("q", "k", "v"),  # T5, MPNet
    ("query_key_value",),
    ("Wqkv",),
    ("qkv",),
    ("c_attn",),  # GPT-2
)
# Attribute names of a transformer's stack of layers.
_LAYER_STACKS = ("layer", "layers", "h", "block", "blocks")
# Texts per no-grad forward pass when the item table is refreshed.
_REFRESH_BATCH = 64
#: Fewer optimisation (Adam) steps than this cannot converge (a ConvergenceWarning).
MIN_STEPS = 50


def _carve_last_events(train: Dataset) -> tuple[Dataset, Dataset | None]:
    """Each user's last training event (users with >= 3) as the early-stopping part."""
    from ..data import leave_one_out

    by = "timestamp" if train.has_timestamps else "order"
    carved = leave_one_out(train, by=by, validation=False, min_events=3, warn_ties=False)
    if carved.test.n_interactions == 0:
        return train, None
    return carved.train, carved.test


def user_sequences(dataset: Dataset) -> list[np.ndarray]:
    """Each user's item codes in time order (row order breaks ties); empty for no history."""
    frame = dataset.interactions
    users = frame[USER].to_numpy()
    items = frame[ITEM].to_numpy()
    keys = (
        frame[TIMESTAMP].to_numpy()
        if dataset.has_timestamps
        else np.zeros(len(frame), dtype=np.float64)
    )
    order = np.lexsort((np.arange(len(users)), keys, users))
    counts = np.bincount(users, minlength=dataset.n_users)
    return np.split(items[order].astype(np.int64), np.cumsum(counts)[:-1])


def _left_pad(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """(n, length) array of item codes + 1, right-aligned, 0 = padding; keeps the last items."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = seq[-length:]
        if len(tail):
            out[row, length - len(tail) :] = tail + 1
    return out


class _TextTower(nn.Module):
    """A sentence-transformers model trained with the sequence model (LoRA or last layers).

    Item texts are tokenised once (:meth:`set_texts`); ``forward(codes)`` embeds those
    items' texts with gradient. Vectors are L2-normalised like the frozen encoder's, and
    blank texts stay zero vectors that never reach the model. The language model always
    runs in eval mode (no dropout), so a re-encoded item matches its row of the refreshed
    table while the weights have not moved.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        adapter: str,
        *,
        model_name: str,
        lora_rank: int,
        lora_alpha: float,
        unfreeze_layers: int,
    ) -> None:
        super().__init__()
        self.model = model
        self.adapter = adapter
        self.model_name = model_name
        model.requires_grad_(False)
        if adapter == "lora":
            self._add_lora(lora_rank, lora_alpha)
        elif adapter == "last_layers":
            self._unfreeze_last_layers(unfreeze_layers)
        self.model.eval()
        tokenizer = getattr(model, "tokenizer", None)
        self._pad_id = int(getattr(tokenizer, "pad_token_id", None) or 0)
        self._pad_left = getattr(tokenizer, "padding_side", "right") == "left"
        self._token_types = False
        self._tokens: list[torch.Tensor | None] = []

    def train(self, mode: bool = True) -> _TextTower:
        super().train(mode)
        self.model.eval()  # see the class docstring: no dropout in the language model
        return self

    # ------------------------------------------------------------------ adapters
    def _transformer(self) -> nn.Module:
        first = self.model[0]
        network = getattr(first, "auto_model", None)
        if network is None:
            network = getattr(first, "model", None)
        if not isinstance(network, nn.Module):
            raise ParetorecError(
                f"text_encoder {self.model_name!r}: its first module holds no transformer "
                "to adapt; use text_adapter='frozen'"
            )
        return network

    def _add_lora(self, rank: int, alpha: float) -> None:
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as exc:
            raise ImportError(
                f"text_adapter='lora' needs peft: pip install '{LORA_EXTRA}' ({exc})"
            ) from exc
        network = self._transformer()
        leaves = {
            name.rsplit(".", 1)[-1]
            for name, module in network.named_modules()
            if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"
        }
        targets = next(
            (
                [n for n in group if n in leaves]
                for group in _ATTENTION_PROJECTIONS
                if leaves & set(group)
            ),
            None,
        )
        if not targets:
            raise ParetorecError(
                f"text_adapter='lora': no known attention projection (query/key/value, "
                f"q_proj/k_proj/v_proj, ...) in text_encoder {self.model_name!r}; use "
                "text_adapter='last_layers'"
            )
        config = LoraConfig(
            r=rank,
            lora_alpha=alpha,  # type: ignore[arg-type]  # annotated int; the scale is alpha / r
            lora_dropout=0.0,
            bias="none",
            target_modules=targets,
        )
        inject_adapter_in_model(config, network)
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_("lora_" in name)

    def _unfreeze_last_layers(self, count: int) -> None:
        stacks = [
            module
            for name, module in self._transformer().named_modules()
            if isinstance(module, nn.ModuleList)
            and len(module) > 0
            and name.rsplit(".", 1)[-1] in _LAYER_STACKS
        ]
        if not stacks:
            raise ParetorecError(
                f"text_adapter='last_layers': no stack of transformer layers found in "
                f"text_encoder {self.model_name!r}; use text_adapter='lora'"
            )
        layers = max(stacks, key=lambda m: sum(p.numel() for p in m.parameters()))
        if count > len(layers):
            raise ParetorecError(
                f"unfreeze_layers must be at most {len(layers)} (the transformer layers of "
                f"{self.model_name}), got {count}"
            )
        for layer in list(layers)[-count:]:
            layer.requires_grad_(True)
        for module in list(self.model)[1:]:  # pooling, dense heads after the transformer
            module.requires_grad_(True)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The adapted weights (LoRA matrices or the unfrozen layers), detached copies."""
        return {
            name: parameter.detach().clone()
            for name, parameter in self.model.named_parameters()
            if parameter.requires_grad
        }

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        own = dict(self.model.named_parameters())
        expected = {name for name, parameter in own.items() if parameter.requires_grad}
        if set(state) != expected:
            raise ParetorecError(
                f"saved language-model weights do not match text_adapter={self.adapter!r} on "
                f"{self.model_name}: {len(set(state) ^ expected)} tensor names differ"
            )
        with torch.no_grad():
            for name, value in state.items():
                own[name].copy_(value)

    # ------------------------------------------------------------------ encoding
    def tokenise(self, texts: Sequence[str]) -> list[torch.Tensor | None]:
        """Token ids of each text without padding (None for a blank text)."""
        out: list[torch.Tensor | None] = [None] * len(texts)
        rows = [i for i, text in enumerate(texts) if text.strip()]
        # sentence-transformers 5 renamed tokenize to preprocess
        tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize
        for start in range(0, len(rows), 256):
            chunk = rows[start : start + 256]
            features = tokenize([texts[i] for i in chunk])
            self._token_types = self._token_types or "token_type_ids" in features
            ids, mask = features["input_ids"], features["attention_mask"].bool()
            for row, i in enumerate(chunk):
                out[i] = ids[row][mask[row]].clone()
        return out

    def set_texts(self, texts: Sequence[str]) -> None:
        self._tokens = self.tokenise(texts)

    def embed(self, tokens: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """(len(tokens), dim) unit vectors; zero rows for blank texts."""
        device = next(self.model.parameters()).device
        rows = [i for i, ids in enumerate(tokens) if ids is not None]
        present = [ids for ids in tokens if ids is not None]
        if not present:
            return torch.zeros(len(tokens), self.dimension, device=device)
        width = max(len(ids) for ids in present)
        input_ids = torch.full((len(present), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(present), width), dtype=torch.long)
        for row, ids in enumerate(present):
            span = slice(width - len(ids), width) if self._pad_left else slice(0, len(ids))
            input_ids[row, span] = ids
            mask[row, span] = 1
        features = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
        if self._token_types:
            features["token_type_ids"] = torch.zeros_like(features["input_ids"])
        vectors = self.model(features)["sentence_embedding"]
        vectors = nn.functional.normalize(vectors.float(), dim=-1)
        if len(rows) == len(tokens):
            return vectors
        out = vectors.new_zeros(len(tokens), vectors.shape[1])
        return out.index_copy(0, torch.tensor(rows, device=device), vectors)

    @property
    def dimension(self) -> int:
        size = getattr(self.model, "get_embedding_dimension", None)
        value = size() if size is not None else self.model.get_sentence_embedding_dimension()
        if value is None:
            raise ParetorecError(
                f"text_encoder {self.model_name!r} does not report its output size"
            )
        return int(value)

    def forward(self, codes: np.ndarray) -> torch.Tensor:
        """Vectors of the items ``codes`` (with gradient to the adapted weights)."""
        return self.embed([self._tokens[int(code)] for code in codes])

    def encode_all(self) -> np.ndarray:
        """The whole item table, no gradient, in batches of similar text length."""
        return self.encode_tokens(self._tokens)

    def encode_tokens(self, tokens: Sequence[torch.Tensor | None]) -> np.ndarray:
        lengths = np.array([0 if ids is None else len(ids) for ids in tokens])
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(tokens), self.dimension), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(order), _REFRESH_BATCH):
                rows = order[start : start + _REFRESH_BATCH]
                out[rows] = self.embed([tokens[i] for i in rows]).cpu().numpy()
        return out


class _SequenceNetwork(nn.Module):
    def __init__(
        self,
        n_items: int,
        *,
        hidden: int,
        n_layers: int,
        n_heads: int,
        max_length: int,
        dropout: float,
        item_mode: str,
        text_vectors: torch.Tensor | None,
        warm: torch.Tensor,
    ) -> None:
        super().__init__()
        self.item_mode = item_mode
        self.n_items = n_items
        if item_mode in ("id", "hybrid"):
            self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0)
            nn.init.normal_(self.item_embedding.weight, std=0.02)
            if item_mode == "hybrid":
                # text carries the cold items; IDs add precision on top, starting from zero
                nn.init.normal_(self.item_embedding.weight, std=0.002)
            with torch.no_grad():
                self.item_embedding.weight[0].zero_()
        if item_mode in ("text", "hybrid"):
            assert text_vectors is not None
            self.register_buffer("text_vectors", text_vectors, persistent=False)
            self.text_norm = nn.LayerNorm(text_vectors.shape[1])
            self.text_projection = nn.Linear(text_vectors.shape[1], hidden)
        # warm[i + 1] is 1 for items seen in training (their ID part is used), 0 otherwise
        self.register_buffer("warm", warm, persistent=False)
        self.position = nn.Embedding(max_length, hidden)
        nn.init.normal_(self.position.weight, std=0.02)
        self.blocks = nn.ModuleList(_Block(hidden, n_heads, dropout) for _ in range(n_layers))
        self.input_norm = nn.LayerNorm(hidden)
        self.output_norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def item_table(
        self, id_keep: torch.Tensor | None = None, text_vectors: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(n_items + 1, hidden) item vectors; row 0 is padding.

        ``text_vectors`` replaces the stored language-model vectors (a trainable adapter's
        batch: some rows re-encoded with gradient).
        """
        table: torch.Tensor | None = None
        if self.item_mode in ("text", "hybrid"):
            vectors: torch.Tensor = (
                self.text_vectors if text_vectors is None else text_vectors  # type: ignore[assignment]
            )
            text = self.text_projection(self.text_norm(vectors))
            table = torch.cat([torch.zeros_like(text[:1]), text], dim=0)
        if self.item_mode in ("id", "hybrid"):
            ids = self.item_embedding.weight
            if self.item_mode == "hybrid":
                warm: torch.Tensor = self.warm  # type: ignore[assignment]
                keep = warm if id_keep is None else warm * id_keep
                ids = ids * keep.unsqueeze(1)
            table = ids if table is None else table + ids
        assert table is not None
        return table

    def encode(self, sequences: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden states (batch, length, hidden) for left-padded ``sequences`` (codes + 1)."""
        length = sequences.shape[1]
        # position 0 = the most recent item, whatever the history length
        positions = torch.arange(length - 1, -1, -1, device=sequences.device)
        states = table[sequences] + self.position(positions).unsqueeze(0)
        states = self.dropout(self.input_norm(states))
        pad = sequences == 0
        causal = torch.triu(
            torch.ones(length, length, dtype=torch.bool, device=sequences.device), diagonal=1
        )
        # Finite large negatives: a padding query that sees only padding keys gets a
        # uniform (ignored) attention instead of NaN.
        mask = ((causal.unsqueeze(0) | pad.unsqueeze(1)).to(states.dtype) * -1e9).unsqueeze(1)
        for block in self.blocks:
            states = block(states, mask)
        return self.output_norm(states)


class _Block(nn.Module):
    """Pre-norm transformer block: masked self-attention then a GELU feed-forward."""

    def __init__(self, hidden: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.attention_norm = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.feed_forward_norm = nn.LayerNorm(hidden)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden, 4 * hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(4 * hidden, hidden),
        )
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = dropout

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = states.shape
        qkv = self.qkv(self.attention_norm(states))
        qkv = qkv.view(batch, length, 3, self.n_heads, hidden // self.n_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = nn.functional.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        states = states + self.dropout(self.out(attended))
        return states + self.dropout(self.feed_forward(self.feed_forward_norm(states)))


@register_model("sequential")
class SequentialTransformer(CandidateModel):
    """Causal transformer next-item model with ID, text or hybrid item vectors.

    Text vectors come from :func:`paretorec.text.item_texts` and
    :class:`paretorec.text.TextEncoder` (``text_encoder`` names the model, ``"default"`` is
    the offline all-MiniLM-L6-v2), or are passed to :meth:`fit` as ``item_vectors``.
    ``text_fields=True`` encodes the dataset's default fields (title, category, brand, ...;
    :func:`paretorec.text.item_fields`) one by one and concatenates their vectors; a dict
    field name -> format string picks the fields. On Amazon-Scientific (3 seeds, one run)
    that lifts hybrid test nDCG@10 from 0.0636 to 0.0650, and from 0.036 to 0.067 on cold
    targets (``BENCHMARKS.md``).
    Training: each user's training sequence (cut into windows of ``max_length + 1``) predicts
    every next item, with a full-catalogue softmax (``loss="full"``) or a sampled softmax
    over ``n_negatives`` uniform negatives (``loss="sampled"``). With ``valid`` given to
    :meth:`fit`, training stops when validation nDCG@10 has not improved for ``patience``
    epochs and the best epoch's weights are restored. Without ``valid``, ``auto_validation``
    (default) carves each user's last training event (users with at least 3) as the
    early-stopping part, trains on the rest, and then scores from the whole training
    sequences; ``epochs`` is only the ceiling (``epochs_run`` / ``best_epoch`` report what
    happened). A fit with fewer than ``MIN_STEPS`` optimisation steps warns
    (:class:`~paretorec.models.ConvergenceWarning`).

    Scoring uses each user's history: the training sequence by default, or the one set by
    :meth:`set_history` (e.g. train + validation before scoring test targets).

    Adapting the language model (text and hybrid modes): ``text_adapter="lora"`` trains
    LoRA adapters (``lora_rank``, ``lora_alpha``) on the attention projections of the
    ``text_encoder`` model, ``"last_layers"`` trains its last ``unfreeze_layers``
    transformer layers; both at ``text_learning_rate``, jointly with the sequence model
    from the next-item loss, and both need ``fit(..., item_texts=...)`` (one text per item
    code, e.g. :func:`paretorec.text.item_texts`). A step re-encodes with gradient the
    texts of the batch's items (inputs, targets and sampled negatives; a random
    ``text_grad_items`` of them when there are more); the other items come from a table
    refreshed without gradient at the end of every epoch, which is also the table scored
    and saved. Items absent from training get their vectors from the adapted model too.
    Saving stores only the adapted weights; scoring a loaded model needs no language model.
    """

    requires_history = True

    def __init__(
        self,
        item_mode: str = "hybrid",
        *,
        hidden: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        max_length: int = 50,
        dropout: float = 0.3,
        id_dropout: float = 0.1,
        temperature: float | None = 0.07,
        loss: str = "full",
        n_negatives: int = 256,
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 10,
        text_encoder: str = "default",
        text_template: str | None = None,
        text_fields: bool | dict[str, str] = False,
        text_adapter: str = "frozen",
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        unfreeze_layers: int = 1,
        text_learning_rate: float = 1e-4,
        text_grad_items: int | None = 256,
        seed: int = 0,
        device: str = "cpu",
        show_progress: bool = False,
        auto_validation: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(auto_validation, bool):
            raise ParetorecError(f"auto_validation must be a bool, got {show(auto_validation)}")
        self.auto_validation = auto_validation
        self.item_mode = check_choice(item_mode, "item_mode", ITEM_MODES)
        self.hidden = check_positive_int(hidden, "hidden")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        if self.hidden % self.n_heads:
            raise ParetorecError(
                f"hidden ({self.hidden}) must be divisible by n_heads ({self.n_heads})"
            )
        self.max_length = check_positive_int(max_length, "max_length")
        self.dropout = check_fraction(dropout, "dropout", low_open=False)
        self.id_dropout = check_fraction(id_dropout, "id_dropout", low_open=False)
        if temperature is not None and not (
            isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0
        ):
            raise ParetorecError(
                f"temperature must be a positive number or None, got {show(temperature)}"
            )
        self.temperature = None if temperature is None else float(temperature)
        self.loss = check_choice(loss, "loss", LOSSES)
        self.n_negatives = check_positive_int(n_negatives, "n_negatives")
        self.epochs = check_positive_int(epochs, "epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
            raise ParetorecError(
                f"learning_rate must be a positive number, got {show(learning_rate)}"
            )
        self.learning_rate = float(learning_rate)
        if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
            raise ParetorecError(
                f"weight_decay must be a non-negative number, got {show(weight_decay)}"
            )
        self.weight_decay = float(weight_decay)
        self.patience = check_positive_int(patience, "patience")
        self.text_encoder = str(text_encoder)
        self.text_template = text_template
        self.text_fields = _check_text_fields(text_fields)
        if self.text_fields is not False and text_template is not None:
            raise ParetorecError(
                "text_template (one text per item) and text_fields (one text per field) "
                f"exclude each other; got text_template={show(text_template)} and "
                f"text_fields={show(text_fields)}"
            )
        self.text_adapter = check_choice(text_adapter, "text_adapter", TEXT_ADAPTERS)
        if self.text_adapter != "frozen" and self.text_fields is not False:
            raise ParetorecError(
                f"text_fields={show(text_fields)} needs text_adapter='frozen': an adapted "
                "language model encodes one text per item (fit(train, item_texts=...))"
            )
        if self.text_adapter != "frozen" and self.item_mode == "id":
            raise ParetorecError(
                f"text_adapter={self.text_adapter!r} needs item_mode 'text' or 'hybrid' (the "
                f"language model only feeds those); got item_mode={self.item_mode!r}"
            )
        self.lora_rank = check_positive_int(lora_rank, "lora_rank")
        if not (
            isinstance(lora_alpha, (int, float))
            and not isinstance(lora_alpha, bool)
            and math.isfinite(lora_alpha)
            and lora_alpha > 0
        ):
            raise ParetorecError(f"lora_alpha must be a positive number, got {show(lora_alpha)}")
        self.lora_alpha = float(lora_alpha)
        self.unfreeze_layers = check_positive_int(unfreeze_layers, "unfreeze_layers")
        if not (
            isinstance(text_learning_rate, (int, float))
            and not isinstance(text_learning_rate, bool)
            and text_learning_rate > 0
        ):
            raise ParetorecError(
                f"text_learning_rate must be a positive number, got {show(text_learning_rate)}"
            )
        self.text_learning_rate = float(text_learning_rate)
        self.text_grad_items = (
            None
            if text_grad_items is None
            else check_positive_int(text_grad_items, "text_grad_items")
        )
        self.seed = int(seed)
        self.device = str(device)
        self.show_progress = bool(show_progress)
        self.history_: list[dict[str, float]] = []
        self._network: _SequenceNetwork | None = None
        self._sequences: list[np.ndarray] = []
        self._text_vectors: np.ndarray | None = None
        self._warm = np.zeros(0, dtype=np.float32)
        self._pending_vectors: np.ndarray | None = None
        self._pending_texts: list[str] | None = None
        self._pending_valid: Dataset | None = None
        self._text_tower: _TextTower | None = None
        self._text_tower_state: dict[str, torch.Tensor] = {}  # adapted weights, once loaded

    def get_params(self) -> dict[str, Any]:
        return {
            "item_mode": self.item_mode,
            "hidden": self.hidden,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "max_length": self.max_length,
            "dropout": self.dropout,
            "id_dropout": self.id_dropout,
            "temperature": self.temperature,
            "loss": self.loss,
            "n_negatives": self.n_negatives,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "patience": self.patience,
            "text_encoder": self.text_encoder,
            "text_template": self.text_template,
            "text_fields": self.text_fields,
            "text_adapter": self.text_adapter,
            "lora_rank": self.lora_rank,
            "lora_alpha": self.lora_alpha,
            "unfreeze_layers": self.unfreeze_layers,
            "text_learning_rate": self.text_learning_rate,
            "text_grad_items": self.text_grad_items,
            "seed": self.seed,
            "device": self.device,
            "show_progress": self.show_progress,
            "auto_validation": self.auto_validation,
        }

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Dataset,
        *,
        valid: Dataset | None = None,
        item_vectors: np.ndarray | None = None,
        item_texts: Sequence[str] | None = None,
    ) -> SequentialTransformer:
        """Train on ``train``; ``valid`` enables early stopping on nDCG@10 of its items.

        ``item_vectors`` (n_items x d) replaces the text encoder in text and hybrid modes.
        ``item_texts`` (one text per item code; blank = no text, a zero vector) replaces
        the ``text_template`` texts; a trainable ``text_adapter`` needs it.
        """
        if valid is not None and not isinstance(valid, Dataset):
            raise ParetorecError(f"valid must be a paretorec Dataset, got {type(valid).__name__}")
        texts = None if item_texts is None else check_texts(item_texts, "item_texts")
        if texts is not None and self.text_fields is not False:
            raise ParetorecError(
                f"item_texts (one text per item) cannot be used with text_fields="
                f"{show(self.text_fields)}; pass item_vectors, e.g. "
                "paretorec.text.encode_items(train, fields=True), or drop text_fields"
            )
        if self.text_adapter != "frozen":
            if texts is None:
                raise ParetorecError(
                    f"item_texts is required with text_adapter={self.text_adapter!r}: pass "
                    "fit(train, item_texts=...) with one text per item code, e.g. "
                    "paretorec.text.item_texts(train)"
                )
            if item_vectors is not None:
                raise ParetorecError(
                    f"item_vectors cannot be used with text_adapter={self.text_adapter!r}: the "
                    "adapted language model makes the vectors from item_texts"
                )
        full = train
        if valid is None and self.auto_validation and isinstance(train, Dataset):
            train, valid = _carve_last_events(train)
        self._pending_valid = valid
        self._pending_vectors = item_vectors
        self._pending_texts = texts
        try:
            super().fit(train)
        finally:
            self._pending_valid = None
            self._pending_vectors = None
            self._pending_texts = None
        if train is not full:  # the carved last events join the histories scored from
            self.set_history(full)
        return self

    @property
    def epochs_run(self) -> int:
        """Epochs the last fit ran (early stopping may end before ``epochs``)."""
        return len(self.history_)

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights were kept (best validation nDCG@10), or None."""
        scores = [h["valid_ndcg@10"] for h in self.history_ if "valid_ndcg@10" in h]
        return int(np.argmax(scores)) + 1 if scores else None

    def _item_vectors(self, train: Dataset) -> np.ndarray | None:
        if self.item_mode == "id":
            return None
        vectors = self._pending_vectors
        if vectors is None:
            from ..text import TextEncoder, encode_items

            encoder = TextEncoder(self.text_encoder, show_progress=self.show_progress)
            if self._pending_texts is None:
                vectors = encode_items(train, encoder, self.text_template, fields=self.text_fields)
            else:
                vectors = encoder.encode(self._texts_for(train))
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != train.n_items:
            raise ParetorecError(
                f"item_vectors must have shape (n_items={train.n_items}, dim), got {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise ParetorecError("item_vectors contains NaN or infinite values")
        return vectors

    def _texts_for(self, train: Dataset) -> list[str]:
        texts = self._pending_texts
        if texts is None or len(texts) != train.n_items:
            raise ParetorecError(
                f"item_texts must hold one text per item code (n_items={train.n_items}), got "
                f"{None if texts is None else len(texts)}"
            )
        return texts

    def _load_text_tower(self) -> _TextTower:
        """The language model of ``text_encoder`` with this model's adapter (not trained)."""
        from ..text import TextEncoder

        encoder = TextEncoder(
            self.text_encoder, device=self.device, cache_dir=None, show_progress=False
        )
        tower = _TextTower(
            encoder.model,  # this encoder's own copy: the adapter modifies it in place
            self.text_adapter,
            model_name=encoder.model_name,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            unfreeze_layers=self.unfreeze_layers,
        )
        # float32 whatever the checkpoint's dtype: half-precision weights (which newer
        # transformers load as stored) overflow under plain AdamW updates
        return tower.to(self.device).float()

    def _adapted_tower(self) -> _TextTower:
        """The adapted language model: the trained one, or rebuilt from saved weights."""
        if self._text_tower is None:
            if not self._text_tower_state:
                raise ParetorecError("SequentialTransformer is not fitted; call fit(train) first")
            tower = self._load_text_tower()
            tower.load_trainable_state(self._text_tower_state)
            self._text_tower = tower
        return self._text_tower

    def _build(self, n_items: int) -> _SequenceNetwork:
        text = None if self._text_vectors is None else torch.from_numpy(self._text_vectors)
        warm = torch.from_numpy(np.r_[np.float32(0.0), self._warm].astype(np.float32))
        return _SequenceNetwork(
            n_items,
            hidden=self.hidden,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            max_length=self.max_length,
            dropout=self.dropout,
            item_mode=self.item_mode,
            text_vectors=text,
            warm=warm,
        ).to(self.device)

    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        tower: _TextTower | None = None
        self._text_tower, self._text_tower_state = None, {}
        if self.text_adapter == "frozen":
            self._text_vectors = self._item_vectors(train)
        else:
            tower = self._load_text_tower()
            tower.set_texts(self._texts_for(train))
            self._text_vectors = tower.encode_all()
            self._text_tower = tower
        self._warm = (np.asarray(matrix.sum(axis=0)).ravel() > 0).astype(np.float32)
        self._sequences = user_sequences(train)
        network = self._build(train.n_items)
        self._network = network
        inputs, targets = self._training_windows(self._sequences)
        if len(inputs) == 0:
            raise ParetorecError("train has no user with at least two interactions to learn from")
        lengths = (inputs > 0).sum(axis=1)
        warn_too_few_steps(
            "sequential",
            self.epochs * math.ceil(len(inputs) / self.batch_size),
            MIN_STEPS,
            f"{self.epochs} epoch(s) over {len(inputs)} training window(s) in batches of "
            f"{self.batch_size}: raise epochs or lower batch_size",
        )
        valid_users, valid_targets = self._valid_targets(self._pending_valid)
        if tower is None:
            optimizer = torch.optim.AdamW(
                network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
        else:
            groups: list[dict[str, Any]] = [
                {"params": list(network.parameters())},
                {
                    "params": [p for p in tower.parameters() if p.requires_grad],
                    "lr": self.text_learning_rate,
                },
            ]
            optimizer = torch.optim.AdamW(
                groups, lr=self.learning_rate, weight_decay=self.weight_decay
            )
        best_score, best_state, stale = -math.inf, None, 0
        best_text: tuple[dict[str, torch.Tensor], np.ndarray] | None = None
        self.history_ = []
        ddp = _ddp_context(self)
        bar = tqdm(
            range(self.epochs),
            desc="sequential",
            disable=not self.show_progress or (ddp is not None and not ddp.is_main),
        )
        for epoch in bar:
            network.train()
            total, batches = 0.0, 0
            for rows in self._batches(lengths, rng):
                width = int(lengths[rows].max())  # crop the shared left padding
                if ddp is None:
                    loss = self._batch_loss(
                        network, inputs[rows, -width:], targets[rows, -width:], rng, tower
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                else:  # this rank's windows of the global batch; the global batch's mean
                    loss = self._ddp_step(network, inputs, targets, rows, width, rng, ddp)
                    optimizer.zero_grad(set_to_none=True)
                    if loss.requires_grad:
                        loss.backward()
                    average_gradients(network.parameters(), ddp, mean=False)
                    loss = global_sum(loss)
                optimizer.step()
                total += float(loss.detach())
                batches += 1
            if tower is not None:
                self._refresh_text_table(network, tower)
            record = {"epoch": float(epoch + 1), "loss": total / max(batches, 1)}
            if valid_users is not None:
                record["valid_ndcg@10"] = self._ndcg_at_10(valid_users, valid_targets)
                if record["valid_ndcg@10"] > best_score:
                    best_score, stale = record["valid_ndcg@10"], 0
                    best_state = copy.deepcopy(network.state_dict())
                    if tower is not None and self._text_vectors is not None:
                        best_text = (tower.trainable_state(), self._text_vectors.copy())
                else:
                    stale += 1
            self.history_.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
            if valid_users is not None and stale >= self.patience:
                break
        if best_state is not None:
            network.load_state_dict(best_state)
        if tower is not None and best_text is not None:
            tower.load_trainable_state(best_text[0])
            self._set_text_table(network, best_text[1])
        network.eval()

    def _ddp_step(
        self,
        network: _SequenceNetwork,
        inputs: np.ndarray,
        targets: np.ndarray,
        rows: np.ndarray,
        width: int,
        rng: np.random.Generator,
        ddp: DistributedContext,
    ) -> torch.Tensor:
        """This rank's share of the global batch's loss: its windows (``index % W == rank``)
        summed, divided by the global batch's count of target positions, so the ranks'
        gradients sum to the single-process gradient. Every rank draws the same random
        numbers (ID dropout) whatever its share, keeping their generators in step."""
        count = int((targets[rows, -width:] > 0).sum())
        mine = rows[rows % ddp.world_size == ddp.rank]
        if len(mine) == 0:
            if self.item_mode == "hybrid" and self.id_dropout > 0:
                rng.random(network.n_items + 1)
            return torch.zeros((), device=self.device)
        mean = self._batch_loss(network, inputs[mine, -width:], targets[mine, -width:], rng)
        local = int((targets[mine, -width:] > 0).sum())
        return mean * (local / max(count, 1))

    def _refresh_text_table(self, network: _SequenceNetwork, tower: _TextTower) -> None:
        """Re-encode every item text with the adapted weights (no gradient)."""
        self._set_text_table(network, tower.encode_all())

    def _set_text_table(self, network: _SequenceNetwork, vectors: np.ndarray) -> None:
        self._text_vectors = vectors
        network.text_vectors = torch.from_numpy(vectors).to(self.device)

    def _batches(self, lengths: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches of windows of similar length (less padding to compute on)."""
        order = rng.permutation(len(lengths))
        pool = self.batch_size * 32
        batches: list[np.ndarray] = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(
                chunk[s : s + self.batch_size] for s in range(0, len(chunk), self.batch_size)
            )
        return [batches[i] for i in rng.permutation(len(batches))]

    def _training_windows(self, sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Windows of up to ``max_length + 1`` items, cut from the end of each sequence."""
        windows: list[np.ndarray] = []
        span = self.max_length + 1
        for seq in sequences:
            end = len(seq)
            while end >= 2:
                windows.append(seq[max(0, end - span) : end])
                end -= self.max_length
        inputs = _left_pad([w[:-1] for w in windows], self.max_length)
        targets = _left_pad([w[1:] for w in windows], self.max_length)
        return inputs, targets

    def _batch_loss(
        self,
        network: _SequenceNetwork,
        inputs: np.ndarray,
        targets: np.ndarray,
        rng: np.random.Generator,
        tower: _TextTower | None = None,
    ) -> torch.Tensor:
        device = self.device
        id_keep = None
        if self.item_mode == "hybrid" and self.id_dropout > 0:
            keep = rng.random(network.n_items + 1) >= self.id_dropout
            id_keep = torch.from_numpy(keep.astype(np.float32)).to(device)
        sampled = None
        if self.loss == "sampled":
            sampled = rng.integers(1, network.n_items + 1, size=self.n_negatives)
        text = None
        if tower is not None:
            text = self._batch_text_vectors(network, tower, inputs, targets, sampled, rng)
        table = network.item_table(id_keep, text)
        sequence = torch.from_numpy(inputs).to(device)
        target = torch.from_numpy(targets).to(device)
        states = network.encode(sequence, table)
        valid = target > 0
        states = states[valid]
        labels = target[valid]
        if sampled is None:
            logits = self._logits(states, table[1:])
            return nn.functional.cross_entropy(logits, labels - 1)
        negatives = torch.from_numpy(sampled).to(device)
        candidates = torch.cat([labels, negatives])
        logits = self._logits(states, table[candidates])
        # the positive of row r sits in column r; shared in-batch and uniform negatives
        return nn.functional.cross_entropy(logits, torch.arange(len(labels), device=device))

    def _batch_text_vectors(
        self,
        network: _SequenceNetwork,
        tower: _TextTower,
        inputs: np.ndarray,
        targets: np.ndarray,
        sampled: np.ndarray | None,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """The text table with the batch's items re-encoded with gradient, the rest cached."""
        parts = [inputs[inputs > 0], targets[targets > 0]]
        if sampled is not None:
            parts.append(sampled)
        codes = np.unique(np.concatenate(parts)) - 1
        if self.text_grad_items is not None and len(codes) > self.text_grad_items:
            codes = np.sort(rng.choice(codes, self.text_grad_items, replace=False))
        cached: torch.Tensor = network.text_vectors  # type: ignore[assignment]
        fresh = tower(codes)
        index = torch.from_numpy(codes).to(cached.device)
        return cached.index_put((index,), fresh.to(cached.dtype))

    def _logits(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self.temperature is None:
            return states @ items.T
        states = nn.functional.normalize(states, dim=-1)
        items = nn.functional.normalize(items, dim=-1)
        return states @ items.T / self.temperature

    def _valid_targets(self, valid: Dataset | None) -> tuple[np.ndarray | None, np.ndarray]:
        if valid is None:
            return None, np.zeros(0, dtype=np.int64)
        frame = valid.interactions
        users = frame[USER].to_numpy().astype(np.int64)
        items = frame[ITEM].to_numpy().astype(np.int64)
        has_history = np.array([len(self._sequences[u]) > 0 for u in users], dtype=bool)
        return users[has_history], items[has_history]

    def _ndcg_at_10(self, users: np.ndarray, targets: np.ndarray) -> float:
        """Mean nDCG@10 of one held-out item per row (full ranking, seen items kept)."""
        gains = 0.0
        for start in range(0, len(users), 1024):
            batch = users[start : start + 1024]
            top = top_k_indices(self._score(batch), 10)
            hit = top == targets[start : start + 1024, None]
            ranks = np.argmax(hit, axis=1)
            gains += float((hit.any(axis=1) / np.log2(ranks + 2)).sum())
        return gains / max(len(users), 1)

    # ------------------------------------------------------------------ scoring
    def set_history(self, dataset: Dataset) -> SequentialTransformer:
        """Score from the sequences of ``dataset`` (same id maps) instead of the training ones.

        Also replaces the seen-item matrix, so ``exclude_seen`` masks this history.
        """
        seen = self.seen
        if dataset.n_users != seen.shape[0] or dataset.n_items != seen.shape[1]:
            raise ParetorecError(
                f"dataset must share the model's id maps ({seen.shape[0]} users, "
                f"{seen.shape[1]} items), got {dataset.n_users} users, {dataset.n_items} items"
            )
        self._sequences = user_sequences(dataset)
        matrix = dataset.to_csr()
        matrix.data[:] = 1.0
        self._seen = matrix
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_sequences([self._sequences[u] for u in users])

    supports_fold_in = True

    def _score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        # The user *is* the encoded sequence: fold-in is scoring it, in the given order.
        return self._score_sequences(histories)

    def _score_sequences(self, histories: list[np.ndarray]) -> np.ndarray:
        network = self._network
        if network is None:
            raise ParetorecError("SequentialTransformer is not fitted; call fit(train) first")
        network.eval()
        with torch.no_grad():
            table = network.item_table()
            sequences = _left_pad(list(histories), self.max_length)
            states = network.encode(torch.from_numpy(sequences).to(self.device), table)
            scores = self._logits(states[:, -1], table[1:])
        return scores.float().cpu().numpy()

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """Each user's last state (n x hidden): scores are its products with
        :meth:`item_vectors` (after normalising both when ``temperature`` is set)."""
        return self.history_vectors([self._sequences[u] for u in users])

    def history_vectors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The last state (n x hidden) over each history (item codes, most recent last):
        the user vector of someone known only by that history (fold-in), as
        :meth:`score_histories` scores it."""
        network = self._network
        if network is None:
            raise ParetorecError("SequentialTransformer is not fitted; call fit(train) first")
        network.eval()
        with torch.no_grad():
            table = network.item_table()
            sequences = _left_pad(list(histories), self.max_length)
            states = network.encode(torch.from_numpy(sequences).to(self.device), table)
        return states[:, -1].float().cpu().numpy()

    def item_vectors(self) -> np.ndarray:
        """The learned item table (n_items x hidden) as the network scores with it."""
        if self._network is None:
            raise ParetorecError("SequentialTransformer is not fitted; call fit(train) first")
        with torch.no_grad():
            return self._network.item_table()[1:].cpu().numpy()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Language-model vectors of ``texts`` (float32, n x d) as this model embeds items.

        With a trainable ``text_adapter`` these come from the adapted model (after
        :meth:`load`, rebuilt from the saved weights and the ``text_encoder`` files, no
        network needed); otherwise from the frozen ``text_encoder``. The model's item
        vectors are a learned projection of these (see :meth:`item_vectors`).
        """
        values = check_texts(texts)
        if self.item_mode == "id":
            raise ParetorecError("encode_texts needs item_mode 'text' or 'hybrid'; got 'id'")
        if self.text_adapter == "frozen":
            from ..text import TextEncoder

            return TextEncoder(self.text_encoder, show_progress=False).encode(values)
        tower = self._adapted_tower()
        return tower.encode_tokens(tower.tokenise(values))

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        assert self._network is not None
        state = {
            f"net.{k}": v.detach().cpu().numpy() for k, v in self._network.state_dict().items()
        }
        state["warm"] = self._warm
        lengths = np.array([len(s) for s in self._sequences], dtype=np.int64)
        state["history.lengths"] = lengths
        state["history.items"] = (
            np.concatenate(self._sequences) if len(self._sequences) else np.zeros(0, np.int64)
        )
        if self._text_vectors is not None:
            state["text_vectors"] = self._text_vectors
        adapted = (
            self._text_tower.trainable_state()
            if self._text_tower is not None
            else self._text_tower_state
        )
        for name, value in adapted.items():
            state[f"text_model.{name}"] = value.detach().cpu().numpy()
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._warm = state["warm"].astype(np.float32)
        self._text_vectors = state.get("text_vectors")
        self._text_tower = None  # rebuilt from these weights only when texts are encoded
        self._text_tower_state = {
            k[len("text_model.") :]: torch.from_numpy(v.copy())
            for k, v in state.items()
            if k.startswith("text_model.")
        }
        lengths = state["history.lengths"]
        self._sequences = np.split(state["history.items"].astype(np.int64), np.cumsum(lengths)[:-1])
        network = self._build(len(self._warm))
        network.load_state_dict(
            {
                k[len("net.") :]: torch.from_numpy(v)
                for k, v in state.items()
                if k.startswith("net.")
            }
        )
        network.eval()
        self._network = network


def _check_text_fields(value: Any) -> bool | dict[str, str]:
    """``text_fields`` as ``False``, ``True`` or a dict field name -> format string."""
    if isinstance(value, bool):
        return value
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in value.items())
    ):
        return dict(value)
    raise ParetorecError(
        "text_fields must be False, True (the dataset's default fields) or a non-empty dict "
        f"field name -> format string such as {{'title': '{{title}}'}}; got {show(value)}"
    )


def _ddp_context(model: SequentialTransformer) -> DistributedContext | None:
    """The process group (``None`` for one process); refuses what DDP cannot reproduce."""
    ddp = current()
    if ddp is None:
        return None
    if model.loss != "full":
        raise ParetorecError(
            f"loss={model.loss!r} cannot run under DDP (world size {ddp.world_size}): its "
            "in-batch negatives would be each rank's rows, not the global batch's; use "
            "loss='full' or train in one process"
        )
    if model.text_adapter != "frozen":
        raise ParetorecError(
            f"text_adapter={model.text_adapter!r} cannot run under DDP (world size "
            f"{ddp.world_size}): it samples item texts per rank; use text_adapter='frozen' "
            "or train in one process"
        )
    return ddp
