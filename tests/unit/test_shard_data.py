"""ShardData: Arrow batches into train and validation float32 matrices."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from stageless.training.data import ShardData
from stageless.training.split import validation_rows


def batch(x: list, z: list, label: list, flag: list | None = None) -> pa.RecordBatch:
    arrays = [pa.array(x, pa.float32()), pa.array(z, pa.float32()), pa.array(label, pa.float32())]
    names = ["x", "z", "label"]
    if flag is not None:
        arrays.append(pa.array(flag, pa.bool_()))
        names.append("flag")
    return pa.record_batch(arrays, names=names)


def rows_of(batches: list) -> list[tuple[float, ...]]:
    return [
        tuple(float(v) for v in (*f, y))
        for m, labels in batches
        for f, y in zip(m, labels, strict=True)
    ]


def test_rows_are_split_by_their_hash_and_null_targets_dropped() -> None:
    n = 2000
    x = [float(i) for i in range(n)]
    z = [None if i % 10 == 0 else i / 7 for i in range(n)]
    label = [None if i % 100 == 0 else float(i % 13) for i in range(n)]
    shard = ShardData(2, validation_fraction=0.3)
    shard.add(batch(x[:1500], z[:1500], label[:1500]))
    shard.add(batch(x[1500:], z[1500:], label[1500:]))

    assert shard.rows_read == n
    assert shard.rows_dropped_null_target == 20
    assert shard.rows_train + shard.rows_validation == n - 20
    assert 0.25 < shard.rows_validation / (n - 20) < 0.35
    for matrix, labels in shard.train + shard.validation:
        assert matrix.dtype == np.float32 and matrix.flags.c_contiguous
        assert labels.dtype == np.float32 and not np.isnan(labels).any()
    # Every labelled row lands once, values intact (NULL feature -> NaN), on its hash's side.
    features = [np.array(x, np.float32), np.array(z, np.float32)]
    target = np.array(label, np.float32)  # None -> nan
    wanted = validation_rows(features, target, 0.3)
    expect = {True: [], False: []}
    for i in range(n):
        if label[i] is not None:
            expect[bool(wanted[i])].append((x[i], np.float32(z[i] or np.nan), label[i]))

    def same(got: list, want: list) -> bool:
        return np.allclose(np.array(got, np.float64), np.array(want, np.float64), equal_nan=True)

    assert same(rows_of(shard.train), expect[False])
    assert same(rows_of(shard.validation), expect[True])


def test_a_split_key_flag_from_the_warehouse_decides_instead() -> None:
    shard = ShardData(2, validation_fraction=0.25, flag_in_batch=True)
    shard.add(batch([1, 2, 3, 4], [5, 6, 7, 8], [0, 1, 0, 1], [True, False, False, True]))
    assert rows_of(shard.validation) == [(1.0, 5.0, 0.0), (4.0, 8.0, 1.0)]
    assert rows_of(shard.train) == [(2.0, 6.0, 1.0), (3.0, 7.0, 0.0)]


def test_every_nth_train_row_counts_across_batches() -> None:
    shard = ShardData(2, validation_fraction=0.0)
    shard.add(batch(list(range(5)), [0] * 5, [0] * 5))
    shard.add(batch(list(range(5, 12)), [0] * 7, [0] * 7))
    sample = shard.every_nth_train_row(3)
    assert [float(r[0]) for r in rows_of(sample)] == [0.0, 3.0, 6.0, 9.0]
    assert all(m.flags.c_contiguous for m, _ in sample)
