"""Peer baseline: RecBole 1.2.1 SASRec on a fixed train/valid/test split.

Runs in the *peers* virtual environment (see ``benchmarks/peers/README.md``), never in
paretorec's own. It must not import paretorec.

Input is a folder in RecBole benchmark format (``NAME.train.inter``, ``NAME.valid.inter``,
``NAME.test.inter`` with header ``user_id:token  item_id_list:token_seq  item_id:token``), e.g.
the UniSRec "Scientific" release. RecBole is driven through ``benchmark_filename`` so it trains
and evaluates on exactly those rows. SASRec is trained with the cross-entropy loss over all
items, early-stopped on validation NDCG@10, and evaluated by RecBole's own full-ranking
evaluator on the test file (Recall and NDCG at 10 and 50).

Besides the JSON result (``--out``) it can write the per-test-row top-50 item tokens and the
target token (``--save-topk file.csv``) so that the caller can compute its own metrics (and split
cold/warm targets) identically for every library, and the full score matrix
(``--save-scores file.npy``).

RecBole's trainer reloads its best checkpoint with ``torch.load``; under PyTorch >= 2.6 run this
with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (the launcher in ``paretorec.benchmarks._peers`` sets
it; this script also sets it for itself if unset).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="folder with NAME.{train,valid,test}.inter")
    p.add_argument("--dataset-name", default=None, help="NAME (default: found from *.train.inter)")
    p.add_argument("--out", required=True, help="result JSON path")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--inner-size", type=int, default=None, help="FFN width (default 4*hidden)")
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--n-heads", type=int, default=2)
    p.add_argument("--max-seq-len", type=int, default=50)
    p.add_argument("--dropout", type=float, default=0.5, help="hidden and attention dropout")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--eval-batch-size", type=int, default=4096)
    p.add_argument("--stopping-step", type=int, default=10)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--topk-save", type=int, default=50, help="how many items --save-topk keeps")
    p.add_argument("--save-topk", default=None, help="CSV: user,target,topk (space-separated)")
    p.add_argument("--save-scores", default=None, help=".npy float32 [n_test, n_items]")
    p.add_argument("--work-dir", default=None, help="scratch folder (default: a temp dir)")
    p.add_argument(
        "--eval-only",
        action="store_true",
        help="with --resume: no training, evaluate the checkpoint on the test file",
    )
    p.add_argument(
        "--resume",
        default=None,
        help="RecBole checkpoint (.pth, or a folder: its newest .pth) of an interrupted run with "
        "the same settings; training goes on after the checkpoint's epoch (checkpoints are "
        "written at each new best validation score)",
    )
    p.add_argument("--keep-work-dir", action="store_true")
    return p.parse_args(argv)


def find_dataset_name(data_dir: Path) -> str:
    names = sorted(f.name[: -len(".train.inter")] for f in data_dir.glob("*.train.inter"))
    if len(names) != 1:
        raise SystemExit(f"expected exactly one *.train.inter in {data_dir}, found {names}")
    return names[0]


def link_or_truncate(src: Path, dst: Path, max_len: int) -> int:
    """Symlink ``src`` to ``dst``, or write a copy whose ``*_list`` (token_seq) columns keep only
    the last ``max_len`` tokens when some row is longer (RecBole's own ``seq_len`` option keeps
    the *first* tokens, and SASRec needs every list to fit ``MAX_ITEM_LIST_LENGTH``).
    Returns the number of rows truncated."""
    with open(src, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        seq_cols = [i for i, h in enumerate(header) if h.endswith(":token_seq")]
        rows = [line.rstrip("\n").split("\t") for line in f]
    too_long = sum(
        1 for r in rows if any(len(r[i].split()) > max_len for i in seq_cols if i < len(r))
    )
    if too_long == 0:
        os.symlink(src, dst)
        return 0
    with open(dst, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            for i in seq_cols:
                if i < len(r):
                    r[i] = " ".join(r[i].split()[-max_len:])
            f.write("\t".join(r) + "\n")
    return too_long


def ndcg_recall_from_ranks(ranks, ks):
    """ranks: 0-based rank of the target per row, or -1 when outside the saved list."""
    import numpy as np

    ranks = np.asarray(ranks)
    out = {}
    for k in ks:
        hit = (ranks >= 0) & (ranks < k)
        out[f"recall@{k}"] = float(hit.mean())
        gain = np.where(hit, 1.0 / np.log2(np.clip(ranks, 0, None) + 2.0), 0.0)
        out[f"ndcg@{k}"] = float(gain.mean())
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resume:
        args.resume = str(Path(args.resume).resolve())  # before run() changes directory
    work = Path(args.work_dir).resolve() if args.work_dir else Path(tempfile.mkdtemp(prefix="rb_"))
    try:
        return run(args, work)
    finally:
        if not args.work_dir and not args.keep_work_dir:
            os.chdir("/")
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))

    data_dir = Path(args.data_dir).resolve()
    out_path = Path(args.out).resolve()
    topk_path = Path(args.save_topk).resolve() if args.save_topk else None
    scores_path = Path(args.save_scores).resolve() if args.save_scores else None
    name = args.dataset_name or find_dataset_name(data_dir)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)

    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    # RecBole wants data_path/NAME/NAME.{train,valid,test}.inter and writes logs, tensorboard
    # runs and checkpoints relative to the working directory: work in a scratch folder.
    (work / "data" / name).mkdir(parents=True, exist_ok=True)
    truncated_rows = 0
    for part in ("train", "valid", "test"):
        src = data_dir / f"{name}.{part}.inter"
        if not src.is_file():
            raise SystemExit(f"missing {src}")
        dst = work / "data" / name / src.name
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        truncated_rows += link_or_truncate(src, dst, args.max_seq_len)
    os.chdir(work)

    config_dict = {
        "data_path": str(work / "data"),
        "checkpoint_dir": str(work / "saved"),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "alias_of_item_id": ["item_id_list"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": None,
        "RATING_FIELD": None,
        "LIST_SUFFIX": "_list",
        "MAX_ITEM_LIST_LENGTH": args.max_seq_len,
        # model
        "hidden_size": args.hidden_size,
        "inner_size": args.inner_size or 4 * args.hidden_size,
        "n_layers": args.n_layers,
        "n_heads": args.n_heads,
        "hidden_dropout_prob": args.dropout,
        "attn_dropout_prob": args.dropout,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        # training
        "epochs": args.epochs,
        "train_batch_size": args.batch_size,
        "eval_batch_size": args.eval_batch_size,
        "learner": "adam",
        "learning_rate": args.lr,
        "weight_decay": args.weight_decay,
        "stopping_step": args.stopping_step,
        "eval_step": 1,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": args.device == "cuda",
        "gpu_id": "0" if args.device == "cuda" else "",
        "worker": 0,
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        "state": "INFO",
        # evaluation: full ranking, RecBole's own metrics
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},  # ignored: benchmark_filename fixes the split
            "order": "TO",  # required by SequentialDataset; no sorting with benchmark files
            "group_by": "user",
            "mode": {"valid": "full", "test": "full"},
        },
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 50],
        "valid_metric": "NDCG@10",
        "metric_decimal_place": 6,
    }

    # RecBole's Config also reads ``--key=value`` from sys.argv (over config_dict): hide ours.
    saved_argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        config = Config(model=SASRec, dataset=name, config_dict=config_dict)
    finally:
        sys.argv = saved_argv
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = logging.getLogger()

    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_seconds = time.perf_counter() - t0
    logger.info(dataset)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)

    # Count epochs and time the training passes alone (fit() also runs validation).
    epoch_seconds: list[float] = []
    valid_history: list[float] = []
    original_train_epoch = trainer._train_epoch

    def timed_train_epoch(*a, **kw):
        s = time.perf_counter()
        r = original_train_epoch(*a, **kw)
        epoch_seconds.append(time.perf_counter() - s)
        return r

    trainer._train_epoch = timed_train_epoch

    resumed_from = None
    if args.resume:
        resume = Path(args.resume)
        if resume.is_dir():
            found = sorted(resume.rglob("*.pth"), key=lambda f: f.stat().st_mtime)
            if not found:
                raise SystemExit(f"no .pth checkpoint under {resume}")
            resume = found[-1]
        trainer.resume_checkpoint(resume)  # also makes it the file later bests overwrite
        resumed_from = {
            "checkpoint": str(resume),
            "start_epoch": trainer.start_epoch,
            "best_valid_score": float(trainer.best_valid_score),
        }

    t0 = time.perf_counter()
    if args.eval_only:
        if not resumed_from:
            raise SystemExit("--eval-only needs --resume")
        best_valid_score, best_valid_result = trainer.best_valid_score, None
    else:
        best_valid_score, best_valid_result = trainer.fit(
            train_data,
            valid_data,
            saved=True,
            show_progress=False,
            callback_fn=lambda epoch, score: valid_history.append(float(score)),
        )
    fit_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    test_seconds = time.perf_counter() - t0
    start_epoch = resumed_from["start_epoch"] if resumed_from else 0
    best_epoch = int(np.argmax(valid_history)) + start_epoch if valid_history else None
    if resumed_from and (
        not valid_history or max(valid_history) <= resumed_from["best_valid_score"]
    ):
        best_epoch = start_epoch - 1  # the checkpoint's epoch stayed the best

    # Per-row top-k with the best model (trainer.evaluate loaded it into trainer.model); always
    # computed, so that metrics_from_topk can be checked against RecBole's evaluator.
    topk_ranks: list[int] = []
    if True:
        item_tokens = dataset.field2id_token[dataset.iid_field]
        user_tokens = dataset.field2id_token[dataset.uid_field]
        k = args.topk_save
        users_out, targets_out, topk_out, score_rows = [], [], [], []
        trainer.model.eval()
        with torch.no_grad():
            for batched in test_data:
                interaction = batched[0].to(config["device"])
                scores = trainer.model.full_sort_predict(interaction).view(len(interaction), -1)
                scores[:, 0] = -float("inf")  # padding item, as RecBole's trainer does
                top = torch.topk(scores, k, dim=1).indices.cpu().numpy()
                target = interaction[dataset.iid_field].cpu().numpy()
                users_out.extend(user_tokens[interaction[dataset.uid_field].cpu().numpy()])
                targets_out.extend(item_tokens[target])
                topk_out.extend(item_tokens[top])
                for row, t in zip(top, target, strict=True):
                    pos = np.nonzero(row == t)[0]
                    topk_ranks.append(int(pos[0]) if len(pos) else -1)
                if scores_path is not None:
                    score_rows.append(scores[:, 1:].float().cpu().numpy())
        saved_topk = {
            "rows": len(users_out),
            "k": k,
        }
        if topk_path is not None:
            topk_path.parent.mkdir(parents=True, exist_ok=True)
            with open(topk_path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["user", "target", "topk"])
                for u, t, row in zip(users_out, targets_out, topk_out, strict=True):
                    w.writerow([u, t, " ".join(str(x) for x in row)])
            saved_topk["path"] = str(topk_path)
        if scores_path is not None:
            scores_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(scores_path, np.concatenate(score_rows, axis=0))
            items_file = scores_path.with_name(scores_path.name + ".items.txt")
            items_file.write_text("\n".join(str(t) for t in item_tokens[1:]) + "\n")
            saved_topk["scores_path"] = str(scores_path)
            saved_topk["scores_items_path"] = str(items_file)

    result = {
        "library": "recbole",
        "library_version": recbole.__version__,
        "torch_version": torch.__version__,
        "model": "SASRec",
        "dataset": name,
        "data_dir": str(data_dir),
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "n_train_rows": len(train_data.dataset),
        "n_valid_rows": len(valid_data.dataset),
        "n_test_rows": len(test_data.dataset),
        "rows_with_history_truncated": truncated_rows,
        "metrics": {k: float(v) for k, v in test_result.items()},
        "metrics_from_topk": ndcg_recall_from_ranks(topk_ranks, [10, 50]),
        "best_valid_score": float(best_valid_score),
        "best_valid_metrics": {k: float(v) for k, v in (best_valid_result or {}).items()},
        "valid_metric": config["valid_metric"],
        "valid_history": valid_history,
        "epochs_run": len(epoch_seconds),
        "last_epoch": start_epoch + len(epoch_seconds) - 1,
        "resumed_from": resumed_from,
        "best_epoch": best_epoch,
        "train_seconds": float(sum(epoch_seconds)),
        "fit_seconds": fit_seconds,
        "data_seconds": data_seconds,
        "test_seconds": test_seconds,
        "threads": torch.get_num_threads(),
        "config": {
            "epochs": args.epochs,
            "hidden_size": config["hidden_size"],
            "inner_size": config["inner_size"],
            "n_layers": config["n_layers"],
            "n_heads": config["n_heads"],
            "max_seq_len": config["MAX_ITEM_LIST_LENGTH"],
            "hidden_dropout_prob": config["hidden_dropout_prob"],
            "attn_dropout_prob": config["attn_dropout_prob"],
            "loss_type": config["loss_type"],
            "learning_rate": config["learning_rate"],
            "weight_decay": config["weight_decay"],
            "train_batch_size": config["train_batch_size"],
            "stopping_step": config["stopping_step"],
            "valid_metric": config["valid_metric"],
            "seed": config["seed"],
            "device": str(config["device"]),
        },
        "saved": saved_topk,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out_path)
    print(
        json.dumps(
            {
                "metrics": result["metrics"],
                "epochs_run": result["epochs_run"],
                "train_seconds": round(result["train_seconds"], 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
