"""The train/validation split: which rows validate, decided by each row alone.

With ``--split-key`` the warehouse hashes that column as it reads (see
:func:`stageless.training.plan.worker_select`). Without one, stageless hashes the values
it reads itself, here: MurmurHash3 (x86, 32-bit, seed 0) of the row's features and then
its target, each as a little-endian float32, with -0.0 read as 0.0 and every NaN or
NULL as the one canonical NaN. A row validates when that hash modulo ``SPLIT_BUCKETS``
falls below ``fraction * SPLIT_BUCKETS``.

So the split depends on nothing but the row's values: not on the number of workers, the
shard a row landed in, the run, or even the warehouse (float and integer columns read as
the same float32 in DuckDB, PostgreSQL and Snowflake; a decimal may round differently),
and identical rows land on the same side.
It costs the client ~20 ms per million rows, where a hash in SQL costs the server more
than a third of the time it takes to send the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The split hashes each row into this many buckets; validation takes the lowest ones.
SPLIT_BUCKETS = 1_000_000

_C1 = np.uint32(0xCC9E2D51)
_C2 = np.uint32(0x1B873593)
_CANONICAL_NAN = np.float32(np.nan)


def validation_threshold(fraction: float) -> int:
    """Rows whose bucket is below this validate."""
    return round(fraction * SPLIT_BUCKETS)


def _rotate_left(value: np.ndarray, bits: int, scratch: np.ndarray) -> None:
    np.left_shift(value, np.uint32(bits), out=scratch)
    np.right_shift(value, np.uint32(32 - bits), out=value)
    np.bitwise_or(value, scratch, out=value)


def murmur3_rows(columns: Sequence[np.ndarray]) -> np.ndarray:
    """MurmurHash3_x86_32 (seed 0) of each row's float32 values, the row being one value
    from each of COLUMNS in order; computed a column at a time over all rows."""
    rows = len(columns[0])
    h = np.zeros(rows, dtype=np.uint32)
    k = np.empty(rows, dtype=np.uint32)
    scratch = np.empty(rows, dtype=np.uint32)
    for values in columns:
        canonical = values + np.float32(0.0)  # a contiguous copy, and -0.0 becomes 0.0
        canonical[np.isnan(canonical)] = _CANONICAL_NAN
        np.multiply(canonical.view(np.uint32), _C1, out=k)
        _rotate_left(k, 15, scratch)
        np.multiply(k, _C2, out=k)
        np.bitwise_xor(h, k, out=h)
        _rotate_left(h, 13, scratch)
        np.multiply(h, np.uint32(5), out=h)
        np.add(h, np.uint32(0xE6546B64), out=h)
    np.bitwise_xor(h, np.uint32(4 * len(columns)), out=h)  # the length in bytes
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        np.bitwise_xor(h, h >> np.uint32(shift), out=h)
        np.multiply(h, np.uint32(multiplier), out=h)
    np.bitwise_xor(h, h >> np.uint32(16), out=h)
    return h


def validation_rows(
    features: Sequence[np.ndarray], label: np.ndarray, fraction: float
) -> np.ndarray:
    """A boolean mask: True for the rows that validate. FEATURES are float32 columns."""
    threshold = validation_threshold(fraction)
    if threshold == 0:
        return np.zeros(len(label), dtype=bool)
    return murmur3_rows([*features, label]) % np.uint32(SPLIT_BUCKETS) < threshold
