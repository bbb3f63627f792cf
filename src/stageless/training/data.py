"""A worker's shard: Arrow record batches in, float32 matrices for XGBoost out.

Each batch is converted once into a row-major float32 matrix (the layout XGBoost's dense
adapter reads fastest), split into train and validation rows by the flag the warehouse
computed, and kept until both quantile matrices are built. No pandas, no float64, no
file: the table never touches a disk on its way into the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import xgboost as xgb

Batch = tuple[np.ndarray, np.ndarray]  # (features [rows, n_features] float32, label float32)


def batch_to_matrix(batch: pa.RecordBatch, n_features: int) -> np.ndarray:
    """The first N_FEATURES columns as a C-ordered float32 matrix; NULL becomes NaN."""
    matrix = np.empty((batch.num_rows, n_features), dtype=np.float32)
    for j in range(n_features):
        matrix[:, j] = batch.column(j).to_numpy(zero_copy_only=False)
    return matrix


@dataclass
class ShardData:
    """What one worker read, split into train and validation batches, with its counts."""

    n_features: int
    train: list[Batch] = field(default_factory=list)
    validation: list[Batch] = field(default_factory=list)
    rows_read: int = 0
    rows_dropped_null_target: int = 0
    rows_validation: int = 0

    def add(self, batch: pa.RecordBatch) -> None:
        n = self.n_features
        features = batch_to_matrix(batch, n)
        label = batch.column(n).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        is_validation = batch.column(n + 1).to_numpy(zero_copy_only=False)
        has_label = ~np.isnan(label)  # NULL (or NaN) targets cannot train
        self.rows_read += batch.num_rows
        self.rows_dropped_null_target += int(batch.num_rows - has_label.sum())
        for rows, into in (
            (has_label & ~is_validation, self.train),
            (has_label & is_validation, self.validation),
        ):
            count = int(rows.sum())
            if into is self.validation:
                self.rows_validation += count
            if count == batch.num_rows:
                into.append((features, label))
            elif count:
                into.append((features[rows], label[rows]))

    @property
    def rows_train(self) -> int:
        return self.rows_read - self.rows_dropped_null_target - self.rows_validation

    @classmethod
    def read(
        cls,
        batches: Iterable[pa.RecordBatch],
        n_features: int,
        on_progress: Callable[[int, float, bool], None] | None = None,
        every_seconds: float = 1.0,
    ) -> ShardData:
        shard = cls(n_features)
        start = last = time.perf_counter()
        for batch in batches:
            shard.add(batch)
            now = time.perf_counter()
            if on_progress and now - last >= every_seconds:
                on_progress(shard.rows_read, now - start, False)
                last = now
        if on_progress:
            on_progress(shard.rows_read, time.perf_counter() - start, True)
        return shard


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
