"""A worker's shard: Arrow record batches in, float32 matrices for XGBoost out.

Each batch's rows are split into train and validation (by the hash of their values, or by
the flag the warehouse computed from a split key) and gathered once, straight from the
Arrow columns, into two row-major float32 matrices (the layout XGBoost's dense adapter
reads fastest), kept until both quantile matrices are built. No pandas, no float64, no
file: the table never touches a disk on its way into the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from stageless.training.split import validation_rows

Batch = tuple[np.ndarray, np.ndarray]  # (features [rows, n_features] float32, label float32)


def float32_columns(batch: pa.RecordBatch, count: int) -> list[np.ndarray]:
    """The first COUNT columns as float32 arrays (views of Arrow's buffers where possible;
    NULL becomes NaN)."""
    return [
        batch.column(j).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        for j in range(count)
    ]


def gather_rows(columns: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """The ROWS (indices) of COLUMNS as one C-ordered float32 matrix, in one pass."""
    matrix = np.empty((len(rows), len(columns)), dtype=np.float32)
    everything = len(rows) == len(columns[0])
    for j, values in enumerate(columns):
        if everything:
            matrix[:, j] = values
        else:
            # mode="clip": the indices are valid (from flatnonzero), and the default
            # "raise" mode would write OUT through a temporary copy
            np.take(values, rows, out=matrix[:, j], mode="clip")
    return matrix


@dataclass
class ShardData:
    """What one worker read, split into train and validation batches, with its counts."""

    n_features: int
    validation_fraction: float
    #: the batches carry the warehouse's split flag (a split key) after the label
    flag_in_batch: bool = False
    train: list[Batch] = field(default_factory=list)
    validation: list[Batch] = field(default_factory=list)
    rows_read: int = 0
    rows_dropped_null_target: int = 0
    rows_validation: int = 0

    def add(self, batch: pa.RecordBatch) -> None:
        n = self.n_features
        *features, label = float32_columns(batch, n + 1)
        if self.flag_in_batch:
            is_validation = batch.column(n + 1).to_numpy(zero_copy_only=False)
        else:
            is_validation = validation_rows(features, label, self.validation_fraction)
        has_label = ~np.isnan(label)  # NULL (or NaN) targets cannot train
        self.rows_read += batch.num_rows
        self.rows_dropped_null_target += int(batch.num_rows - has_label.sum())
        for chosen, into in (
            (has_label & ~is_validation, self.train),
            (has_label & is_validation, self.validation),
        ):
            rows = np.flatnonzero(chosen)
            if into is self.validation:
                self.rows_validation += len(rows)
            if len(rows):
                into.append((gather_rows(features, rows), label[rows]))

    def every_nth_train_row(self, step: int) -> list[Batch]:
        """Rows 0, STEP, 2*STEP, ... of the training batches, as new contiguous batches."""
        sample: list[Batch] = []
        position = 0  # index of the current batch's first row within the shard
        for features, label in self.train:
            first = -position % step
            if first < len(label):
                sample.append(
                    (np.ascontiguousarray(features[first::step]), label[first::step].copy())
                )
            position += len(label)
        return sample

    @property
    def rows_train(self) -> int:
        return self.rows_read - self.rows_dropped_null_target - self.rows_validation

    @classmethod
    def read(
        cls,
        batches: Iterable[pa.RecordBatch],
        n_features: int,
        validation_fraction: float,
        flag_in_batch: bool = False,
        on_progress: Callable[[int, float, bool], None] | None = None,
        every_seconds: float = 1.0,
    ) -> ShardData:
        shard = cls(n_features, validation_fraction, flag_in_batch)
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
