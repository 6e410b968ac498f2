"""Stacking after cross-validation: LightGBM over the out-of-fold class probabilities of several models.

The competition recipe (UER-py's SMP2020-EWECT solution): every model i is cross-validated with
``run_classifier_cv.py --train_features_path DIR/train_features_i.npy`` (out-of-fold probabilities of the
training rows) and its fold models predict the test set with ``inference/run_classifier_cv_infer.py
--test_features_path DIR/test_features_i.npy`` (probabilities averaged over the folds). Then::

    python3 scripts/run_lgb_cv_bayesopt.py --train_path datasets/smp2020-ewect/virus/train.tsv \\
        --train_features_path datasets/smp2020-ewect/virus/ --models_num 2 --folds_num 5 --labels_num 6 \\
        --epochs_num 100 --output_params_path lgb_params.json
    python3 scripts/run_lgb.py --train_path datasets/smp2020-ewect/virus/train.tsv \\
        --test_path datasets/smp2020-ewect/virus/test.tsv \\
        --train_features_path datasets/smp2020-ewect/virus/ --test_features_path datasets/smp2020-ewect/virus/ \\
        --models_num 2 --labels_num 6 --params_path lgb_params.json --prediction_path prediction.tsv

--train_features_path / --test_features_path are prefixes, as in UER-py: file i is
``PREFIX + "train_features_" + i + ".npy"`` (a folder works with or without its trailing slash). The
features of the models are concatenated column-wise, in model order; the labels come from the ``label``
column of --train_path / --test_path (a test file without one is only predicted).

run_lgb_cv_bayesopt.py maximises the mean macro F1 over --folds_num folds (rows dealt by a permutation
seeded by --seed; UER-py cut the file in order, which a label-sorted file turns into one-label folds) with
``bayes_opt`` over UER-py's search space, --init_points random trials then --epochs_num guided ones, and
writes the best parameters as JSON for run_lgb.py's --params_path. Without --params_path run_lgb.py uses
the parameters UER-py's script fixes. Needs ``pip install -r requirements-stacking.txt`` (lightgbm,
bayesian-optimization).
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from typing import Any, Sequence

import numpy as np

from uer.tools.common import (ToolError, check_outputs_are_not_inputs, load_array, require_file, run_tool, text_lines,
                              write_text)
from uer.utils.ranges import int_range, positive_int, seed_int

# run_lgb.py's parameters when no --params_path is given (the values UER-py's script uses).
DEFAULT_PARAMS: dict[str, Any] = {
    "boosting_type": "dart", "feature_fraction": 0.3729, "lambda_l1": 9.874, "lambda_l2": 0.1256,
    "learning_rate": 0.04013, "max_depth": 186, "min_data_in_leaf": 8, "min_gain_to_split": 0.7786,
    "min_sum_hessian_in_leaf": 8.761, "num_leaves": 89,
}
# run_lgb_cv_bayesopt.py's search space (UER-py's bounds); the integer ones are rounded.
SEARCH_SPACE = {"num_leaves": (10, 100), "min_data_in_leaf": (10, 100), "learning_rate": (0.005, 0.5),
                "feature_fraction": (0.001, 0.5), "lambda_l1": (0, 10), "lambda_l2": (0, 10), "max_depth": (3, 200)}
INTEGER_PARAMS = {"num_leaves", "min_data_in_leaf", "max_depth"}


def import_lightgbm():
    try:
        import lightgbm
    except ImportError:
        raise ToolError("stacking needs the package 'lightgbm' (pip install -r requirements-stacking.txt)") from None
    return lightgbm


def import_bayes_opt():
    try:
        import bayes_opt
    except ImportError:
        raise ToolError("the hyper-parameter search needs the package 'bayesian-optimization' "
                        "(pip install -r requirements-stacking.txt)") from None
    return bayes_opt


def feature_paths(prefix: str, kind: str, models_num: int) -> list[str]:
    """UER-py's naming: PREFIX + f"{kind}_features_{i}.npy"; a folder given without a slash gets one."""
    if os.path.isdir(prefix) and not prefix.endswith(("/", os.sep)):
        prefix += os.sep
    return [f"{prefix}{kind}_features_{i}.npy" for i in range(models_num)]


def read_labels(path: str, required: bool = True) -> np.ndarray | None:
    """The ``label`` column of a TSV file with a header (None when absent and not required)."""
    from uer.data.finetune_data import parse_label, read_tsv

    require_file(path, "data file")
    columns, rows = read_tsv(path, required=("label",) if required else ())
    if "label" not in columns:
        return None
    return np.array([parse_label(row[columns["label"]], path, i + 1) for i, row in enumerate(rows)], dtype=np.int64)


