"""The one Parquet writer and reader: tidy tables with provenance in the schema metadata."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io.atomic import atomic_output
from cgpipe.io.provenance import Provenance


def write_table(
    path: str | os.PathLike[str],
    table: pd.DataFrame,
    provenance: Provenance,
    units: dict[str, str] | None = None,
) -> None:
    """Write ``table`` atomically as Parquet with provenance and column units."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata[keys.PARQUET_PROVENANCE_KEY] = provenance.to_json().encode()
    if units:
        import json

        metadata[b"cgpipe.units"] = json.dumps(units, sort_keys=True).encode()
    arrow = arrow.replace_schema_metadata(metadata)
    with atomic_output(path) as tmp:
        pq.write_table(arrow, tmp)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a Parquet table written by :func:`write_table`."""
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"{path}: not a readable Parquet table ({error})") from error
