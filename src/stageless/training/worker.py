"""One training worker: read its shard, check exactly-once, train, and (rank 0) save.

Runs in the caller's process for ``--workers 1``, and in each worker process that
:mod:`stageless.training.worker_process` starts for N local workers (or SageMaker hosts).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import xgboost as xgb
from xgboost import collective

from stageless.errors import DataError, UserError
from stageless.manifest import DataProvenance, Manifest, software_versions, utc_now
from stageless.training.data import Batch, ShardData
from stageless.training.events import EventSink
from stageless.training.hyperparams import SKETCH_ROWS, booster_params
from stageless.training.plan import TrainPlan

# An empty shard is legitimate (a tiny table, many workers); XGBoost warns about it.
warnings.filterwarnings("ignore", message=r".*Empty dataset at worker.*")


class BatchIter(xgb.DataIter):
    """Feeds cached batches to XGBoost, which walks them more than once to sketch and bin.

    An empty shard still yields one empty batch: every worker must take part in building
    the quantile matrix, or the others would wait for it forever.
    """

    def __init__(
        self, batches: list[Batch], feature_names: list[str], feature_types: list[str]
    ) -> None:
        n = len(feature_names)
        empty = (np.empty((0, n), dtype=np.float32), np.empty(0, dtype=np.float32))
        self._batches = batches or [empty]
        self._names = feature_names
        self._types = feature_types
        self._next = 0
        super().__init__(release_data=True)

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._next == len(self._batches):
            return False
        features, label = self._batches[self._next]
        input_data(data=features, label=label, feature_names=self._names, feature_types=self._types)
        self._next += 1
        return True

    def reset(self) -> None:
        self._next = 0


class RoundProgress(xgb.callback.TrainingCallback):
    """Emits the eval metrics every few rounds (rank 0 only, metrics are global)."""

    def __init__(self, sink: EventSink, num_round: int) -> None:
        super().__init__()
        self.sink = sink
        self.num_round = num_round
        self.every = max(1, num_round // 10)

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        done = epoch + 1
        if done % self.every == 0 or done == 1 or done == self.num_round:
            metrics = {
                f"{data}-{metric}": float(values[-1])
                for data, by_metric in evals_log.items()
                for metric, values in by_metric.items()
            }
            self.sink.emit("round", round=done, num_round=self.num_round, metrics=metrics)
        return False


def parse_eval(text: str) -> dict[str, float]:
    """``"[0]\ttrain-rmse:0.47\ttrain-mae:0.33"`` -> ``{"rmse": 0.47, "mae": 0.33}``."""
    metrics: dict[str, float] = {}
    for field in text.split("\t")[1:]:
        key, _, value = field.rpartition(":")
        metrics[key.split("-", 1)[1]] = float(value)
    return metrics


def _global_counts(shard: ShardData, rank: int, workers: int) -> np.ndarray:
    """Sum every worker's counts through the collective: [per-worker rows..., dropped, train,
    validation]. Without a collective (one worker) this is the worker's own counts."""
    local = np.zeros(workers + 3, dtype=np.int64)
    local[rank] = shard.rows_read - shard.rows_dropped_null_target
    local[workers:] = [shard.rows_dropped_null_target, shard.rows_train, shard.rows_validation]
    if collective.is_distributed():
        return collective.allreduce(local, collective.Op.SUM)
    return local


