"""Arrow columns as numpy arrays, without a copy where the column allows it.

Memory-mapped files and most reads give a column as one chunk, which is viewed; only a
column of several chunks (a copy's poll parts, a table read in pieces) is joined first.
"""

import numpy as np
import pyarrow as pa


def one_array(column):
    """An Arrow array or chunked array as one array."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def as_int64(column):
    """An Arrow column as an int64 array (without a copy where it already is one)."""
    return one_array(column).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def as_bool(column):
    """An Arrow column of booleans, or of 0/1 integers, as a bool array. One byte each
    (`uint8`, as the columnar copy stores them) is viewed without a copy."""
    column = one_array(column)
    if column.type == pa.uint8():
        return column.to_numpy().view(bool)
    if pa.types.is_boolean(column.type):
        return column.to_numpy(zero_copy_only=False)
    return column.to_numpy(zero_copy_only=False) != 0
