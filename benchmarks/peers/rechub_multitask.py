"""Peer baseline: torch-rechub 0.9.0 multi-task models (MMoE, PLE, ESMM) on a fixed split.

Runs in the *peers* virtual environment (see ``benchmarks/peers/README.md``), never in
paretorec's own. It must not import paretorec.

Input: three tables (``.parquet``, ``.csv`` or ``.npz``) with integer-coded categorical columns
(``--sparse-cols``), optional float columns (``--dense-cols``), label columns (``--label-cols``)
and optional 0/1 mask columns ``<label>_mask`` (a row counts for a task only where its mask is
1; a missing mask column means "all rows"). Multi-valued fields (``--sequence-cols``, ``.npz``
only) are 2-D integer arrays, one padded row of codes per row (0 = padding); each becomes the
library's ``SequenceFeature`` with mean pooling over its non-padding codes (an item's genres
as a bag, like paretorec's multi-valued fields).

The models, the feature classes and the training loop are the library's own
(``torch_rechub.models.multi_task.{MMOE, PLE, ESMM}``, ``torch_rechub.trainers.MTLTrainer``).
torch-rechub has no notion of a label mask, so ``--mask-mode`` picks what to do with the rows a
task does not cover:

``masked`` (default)
    Masked-out labels are passed as NaN and the trainer's per-task loss functions
    (``trainer.loss_fns``, the library's ``BCELoss`` / ``MSELoss``) are wrapped so that each
    task's batch loss is the library loss over the rows where that task's label is present
    (a batch with no such row contributes 0 for that task). The trainer's validation
    metrics are wrapped the same way. Nothing else in the trainer or the models changes.
``zero``
    What the library does out of the box: masked-out labels are set to 0 and every task is
    trained on every row (for a regression task that means regressing to 0 on those rows).

Test metrics are always computed here, only on the rows each task's mask covers: AUC for binary
tasks, RMSE (and MAE) for regression tasks, with numpy only.

ESMM (``--model esmm``) has exactly two towers: CTR (``--esmm-ctr``, default the first label)
and CVR (``--esmm-cvr``, default the second label); other labels are ignored. As in the paper and
the library, the trainer optimises the CTR loss and the CTCVR loss (label ``ctr * cvr`` over all
rows) only; the CVR tower is learnt through the CTCVR product, so no mask is needed for it. Its
CVR predictions are reported against the CVR label on the CVR mask rows.

Throughput: samples/s = train rows x epochs / wall seconds spent in the trainer's
``train_one_epoch`` (the library's DataLoader iteration, forward, backward and optimiser step;
file loading, model construction and the per-epoch validation pass are excluded), at
``torch.set_num_threads(--threads)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path


def csv_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def int_list(text: str | None) -> list[int]:
    return [int(t) for t in csv_list(text)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True, help="result JSON path")
    p.add_argument("--save-preds", default=None, help=".npz of test predictions per task")
    p.add_argument("--model", choices=["mmoe", "ple", "esmm"], default="mmoe")
    p.add_argument("--sparse-cols", default="user,item,age_band,gender,occupation,genre")
    p.add_argument("--dense-cols", default="")
    p.add_argument(
        "--sequence-cols",
        default="",
        help="multi-valued integer fields (2-D, 0 = padding; .npz only): mean-pooled "
        "SequenceFeature",
    )
    p.add_argument("--label-cols", default="engage,like,rating")
    p.add_argument(
        "--task-types",
        default=None,
        help="comma list of classification|regression per label (default: binary labels -> "
        "classification, others -> regression)",
    )
    p.add_argument("--mask-suffix", default="_mask")
    p.add_argument("--mask-mode", choices=["masked", "zero"], default="masked")
    p.add_argument("--embed-dim", type=int, default=16)
    p.add_argument("--expert-dims", default="64,32")
    p.add_argument("--n-experts", type=int, default=4, help="MMoE experts; PLE shared experts")
    p.add_argument("--ple-specific-experts", type=int, default=1)
    p.add_argument("--ple-shared-experts", type=int, default=None, help="default: --n-experts")
    p.add_argument("--ple-levels", type=int, default=1)
    p.add_argument("--tower-dims", default="32")
    p.add_argument(
        "--esmm-tower-dims", default=None, help="ESMM tower MLP (default: expert dims + tower dims)"
    )
    p.add_argument("--esmm-ctr", default=None, help="CTR label (default: first label)")
    p.add_argument("--esmm-cvr", default=None, help="CVR label (default: second label)")
    p.add_argument(
        "--esmm-item-cols", default="item,genre", help="ESMM item-side features (others: user)"
    )
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument(
        "--patience",
        type=int,
        default=0,
        help="early stopping on the validation score of --earlystop-label "
        "(0: off, train all epochs, keep last)",
    )
    p.add_argument(
        "--earlystop-label",
        default=None,
        help="label whose validation score drives early stopping (default: the first label; "
        "ESMM: its CTR label); highest AUC for a binary label, lowest MSE for a regression one",
    )
    p.add_argument(
        "--loader",
        choices=["rechub", "tensor"],
        default="rechub",
        help="rechub: the library's DataGenerator (per-row Dataset + default collate); "
        "tensor: pre-built tensors sliced per batch (isolates model compute)",
    )
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- data


def read_table(path: str):
    """The 1-D columns as a DataFrame, and the 2-D (multi-valued) ones by name."""
    import numpy as np
    import pandas as pd

    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path), {}
    if suffix == ".csv":
        return pd.read_csv(path), {}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        flat = {k: v for k, v in arrays.items() if v.ndim == 1}
        return pd.DataFrame(flat), {k: v for k, v in arrays.items() if v.ndim == 2}
    raise SystemExit(f"unsupported table format: {path} (use .parquet, .csv or .npz)")


# ----------------------------------------------------------------------------- metrics


def auc(y, s) -> float:
    """ROC AUC (Mann-Whitney, ties get average ranks); NaN when one class is missing."""
    import numpy as np

    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    n_pos = float((y > 0.5).sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average ranks over tied runs
    boundaries = np.flatnonzero(np.diff(s_sorted)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(s)]))
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    sum_pos = ranks[y > 0.5].sum()
    return float((sum_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(y, p) -> float:
    import numpy as np

    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def nan_aware(metric):
    """Validation metric for the trainer that skips NaN (masked-out) targets."""
    import numpy as np

    def wrapped(y_true, y_pred):
        y_true = np.asarray(y_true, dtype=np.float64)
        keep = ~np.isnan(y_true)
        return metric(y_true[keep], np.asarray(y_pred)[keep])

    return wrapped


def mse(y, p) -> float:
    import numpy as np

    return float(np.mean((np.asarray(y) - np.asarray(p)) ** 2))


def masked_loss(loss_fn):
    """The library's per-task loss over the rows whose target is not NaN."""

    def wrapped(pred, target):
        import torch

        keep = ~torch.isnan(target)
        if not bool(keep.any()):
            return pred.sum() * 0.0
        return loss_fn(pred[keep], target[keep])

    return wrapped


