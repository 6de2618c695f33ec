"""Peer baseline: Cornac BPR and BiVAE on Microsoft Recommenders' MovieLens-100k protocol.

Runs in the ``.venv-msr`` environment (recommenders 1.2.1, cornac), never in paretorec's own;
it must not import paretorec. It reproduces the Recommenders benchmark notebook
(``examples/06_benchmarks/movielens.ipynb``): the interactions are split with the released
``python_stratified_split(ratio, filter_by, seed)``, the training part goes to
``cornac.data.Dataset.from_uir(..., seed=42)`` in the order the splitter returns it, and the
models use the notebook's settings (BPR: k=200, 200 iterations, lr 0.01, lambda 1e-3; BiVAE:
k=100, encoder [200], tanh, Poisson, 500 epochs, batch 1024, lr 1e-3; both seed 42).

Input ``--interactions``: CSV ``user,item,rating`` in the caller's row order. With
``--expect-train-rows`` (a text file of 0-based row numbers, one a line) the script checks that
the released splitter chose exactly those rows and records the answer (``split_matches``).

Output: the JSON ``--out`` (split sizes, the check, seconds per model, and the
``recommenders.evaluation.python_evaluation`` referee metrics at k=10 with
``relevancy_method="top_k"``), and for each model a float32 score matrix
``<--scores-prefix>.<model>.npy`` of shape [n_users, n_items], rows and columns in the
ascending order of the user and item ids of the whole file; pairs the model cannot score (a
user or item absent from training) are ``-inf``. The caller ranks and scores those with its
own metric code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--interactions", required=True, help="CSV with columns user,item,rating")
    p.add_argument("--out", required=True, help="result JSON path")
    p.add_argument("--scores-prefix", required=True, help="writes PREFIX.<model>.npy")
    p.add_argument("--ratio", type=float, default=0.75)
    p.add_argument("--split-seed", type=int, default=42)
    p.add_argument("--filter-by", default="item", choices=["user", "item"])
    p.add_argument("--expect-train-rows", default=None, help="text file of 0-based row numbers")
    p.add_argument("--models", default="bpr,bivae", help="comma-separated: bpr, bivae")
    p.add_argument("--seed", type=int, default=42, help="model seed (the notebook's SEED)")
    p.add_argument("--bpr-k", type=int, default=200)
    p.add_argument("--bpr-iter", type=int, default=200)
    p.add_argument("--bpr-lr", type=float, default=0.01)
    p.add_argument("--bpr-lambda", type=float, default=1e-3)
    p.add_argument("--bivae-k", type=int, default=100)
    p.add_argument("--bivae-encoder", default="200", help="comma-separated layer widths")
    p.add_argument("--bivae-epochs", type=int, default=500)
    p.add_argument("--bivae-batch-size", type=int, default=1024)
    p.add_argument("--bivae-lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="BPR's OpenMP threads, torch threads")
    return p.parse_args(argv)


def build_model(name: str, args: argparse.Namespace):
    import cornac

    if name == "bpr":
        return cornac.models.BPR(
            k=args.bpr_k,
            max_iter=args.bpr_iter,
            learning_rate=args.bpr_lr,
            lambda_reg=args.bpr_lambda,
            num_threads=args.threads,
            seed=args.seed,
            verbose=False,
        )
    if name == "bivae":
        return cornac.models.BiVAECF(
            k=args.bivae_k,
            encoder_structure=[int(w) for w in args.bivae_encoder.split(",")],
            act_fn="tanh",
            likelihood="pois",
            n_epochs=args.bivae_epochs,
            batch_size=args.bivae_batch_size,
            learning_rate=args.bivae_lr,
            seed=args.seed,
            use_gpu=False,
            verbose=False,
        )
    raise SystemExit(f"unknown model {name!r} (expected bpr or bivae)")


def score_matrix(model, train_set, users, items):
    """Scores in the file's ascending id order; -inf where the model has no index."""
    import numpy as np

    out = np.full((len(users), len(items)), -np.inf, dtype=np.float32)
    item_col = {int(raw): j for j, raw in enumerate(items)}
    known_items = [(int(raw), idx) for raw, idx in train_set.iid_map.items()]
    cols = np.array([item_col[raw] for raw, _ in known_items], dtype=np.int64)
    idxs = np.array([idx for _, idx in known_items], dtype=np.int64)
    for row, raw_user in enumerate(users):
        idx = train_set.uid_map.get(int(raw_user))
        if idx is None:
            continue
        out[row, cols] = np.asarray(model.score(idx), dtype=np.float32)[idxs]
    return out


