"""Artifact I/O shared by every stage: one trajectory reader and writer, one table
writer, one checkpoint reader, atomic writes and provenance."""

from cgpipe.io.atomic import atomic_output
from cgpipe.io.checkpoint import read_checkpoint, trained_temperature
from cgpipe.io.provenance import Provenance, read_provenance, sha256sum
from cgpipe.io.structure import read_structure, write_structure
from cgpipe.io.tables import read_table, read_table_metadata, write_table
from cgpipe.io.trajectory import (
    TrajectoryData,
    TrajectoryWriter,
    read_trajectory,
    write_trajectory,
)

__all__ = [
    "Provenance",
    "TrajectoryData",
    "TrajectoryWriter",
    "atomic_output",
    "read_checkpoint",
    "trained_temperature",
    "read_provenance",
    "read_structure",
    "read_table",
    "read_table_metadata",
    "read_trajectory",
    "sha256sum",
    "write_structure",
    "write_table",
    "write_trajectory",
]
