"""`ParquetStream`: append rows to a Parquet file in bounded chunks, so a table never sits in memory whole.

Columns are buffered as numpy arrays and written as one row group every `rows_per_group` rows
(pyarrow.parquet.ParquetWriter); memory stays at one buffer whatever the video length. The schema
comes from an empty pandas frame with the final dtypes (categoricals included), so
`pd.read_parquet` returns exactly what `DataFrame.to_parquet(index=False)` of the whole table would.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

DEFAULT_ROWS_PER_GROUP = 65_536


class ParquetStream:
    """Append column chunks to `path`; `close()` writes the last chunk (an empty table when none came).

    `template` is an empty DataFrame with the table's columns and dtypes. Categorical columns are
    given as integer codes into the template's categories.
    """

    def __init__(self, path: str | Path, template: pd.DataFrame, rows_per_group: int = DEFAULT_ROWS_PER_GROUP):
        import pyarrow as pa

        if not isinstance(rows_per_group, int) or rows_per_group < 1:
            raise ValueError(f"rows_per_group must be a positive integer, got {rows_per_group!r}")
        if len(template):
            raise ValueError(f"template must be an empty DataFrame (columns and dtypes only), got {len(template)} rows")
        self.path = Path(path)
        self.template = template
        self.rows_per_group = rows_per_group
        self.schema = pa.Schema.from_pandas(template, preserve_index=False)
        self.rows = 0
        self._buffer: dict[str, list[np.ndarray]] = {c: [] for c in template.columns}
        self._buffered = 0
        self._writer: Any = None

    def write(self, columns: Mapping[str, np.ndarray]) -> None:
        """Append rows: one array per column, all of the same length."""
        lengths = {name: len(columns[name]) for name in self._buffer if name in columns}
        missing = [c for c in self._buffer if c not in columns]
        if missing or len(set(lengths.values())) > 1:
            raise ValueError(f"write needs every column {list(self._buffer)} with equal lengths, got lengths {lengths}")
        n = next(iter(lengths.values()), 0)
        if n == 0:
            return
        for name in self._buffer:
            self._buffer[name].append(np.asarray(columns[name]))
        self._buffered += n
        if self._buffered >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = []
        for field in self.schema:
            parts = self._buffer[field.name]
            values = np.concatenate(parts) if parts else np.zeros(0)
            if pa.types.is_dictionary(field.type):
                categories = self.template[field.name].cat.categories
                arrays.append(pa.DictionaryArray.from_arrays(pa.array(values, type=field.type.index_type),
                                                             pa.array(list(categories), type=field.type.value_type)))
            else:
                arrays.append(pa.array(values, type=field.type))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        self._writer.write_table(table)
        self.rows += self._buffered
        self._buffer = {c: [] for c in self._buffer}
        self._buffered = 0

    def close(self) -> None:
        """Write what is buffered and close the file (an empty table if nothing was written)."""
        if self._buffered or self._writer is None:
            self._flush()
        self._writer.close()

    def abort(self) -> None:
        """Close without finishing; the caller deletes the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._buffer = {c: [] for c in self._buffer}
        self._buffered = 0