def load_features(paths: Sequence[str], rows: int | None, labels_num: int) -> np.ndarray:
    """[rows x models*labels] float64: each file [rows x labels_num], concatenated in model order."""
    parts = []
    for path in paths:
        array = load_array(path)
        if array.ndim != 2 or array.shape[1] != labels_num:
            raise ToolError(f"{path}: features of shape {list(array.shape)}; expected [rows x {labels_num}] "
                            "(--labels_num class probabilities per row)")
        if rows is not None and array.shape[0] != rows:
            raise ToolError(f"{path}: {array.shape[0]} rows of features, but the data file has {rows} rows")
        rows = array.shape[0]
        parts.append(array.astype(np.float64))
    return np.concatenate(parts, axis=1)


def lgb_params(labels_num: int, params: dict[str, Any], seed: int) -> dict[str, Any]:
    out = dict(params)
    for key in INTEGER_PARAMS & set(out):
        out[key] = int(round(out[key]))
    out.update(objective="multiclass", num_class=labels_num, metric="multi_error", verbose=-1, seed=seed)
    return out


def train_booster(features: np.ndarray, labels: np.ndarray, params: dict[str, Any], rounds: int):
    lgb = import_lightgbm()
    return lgb.train(params, lgb.Dataset(features, labels), num_boost_round=rounds)


def cross_validate(features: np.ndarray, labels: np.ndarray, labels_num: int, params: dict[str, Any],
                   folds_num: int, seed: int, rounds: int) -> tuple[float, float]:
    """(mean accuracy, mean macro F1) of LightGBM over ``folds_num`` folds of the rows."""
    from uer.finetune.metrics import classification_report

    folds = np.array_split(np.random.default_rng(seed).permutation(len(labels)), folds_num)
    accs, f1s = [], []
    for held in folds:
        train = np.setdiff1d(np.arange(len(labels)), held)
        booster = train_booster(features[train], labels[train], params, rounds)
        report = classification_report(labels[held], booster.predict(features[held]).argmax(-1), labels_num)
        accs.append(report.accuracy)
        f1s.append(report.macro_f1)
    return float(np.mean(accs)), float(np.mean(f1s))


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train_path", required=True, help="Training set (TSV with a 'label' column).")
    parser.add_argument("--train_features_path", required=True,
                        help="Prefix (or folder) of train_features_0.npy ... (out-of-fold probabilities).")
    parser.add_argument("--models_num", type=positive_int, default=64, help="Number of models whose features are stacked.")
    parser.add_argument("--labels_num", type=positive_int, default=2, help="Number of labels.")
    parser.add_argument("--num_boost_round", type=positive_int, default=120, help="Boosting rounds.")
    parser.add_argument("--seed", type=seed_int, default=7, help="Seed of LightGBM (and of the folds).")


def check_counts(args: argparse.Namespace) -> None:
    if args.models_num < 1 or args.labels_num < 2 or args.num_boost_round < 1:
        raise ToolError("--models_num must be >= 1, --labels_num >= 2 and --num_boost_round >= 1")


