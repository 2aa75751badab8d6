"""The one Parquet writer and reader: tidy tables with provenance in the schema metadata."""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io.atomic import atomic_output
from cgpipe.io.provenance import Provenance

_UNITS_KEY = b"cgpipe.units"


def write_table(
    path: str | os.PathLike[str],
    table: pd.DataFrame,
    provenance: Provenance,
    units: dict[str, str] | None = None,
    metadata: dict[bytes, bytes] | None = None,
) -> None:
    """Write ``table`` atomically as Parquet with provenance and column units.

    Parameters
    ----------
    path
        The Parquet file to write.
    table
        The rows; the index is not written.
    provenance
        Where the table came from (schema metadata ``cgpipe.provenance``).
    units
        Column name -> unit, for the columns that have one (schema metadata ``cgpipe.units``).
    metadata
        Further schema metadata of the artifact (``cgpipe.<name>`` keys); read back with
        :func:`read_table_metadata`. It may not replace the provenance or the units.
    """
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    schema_metadata = dict(arrow.schema.metadata or {})
    schema_metadata[keys.PARQUET_PROVENANCE_KEY] = provenance.to_json().encode()
    if units:
        schema_metadata[_UNITS_KEY] = json.dumps(units, sort_keys=True).encode()
    if metadata:
        reserved = {keys.PARQUET_PROVENANCE_KEY, _UNITS_KEY, *schema_metadata}.intersection(
            metadata
        )
        if reserved:
            raise ValueError(f"table metadata may not replace {sorted(reserved)}")
        schema_metadata.update(metadata)
    arrow = arrow.replace_schema_metadata(schema_metadata)
    with atomic_output(path) as tmp:
        pq.write_table(arrow, tmp)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a Parquet table written by :func:`write_table`."""
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"{path}: not a readable Parquet table ({error})") from error


def read_table_metadata(path: str | os.PathLike[str]) -> dict[bytes, bytes]:
    """The schema metadata of a Parquet table (provenance, units and the ``metadata`` given
    to :func:`write_table`), without reading its rows."""
    try:
        return dict(pq.read_schema(path).metadata or {})
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"{path}: not a readable Parquet table ({error})") from error
