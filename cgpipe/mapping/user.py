"""A user's map: a table of (bead, atom, weight) rows read from a file and validated.

The configuration names each user map and its file (``mapping.files: {name: path}``);
the name is then a value of the ``{mapping}`` wildcard like a registered method's. The
file is CSV (``.csv``), TSV (``.tsv``, ``.txt``) or Parquet (``.parquet``) with one row
per (bead, atom) pair:

``bead``
    Bead index, 0 … n_beads - 1, every bead present (the bead order of the CG topology).
``atom``
    Atom index (0-based) in the all-atom topology.
``weight``
    The atom's coordinate weight in the bead (a row of Xi): non-negative, summing to 1 per
    bead. A row with weight 0 still puts the atom's force in the bead.
``force_weight`` (optional)
    The atom's force weight (a row of Xi_f); 1 on every row when absent (aggregation).
``bead_name`` (optional)
    The bead's name, also its type (beads of one name are interchangeable); without it a
    bead is named ``B<n>`` and typed by its Hill formula.

Beads are bonded where an atomic bond joins their atoms. Every error names the file and
the offending row, bead or atom; nothing is built from a file that fails a check.
"""

from __future__ import annotations

import os
from pathlib import Path

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData
from cgpipe.mapping.base import Mapping, MappingMethod
from cgpipe.mapping.groups import assemble, atom_masses, bonds_between_groups, hill_formula

REQUIRED = (keys.BEAD, keys.ATOM, keys.WEIGHT)
OPTIONAL = (keys.FORCE_WEIGHT, keys.BEAD_NAME)


def read_map_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows of a user's map file (columns as read), or an input error naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: the map file does not exist")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path, comment="#")
        if path.suffix in (".tsv", ".txt"):
            return pd.read_csv(path, sep="\t", comment="#")
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: cannot read the map file: {error}") from error
    raise InputError(f"{path}: a map file is .csv, .tsv, .txt or .parquet")


def validate_map_table(table: pd.DataFrame, n_atoms: int, source: str) -> pd.DataFrame:
    """The table with integer beads and atoms and float weights, or an input error naming
    ``source`` and the first offending row (1-based, as a spreadsheet counts data rows),
    bead or atom."""
    missing = [column for column in REQUIRED if column not in table.columns]
    if missing:
        raise InputError(f"{source}: missing columns {missing}; a map file has {list(REQUIRED)}")
    unknown = sorted(set(table.columns) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise InputError(f"{source}: unknown columns {unknown}; known: {[*REQUIRED, *OPTIONAL]}")
    if table.empty:
        raise InputError(f"{source}: the map file has no rows")
    table = table.reset_index(drop=True).copy()
    for column in (keys.BEAD, keys.ATOM):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() | (values % 1 != 0).to_numpy())
        if len(bad):
            raise InputError(
                f"{source}: row {bad[0] + 1}: {column} {table[column].iloc[bad[0]]!r} is not an "
                "integer"
            )
        table[column] = values.astype(np.int64)
    for column in (keys.WEIGHT, keys.FORCE_WEIGHT):
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() | (values < 0).to_numpy())
        if len(bad):
            raise InputError(
                f"{source}: row {bad[0] + 1}: {column} {table[column].iloc[bad[0]]!r} is not a "
                "non-negative number"
            )
        table[column] = values.astype(np.float64)
    outside = np.flatnonzero((table[keys.ATOM] < 0) | (table[keys.ATOM] >= n_atoms))
    if len(outside):
        row = outside[0]
        raise InputError(
            f"{source}: row {row + 1}: atom {table[keys.ATOM].iloc[row]} is outside the "
            f"topology's atoms 0..{n_atoms - 1}"
        )
    repeated = np.flatnonzero(table.duplicated([keys.BEAD, keys.ATOM]).to_numpy())
    if len(repeated):
        row = repeated[0]
        raise InputError(
            f"{source}: row {row + 1}: atom {table[keys.ATOM].iloc[row]} appears twice in bead "
            f"{table[keys.BEAD].iloc[row]}"
        )
    beads = sorted(set(table[keys.BEAD]))
    if beads != list(range(len(beads))):
        absent = sorted(set(range(max(beads) + 1)) - set(beads))
        raise InputError(
            f"{source}: beads must be numbered 0..n_beads - 1; "
            + (f"bead {absent[0]} has no row" if absent else f"bead {beads[0]} is negative")
        )
    if len(beads) < 2:
        raise InputError(f"{source}: the map has {len(beads)} bead; need at least 2")
    sums = table.groupby(keys.BEAD)[keys.WEIGHT].sum()
    off = sums[~np.isclose(sums, 1.0, rtol=0.0, atol=1e-6)]
    if len(off):
        raise InputError(
            f"{source}: the weights of bead {off.index[0]} sum to {off.iloc[0]:.6g}, not 1 "
            "(a bead sits at a weighted mean of its atoms)"
        )
    if keys.BEAD_NAME in table.columns:
        names = table.groupby(keys.BEAD)[keys.BEAD_NAME].nunique()
        if (names > 1).any():
            raise InputError(f"{source}: bead {names.index[names > 1][0]} has two bead names")
    return table


class UserMap(MappingMethod):
    """A map read from a file (not registered: the configuration names each user map).

    Parameters
    ----------
    name
        The map's name (a value of the ``{mapping}`` wildcard).
    path
        The map file.
    """

    def __init__(self, *, name: str, path: str | os.PathLike[str]) -> None:
        self.name = name  # an instance's name: user maps are not registered classes
        self.path = Path(path)

    def build(
        self, topology: md.Topology, training: TrajectoryData | None = None, *, seed: int = 0
    ) -> Mapping:
        source = f"{self.path} (mapping {self.name!r})"
        table = validate_map_table(read_map_table(self.path), topology.n_atoms, source)
        atoms = list(topology.atoms)
        masses = atom_masses(topology)
        groups, weights, force_weights, names, types, anchors = [], [], [], [], [], []
        for bead, rows in table.groupby(keys.BEAD, sort=True):
            group = rows[keys.ATOM].to_list()
            weight = rows[keys.WEIGHT].to_numpy()
            groups.append(group)
            weights.append(weight)
            force_weights.append(
                rows[keys.FORCE_WEIGHT].to_numpy()
                if keys.FORCE_WEIGHT in rows
                else np.ones(len(group))
            )
            name = str(rows[keys.BEAD_NAME].iloc[0]) if keys.BEAD_NAME in rows else f"B{bead}"
            names.append(name)
            types.append(
                name if keys.BEAD_NAME in rows else hill_formula([atoms[a] for a in group])
            )
            # The anchor (residue, element): the heaviest atom among those with most weight.
            order = np.lexsort((masses[group], weight))  # by weight, then mass
            anchors.append(group[int(order[-1])])
        try:
            return assemble(
                self.name, topology, groups, weights, names, types, anchors,
                bonds_between_groups(topology, groups), force_weights,
            )  # fmt: skip
        except ValueError as error:  # Xi_f Xi^T != I: force weights that do not match
            raise InputError(f"{source}: {error}") from error