def run_lgb_main(argv: Sequence[str] | None = None, prog: str = "run_lgb.py") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="LightGBM stacking over out-of-fold features.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    common_options(parser)
    parser.add_argument("--test_path", required=True, help="Test set (TSV; evaluated when it has a 'label' column).")
    parser.add_argument("--test_features_path", required=True,
                        help="Prefix (or folder) of test_features_0.npy ... (run_classifier_cv_infer.py).")
    parser.add_argument("--params_path", default=None,
                        help="LightGBM parameters as JSON (run_lgb_cv_bayesopt.py --output_params_path).")
    parser.add_argument("--prediction_path", default=None,
                        help="Write the test predictions: TSV with 'label' and 'prob' (space-separated) columns.")

    def body(argv: Sequence[str] | None) -> None:
        from uer.finetune.metrics import classification_report

        args = parser.parse_args(argv)
        check_counts(args)
        train_files = feature_paths(args.train_features_path, "train", args.models_num)
        test_files = feature_paths(args.test_features_path, "test", args.models_num)
        check_outputs_are_not_inputs([("--prediction_path", args.prediction_path)],
                                     [("--train_path", args.train_path), ("--test_path", args.test_path),
                                      ("--params_path", args.params_path)]
                                     + [("features", p) for p in train_files + test_files])
        params = dict(DEFAULT_PARAMS)
        if args.params_path:
            text = "\n".join(line for _, line in text_lines(args.params_path, "parameter file (--params_path)"))
            try:
                params = json.loads(text)
            except json.JSONDecodeError as err:
                raise ToolError(f"invalid JSON ({err.msg})", args.params_path, err.lineno) from None
            if not isinstance(params, dict):
                raise ToolError(f"{args.params_path}: expected a JSON object of LightGBM parameters")
        train_labels = read_labels(args.train_path)
        test_labels = read_labels(args.test_path, required=False)
        if test_labels is None and not args.prediction_path:
            raise ToolError(f"{args.test_path}: no 'label' column to evaluate; give --prediction_path to predict it")
        too_big = [int(x) for x in train_labels if x >= args.labels_num]
        if too_big:
            raise ToolError(f"{args.train_path}: label {too_big[0]} >= --labels_num {args.labels_num}")
        x_train = load_features(train_files, len(train_labels), args.labels_num)
        from uer.data.finetune_data import read_tsv

        x_test = load_features(test_files, len(read_tsv(args.test_path)[1]), args.labels_num)
        booster = train_booster(x_train, train_labels, lgb_params(args.labels_num, params, args.seed),
                                args.num_boost_round)
        probs = booster.predict(x_test)
        pred = probs.argmax(-1)
        print(f"stacked {args.models_num} model(s): {x_train.shape[1]} features, {len(train_labels)} training rows, "
              f"{len(pred)} test rows")
        if test_labels is not None:
            print(classification_report(test_labels, pred, args.labels_num).format())
        if args.prediction_path:
            write_text(args.prediction_path, "label\tprob\n" + "".join(
                f"{int(p)}\t{' '.join(f'{v:.6f}' for v in row)}\n" for p, row in zip(pred, probs)))

    run_tool(prog, body, argv)


def bayesopt_main(argv: Sequence[str] | None = None, prog: str = "run_lgb_cv_bayesopt.py") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Bayesian optimisation of LightGBM's parameters "
                                     "by cross-validation on out-of-fold features.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    common_options(parser)
    parser.add_argument("--folds_num", type=int_range(2), default=5, help="Folds of the cross-validation.")
    parser.add_argument("--epochs_num", type=positive_int, default=100, help="Guided trials (bayes_opt's n_iter).")
    parser.add_argument("--init_points", type=positive_int, default=5, help="Random trials before the guided ones.")
    parser.add_argument("--output_params_path", default=None,
                        help="Write the best parameters as JSON (for run_lgb.py --params_path).")

    def body(argv: Sequence[str] | None) -> None:
        args = parser.parse_args(argv)
        check_counts(args)
        files = feature_paths(args.train_features_path, "train", args.models_num)
        check_outputs_are_not_inputs([("--output_params_path", args.output_params_path)],
                                     [("--train_path", args.train_path)] + [("features", p) for p in files])
        if args.folds_num < 2 or args.epochs_num < 0 or args.init_points < 1:
            raise ToolError("--folds_num must be >= 2, --epochs_num >= 0 and --init_points >= 1")
        labels = read_labels(args.train_path)
        features = load_features(files, len(labels), args.labels_num)
        import_lightgbm()
        bayes_opt = import_bayes_opt()
        trials: list[tuple[float, float, dict[str, Any]]] = []

        def objective(**point: float) -> float:
            params = lgb_params(args.labels_num, point, args.seed)
            acc, f1 = cross_validate(features, labels, args.labels_num, params, args.folds_num, args.seed,
                                     args.num_boost_round)
            trials.append((f1, acc, params))
            shown = ", ".join(f"{k}={params[k]:.4g}" if isinstance(params[k], float) else f"{k}={params[k]}"
                              for k in SEARCH_SPACE)
            print(f"trial {len(trials)}: macro F1 {f1:.4f}, acc {acc:.4f} ({shown})", flush=True)
            return f1

        optimizer = bayes_opt.BayesianOptimization(objective, SEARCH_SPACE, random_state=args.seed, verbose=0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            optimizer.maximize(init_points=args.init_points, n_iter=args.epochs_num)
        best_f1, best_acc, best = max(trials, key=lambda t: t[0])
        chosen = {key: best[key] for key in SEARCH_SPACE}
        print(f"best of {len(trials)} trials: {args.folds_num}-fold macro F1 {best_f1:.4f}, acc {best_acc:.4f}: "
              + json.dumps(chosen))
        if args.output_params_path:
            write_text(args.output_params_path, json.dumps(chosen, indent=2) + "\n")

    run_tool(prog, body, argv)