# ----------------------------------------------------------------------------- loader


class TensorBatches:
    """Minimal stand-in for a DataLoader over pre-built tensors: yields (x_dict, y)."""

    def __init__(self, x: dict, y, batch_size: int, shuffle: bool, seed: int):
        import torch

        self.x = {k: torch.as_tensor(v) for k, v in x.items()}
        self.y = torch.as_tensor(y)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.y) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        import torch

        n = len(self.y)
        idx = torch.randperm(n, generator=self.gen) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            b = idx[start : start + self.batch_size]
            yield {k: v[b] for k, v in self.x.items()}, self.y[b]


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002 - seeds the library's legacy global RNG use
    torch.manual_seed(args.seed)

    import torch_rechub
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import ESMM, MMOE, PLE
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    try:
        from importlib.metadata import version as _pkg_version

        rechub_version = _pkg_version("torch-rechub")
    except Exception:  # pragma: no cover - metadata missing
        rechub_version = getattr(torch_rechub, "__version__", "unknown")

    t0 = time.perf_counter()
    tables = {
        s: read_table(p)
        for s, p in (("train", args.train), ("valid", args.valid), ("test", args.test))
    }
    frames = {s: table[0] for s, table in tables.items()}
    sequences = {s: table[1] for s, table in tables.items()}
    from torch_rechub.basic.features import SequenceFeature

    sparse_cols = csv_list(args.sparse_cols)
    dense_cols = csv_list(args.dense_cols)
    sequence_cols = csv_list(args.sequence_cols)
    label_cols = csv_list(args.label_cols)
    for split, df in frames.items():
        missing = [c for c in sparse_cols + dense_cols + label_cols if c not in df.columns]
        missing += [c for c in sequence_cols if c not in sequences[split]]
        if missing:
            raise SystemExit(f"{split}: missing columns {missing}; has {list(df.columns)}")

    # masks (1 = the label is observed on this row)
    masks: dict[str, dict[str, np.ndarray]] = {}
    for split, df in frames.items():
        masks[split] = {}
        for lab in label_cols:
            mcol = lab + args.mask_suffix
            m = df[mcol].to_numpy() if mcol in df.columns else np.ones(len(df))
            m = (m > 0) & ~np.isnan(df[lab].to_numpy(dtype=np.float64))
            masks[split][lab] = m

    if args.task_types:
        task_types = csv_list(args.task_types)
        if len(task_types) != len(label_cols):
            raise SystemExit("--task-types needs one entry per --label-cols entry")
    else:
        task_types = []
        for lab in label_cols:
            v = frames["train"][lab].to_numpy(dtype=np.float64)[masks["train"][lab]]
            binary = bool(np.isin(v, (0.0, 1.0)).all())
            task_types.append("classification" if binary else "regression")
    type_of = dict(zip(label_cols, task_types, strict=True))

    # integer codes -> vocabulary sizes over all three splits
    vocab = {}
    for c in sparse_cols + sequence_cols:
        columns = [
            df[c].to_numpy() if c in sparse_cols else sequences[s][c] for s, df in frames.items()
        ]
        mx = max(int(v.max()) for v in columns)
        mn = min(int(v.min()) for v in columns)
        if mn < 0:
            raise SystemExit(f"column {c} has negative codes")
        vocab[c] = mx + 1

    def x_of(split: str) -> dict:
        df = frames[split]
        x = {c: df[c].to_numpy().astype(np.int64) for c in sparse_cols}
        for c in sequence_cols:
            x[c] = sequences[split][c].astype(np.int64)
        for c in dense_cols:
            x[c] = df[c].to_numpy().astype(np.float32)
        return x

    def label_matrix(split: str, labs: list[str]) -> np.ndarray:
        df = frames[split]
        cols = []
        for lab in labs:
            y = df[lab].to_numpy(dtype=np.float32).copy()
            m = masks[split][lab]
            y[~m] = np.nan if args.mask_mode == "masked" else 0.0
            cols.append(y)
        return np.stack(cols, axis=1).astype(np.float32)

    def y_of(split: str) -> np.ndarray:
        if args.model != "esmm":
            return label_matrix(split, label_cols)
        ctr, cvr = esmm_ctr, esmm_cvr
        y = label_matrix(split, [cvr, ctr])
        # CTCVR = click AND conversion, defined on every row (an unclicked row is a 0)
        cvr_zero = np.nan_to_num(y[:, 0], nan=0.0)
        ctcvr = (y[:, 1] * cvr_zero).astype(np.float32)
        return np.concatenate([y, ctcvr[:, None]], axis=1)

    if args.model == "esmm":
        esmm_ctr = args.esmm_ctr or label_cols[0]
        esmm_cvr = args.esmm_cvr or label_cols[1]
        for lab in (esmm_ctr, esmm_cvr):
            if type_of[lab] != "classification":
                raise SystemExit(f"ESMM needs binary labels; {lab} is {type_of[lab]}")
        model_tasks = ["cvr", "ctr", "ctcvr"]  # the order of ESMM's outputs
        model_task_types = ["classification"] * 3
    else:
        model_tasks = label_cols
        model_task_types = task_types

    x = {s: x_of(s) for s in frames}
    y = {s: y_of(s) for s in frames}
    data_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ model
    def sparse_features(cols):
        return [
            SequenceFeature(
                c, vocab_size=vocab[c], embed_dim=args.embed_dim, pooling="mean", padding_idx=0
            )
            if c in sequence_cols
            else SparseFeature(c, vocab_size=vocab[c], embed_dim=args.embed_dim)
            for c in cols
        ]

    expert_dims = int_list(args.expert_dims)
    tower_dims = int_list(args.tower_dims)
    expert_params = {"dims": expert_dims, "dropout": args.dropout}
    tower_params = [{"dims": tower_dims, "dropout": args.dropout} for _ in model_tasks]
    arch: dict = {"embed_dim": args.embed_dim}
    if args.model == "mmoe":
        features = sparse_features(sparse_cols + sequence_cols) + [
            DenseFeature(c) for c in dense_cols
        ]
        model = MMOE(features, model_task_types, args.n_experts, expert_params, tower_params)
        arch.update(n_experts=args.n_experts, expert_dims=expert_dims, tower_dims=tower_dims)
    elif args.model == "ple":
        features = sparse_features(sparse_cols + sequence_cols) + [
            DenseFeature(c) for c in dense_cols
        ]
        n_shared = (
            args.ple_shared_experts if args.ple_shared_experts is not None else args.n_experts
        )
        model = PLE(
            features,
            model_task_types,
            n_level=args.ple_levels,
            n_expert_specific=args.ple_specific_experts,
            n_expert_shared=n_shared,
            expert_params=expert_params,
            tower_params_list=tower_params,
        )
        arch.update(
            n_level=args.ple_levels,
            n_expert_specific=args.ple_specific_experts,
            n_expert_shared=n_shared,
            expert_dims=expert_dims,
            tower_dims=tower_dims,
        )
    else:
        if dense_cols:
            raise SystemExit("ESMM in torch-rechub takes sparse features only")
        every = sparse_cols + sequence_cols
        item_cols = [c for c in csv_list(args.esmm_item_cols) if c in every]
        user_cols = [c for c in every if c not in item_cols]
        esmm_dims = (
            int_list(args.esmm_tower_dims) if args.esmm_tower_dims else (expert_dims + tower_dims)
        )
        params = {"dims": esmm_dims, "dropout": args.dropout}
        model = ESMM(
            sparse_features(user_cols), sparse_features(item_cols), dict(params), dict(params)
        )
        arch.update(
            user_features=user_cols,
            item_features=item_cols,
            tower_dims=esmm_dims,
            ctr_label=esmm_ctr,
            cvr_label=esmm_cvr,
        )
    n_params = int(sum(p.numel() for p in model.parameters()))

    # ------------------------------------------------------------------ loaders
    if args.loader == "rechub":
        gen = DataGenerator(x["train"], y["train"])
        train_dl, valid_dl, test_dl = gen.generate_dataloader(
            x_val=x["valid"],
            y_val=y["valid"],
            x_test=x["test"],
            y_test=y["test"],
            batch_size=args.batch_size,
        )
    else:
        train_dl = TensorBatches(x["train"], y["train"], args.batch_size, True, args.seed)
        valid_dl = TensorBatches(x["valid"], y["valid"], args.batch_size, False, args.seed)
        test_dl = TensorBatches(x["test"], y["test"], args.batch_size, False, args.seed)

    # the model output (and validation score) that early stopping watches
    if args.model == "esmm":
        stop_label = args.earlystop_label or esmm_ctr
        by_label = {esmm_cvr: 0, esmm_ctr: 1}
    else:
        stop_label = args.earlystop_label or label_cols[0]
        by_label = {lab: i for i, lab in enumerate(label_cols)}
    if stop_label not in by_label:
        raise SystemExit(f"--earlystop-label {stop_label!r} is not one of {sorted(by_label)}")
    earlystop_task = by_label[stop_label]
    earlystop_mode = "min" if model_task_types[earlystop_task] == "regression" else "max"

    model_dir = tempfile.mkdtemp(prefix="rechub_")
    try:
        patience = args.patience if args.patience > 0 else args.epochs + 1
        trainer = MTLTrainer(
            model,
            task_types=model_task_types,
            optimizer_params={"lr": args.lr, "weight_decay": args.weight_decay},
            n_epoch=args.epochs,
            earlystop_taskid=earlystop_task,
            earlystop_patience=patience,
            earlystop_mode=earlystop_mode,
            device=args.device,
            model_path=model_dir,
        )
        if args.mask_mode == "masked":
            trainer.loss_fns = [masked_loss(fn) for fn in trainer.loss_fns]
            # NaN-aware validation scores (AUC for binary tasks, MSE for regression ones)
            trainer.evaluate_fns = [
                nan_aware(auc if t == "classification" else mse) for t in model_task_types
            ]

        epoch_seconds: list[float] = []
        epoch_losses: list[list[float]] = []
        original_train_one_epoch = trainer.train_one_epoch

        def timed_train_one_epoch(data_loader):
            s = time.perf_counter()
            out = original_train_one_epoch(data_loader)
            epoch_seconds.append(time.perf_counter() - s)
            epoch_losses.append([float(v) for v in out])
            return out

        trainer.train_one_epoch = timed_train_one_epoch
        t0 = time.perf_counter()
        history = trainer.fit(train_dl, valid_dl, seed=args.seed)
        fit_seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(model_dir, ignore_errors=True)

    # ------------------------------------------------------------------ test
    t0 = time.perf_counter()
    model.eval()
    preds = []
    with torch.no_grad():
        for xb, _ in test_dl:
            xb = {k: v.to(args.device) for k, v in xb.items()}
            preds.append(model(xb).float().cpu().numpy())
    pred = np.concatenate(preds, axis=0)
    predict_seconds = time.perf_counter() - t0
    if len(pred) != len(frames["test"]):
        raise RuntimeError("prediction count does not match the test rows")

    tdf = frames["test"]
    metrics: dict[str, dict] = {}
    pred_out: dict[str, np.ndarray] = {}

    def score_task(
        name: str,
        label: str | None,
        p: np.ndarray,
        kind: str,
        mask: np.ndarray,
        y_true: np.ndarray | None = None,
    ) -> None:
        yt = tdf[label].to_numpy(dtype=np.float64) if y_true is None else y_true
        yt, pp = yt[mask], p[mask].astype(np.float64)
        entry: dict = {"label": label, "type": kind, "n": int(mask.sum())}
        if kind == "classification":
            entry.update(auc=auc(yt, pp), logloss=logloss(yt, pp), positive_rate=float(yt.mean()))
        else:
            err = pp - yt
            entry.update(rmse=float(np.sqrt(np.mean(err**2))), mae=float(np.mean(np.abs(err))))
        metrics[name] = entry
        pred_out[name] = p.astype(np.float32)

    if args.model == "esmm":
        score_task(esmm_ctr, esmm_ctr, pred[:, 1], "classification", masks["test"][esmm_ctr])
        score_task(esmm_cvr, esmm_cvr, pred[:, 0], "classification", masks["test"][esmm_cvr])
        ctcvr_true = tdf[esmm_ctr].to_numpy(dtype=np.float64) * np.where(
            masks["test"][esmm_cvr], tdf[esmm_cvr].to_numpy(dtype=np.float64), 0.0
        )
        score_task(
            "ctcvr", None, pred[:, 2], "classification", masks["test"][esmm_ctr], y_true=ctcvr_true
        )
        metrics["ctcvr"]["label"] = f"{esmm_ctr}*{esmm_cvr}"
    else:
        for i, lab in enumerate(label_cols):
            score_task(lab, lab, pred[:, i], type_of[lab], masks["test"][lab])

    n_train = len(frames["train"])
    train_seconds = float(sum(epoch_seconds))
    epochs_run = len(epoch_seconds)
    result = {
        "library": "torch-rechub",
        "library_version": rechub_version,
        "torch_version": torch.__version__,
        "model": args.model,
        "mask_mode": args.mask_mode,
        "tasks": model_tasks,
        "task_types": dict(zip(model_tasks, model_task_types, strict=True)),
        "metrics": metrics,
        "n_rows": {s: len(df) for s, df in frames.items()},
        "n_params": n_params,
        "vocab_sizes": vocab,
        "epochs_run": epochs_run,
        "train_seconds": train_seconds,
        "epoch_seconds": epoch_seconds,
        "fit_seconds": fit_seconds,
        "data_seconds": data_seconds,
        "predict_seconds": predict_seconds,
        "samples_per_second": n_train * epochs_run / train_seconds if train_seconds > 0 else None,
        # the fastest epoch: less sensitive to other processes on a shared machine
        "samples_per_second_best_epoch": n_train / min(epoch_seconds) if epoch_seconds else None,
        "threads": torch.get_num_threads(),
        "train_losses": epoch_losses,
        "valid_scores": [list(map(float, h[len(model_tasks) :])) for h in history],
        "config": {
            "model": args.model,
            "sparse_cols": sparse_cols,
            "sequence_cols": sequence_cols,
            "dense_cols": dense_cols,
            "label_cols": label_cols,
            "mask_mode": args.mask_mode,
            "architecture": arch,
            "dropout": args.dropout,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "optimizer": "Adam",
            "patience": args.patience,
            "earlystop_label": stop_label,
            "earlystop_mode": earlystop_mode,
            "loader": args.loader,
            "seed": args.seed,
            "threads": args.threads,
            "device": args.device,
        },
    }
    if args.save_preds:
        sp = Path(args.save_preds)
        sp.parent.mkdir(parents=True, exist_ok=True)
        np.savez(sp, **pred_out)
        result["preds_path"] = str(sp.resolve())

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, allow_nan=True))
    tmp.replace(out)
    short = {
        k: {m: round(v, 4) for m, v in e.items() if m in ("auc", "rmse")}
        for k, e in metrics.items()
    }
    print(
        json.dumps(
            {
                "model": args.model,
                "metrics": short,
                "samples_per_second": result["samples_per_second"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
