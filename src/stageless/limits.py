"""Sizes and limits shared by several modules (kept free of heavy imports)."""

#: Rows per Arrow record batch when streaming from a warehouse: big enough that per-batch
#: Python overhead vanishes, small enough that one batch is a few MiB.
DEFAULT_BATCH_ROWS = 131_072

#: The most local worker processes one `stageless train` starts.
MAX_WORKERS = 64