def referee(train, test, scores, users, items):
    """recommenders' own ranking metrics at k=10 on the model's top-10 (training items removed)."""
    import numpy as np
    import pandas as pd
    from recommenders.evaluation import python_evaluation as ev

    user_row = {int(u): r for r, u in enumerate(users)}
    item_col = {int(i): c for c, i in enumerate(items)}
    masked = scores.copy()
    masked[
        [user_row[int(u)] for u in train["user"]], [item_col[int(i)] for i in train["item"]]
    ] = -np.inf
    top = np.argsort(-masked, axis=1, kind="stable")[:, :10]
    rows = []
    for r, u in enumerate(users):
        for rank, c in enumerate(top[r]):
            if np.isfinite(masked[r, c]):
                rows.append((int(u), int(items[c]), float(10 - rank)))
    pred = pd.DataFrame(rows, columns=["user", "item", "prediction"])
    cols = dict(col_user="user", col_item="item", col_rating="rating", col_prediction="prediction")
    kw = dict(k=10, relevancy_method="top_k", **cols)
    return {
        "ndcg@10": float(ev.ndcg_at_k(test, pred, **kw)),
        "precision@10": float(ev.precision_at_k(test, pred, **kw)),
        "recall@10": float(ev.recall_at_k(test, pred, **kw)),
        "map": float(ev.map(test, pred, **kw)),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import numpy as np
    import pandas as pd

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover - cornac's BiVAE needs it anyway
        pass
    import cornac
    import recommenders
    from recommenders.datasets.python_splitters import python_stratified_split

    frame = pd.read_csv(args.interactions)
    if "rating" not in frame:
        frame["rating"] = 1.0
    frame = frame[["user", "item", "rating"]]
    users = np.unique(frame["user"].to_numpy())
    items = np.unique(frame["item"].to_numpy())
    frame = frame.assign(row=np.arange(len(frame)))
    train, test = python_stratified_split(
        frame,
        ratio=args.ratio,
        filter_by=args.filter_by,
        col_user="user",
        col_item="item",
        seed=args.split_seed,
    )
    result: dict = {
        "recommenders": recommenders.__version__,
        "cornac": cornac.__version__,
        "ratio": args.ratio,
        "split_seed": args.split_seed,
        "filter_by": args.filter_by,
        "n_train": len(train),
        "n_test": len(test),
        "threads": args.threads,
        "models": {},
    }
    if args.expect_train_rows:
        expected = np.loadtxt(args.expect_train_rows, dtype=np.int64, ndmin=1)
        result["split_matches"] = bool(
            np.array_equal(np.sort(expected), np.sort(train["row"].to_numpy()))
        )
        print(f"split matches the caller's: {result['split_matches']}", flush=True)
    train = train.drop(columns="row")
    test = test.drop(columns="row")
    train_set = cornac.data.Dataset.from_uir(train.itertuples(index=False), seed=args.seed)
    for name in [m for m in args.models.split(",") if m]:
        model = build_model(name, args)
        started = time.perf_counter()
        model.fit(train_set)
        seconds = time.perf_counter() - started
        scores = score_matrix(model, train_set, users, items)
        path = f"{args.scores_prefix}.{name}.npy"
        np.save(path, scores)
        metrics = referee(train, test, scores, users, items)
        result["models"][name] = {
            "params": {k: v for k, v in vars(args).items() if k.startswith(name + "_")}
            | {"seed": args.seed},
            "fit_seconds": round(seconds, 3),
            "scores": path,
            "referee_metrics": metrics,
        }
        print(f"{name}: fitted in {seconds:.1f}s, referee nDCG@10 {metrics['ndcg@10']:.6f}")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