def _quantised_training_data(
    plan: TrainPlan, shard: ShardData, hp: dict[str, Any], rows_train: int
) -> xgb.QuantileDMatrix:
    """The training rows, binned. The bin boundaries come from a systematic sample of
    ``sketch_rows`` training rows across all workers (merged through the collective)
    when there are more rows than that; every worker then bins all its rows with them."""
    max_bin = hp.get("max_bin", 256)
    reference = None
    if 0 < hp["sketch_rows"] < rows_train:
        step = -(-rows_train // hp["sketch_rows"])  # about sketch_rows rows in all
        sample = shard.every_nth_train_row(step)
        reference = xgb.QuantileDMatrix(
            BatchIter(sample, plan.features, plan.feature_types),
            max_bin=max_bin,
            nthread=plan.nthread,
        )
    return xgb.QuantileDMatrix(
        BatchIter(shard.train, plan.features, plan.feature_types),
        max_bin=max_bin,
        ref=reference,
        nthread=plan.nthread,
    )


#: Saves the booster bytes and manifest somewhere; returns where (for the "saved" event).
SaveModel = Callable[[bytes, Manifest], str]


def train_on_shard(
    plan: TrainPlan,
    rank: int,
    shard: ShardData,
    sink: EventSink,
    save: SaveModel | None = None,
) -> Manifest | None:
    """Check exactly-once, build the quantile matrices, train; rank 0 saves the model.

    By default rank 0 writes plan.output/model.tar.gz (a directory or s3://bucket/prefix);
    SAVE replaces that (the SageMaker container writes loose files instead).
    """
    counts = _global_counts(shard, rank, plan.workers)
    per_worker = [int(c) for c in counts[: plan.workers]]
    dropped, rows_train, rows_validation = (int(c) for c in counts[plan.workers :])
    rows_read = sum(per_worker) + dropped
    if rows_read != plan.rows_expected:
        raise DataError(
            f"exactly-once check failed: the workers read {rows_read:,} rows but the "
            f"source had {plan.rows_expected:,} when planned; was it changed during the run?"
        )

    if rows_train == 0:
        raise UserError(
            "no rows left to train on: every row with a target fell into validation "
            "(the split hashes each row's values, so a table of few distinct rows can do "
            "that); lower --validation-fraction or give a --split-key"
        )
    hp = {**plan.hyperparameters, "tree_method": plan.hyperparameters.get("tree_method", "hist")}
    hp.setdefault("sketch_rows", SKETCH_ROWS)
    dtrain = _quantised_training_data(plan, shard, hp, rows_train)
    dvalid = None
    if plan.validation_fraction > 0:
        dvalid = xgb.QuantileDMatrix(
            BatchIter(shard.validation, plan.features, plan.feature_types),
            ref=dtrain,
            nthread=plan.nthread,
        )
    shard.train.clear()  # the quantised matrices hold what training needs
    shard.validation.clear()

    # Watch the validation set each round; the training set's metric is computed once at
    # the end: evaluated every round it costs a quarter of distributed training time.
    watched = [(dvalid, "validation")] if dvalid is not None else [(dtrain, "train")]
    history: dict[str, Any] = {}
    early = hp.get("early_stopping_rounds") if dvalid is not None else None
    booster = xgb.train(
        booster_params(hp, plan.nthread),
        dtrain,
        num_boost_round=hp["num_round"],
        evals=watched,
        evals_result=history,
        early_stopping_rounds=early,
        verbose_eval=False,
        callbacks=[RoundProgress(sink, hp["num_round"])] if rank == 0 else None,
    )
    best = booster.best_iteration if early else hp["num_round"] - 1
    if early:
        booster = booster[: best + 1]
    final = {
        name: {metric: float(values[best]) for metric, values in by_metric.items()}
        for name, by_metric in history.items()
    }
    # Every rank takes part: the evaluation is a collective operation.
    train_metrics = final.get("train") or parse_eval(booster.eval_set([(dtrain, "train")]))
    if rank != 0:
        return None
    metrics = {"train": train_metrics, "validation": final.get("validation", {})}
    manifest = Manifest(
        target=plan.target,
        features=plan.features,
        feature_types=plan.feature_types,
        objective=hp["objective"],
        hyperparameters=hp,
        metrics=metrics,
        data=DataProvenance(
            source=plan.source,
            query=plan.query,
            snapshot=plan.snapshot,
            rows_total=rows_read,
            rows_dropped_null_target=dropped,
            rows_per_worker=per_worker,
            rows_train=rows_train,
            rows_validation=rows_validation,
            shard_strategy=plan.tasks[0].strategy,
            split={
                "method": "hash of the split key"
                if plan.split_key
                else "MurmurHash3 of the row's float32 feature and target values",
                "key": plan.split_key,
                "validation_fraction": plan.validation_fraction,
            },
        ),
        workers=plan.workers,
        versions=software_versions(),
        created_at=utc_now(),
    )
    model = bytes(booster.save_raw("json"))
    if save is None:
        from stageless.storage import save_archive

        where = save_archive(plan.output, model, manifest)
    else:
        where = save(model, manifest)
    sink.emit("saved", path=where)
    return manifest
