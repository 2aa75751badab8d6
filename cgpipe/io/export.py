"""Export of cgpipe trajectories to the formats other programs read: PDB and DCD.

Positions leave in Å, as both formats want (mdtraj converts from nm); the DCD gets its
topology beside it as a one-frame PDB. A backmapped trajectory holds several samples per
CG frame; its table (``backmap.parquet`` beside it) says which, and ``sample`` keeps one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cgpipe import keys
from cgpipe.data import subset
from cgpipe.errors import InputError
from cgpipe.io.tables import read_table
from cgpipe.io.trajectory import read_trajectory
from cgpipe.paths import BACKMAP_TABLE_FILE


def export_trajectory(
    trajectory: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    sample: int | None = None,
) -> Path:
    """Write ``trajectory`` to ``output`` (.pdb or .dcd, by its suffix); with ``sample``,
    only that sample of each CG frame. Returns the file written."""
    trajectory, output = Path(trajectory), Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".pdb", ".dcd"):
        raise InputError(f"{output}: export writes .pdb or .dcd, not {suffix or 'no suffix'}")
    data = read_trajectory(trajectory)
    if sample is not None:
        table_path = trajectory.with_name(BACKMAP_TABLE_FILE)
        if not table_path.is_file():
            raise InputError(f"{trajectory}: no {BACKMAP_TABLE_FILE} beside it to pick samples by")
        samples = read_table(table_path)[keys.SAMPLE].to_numpy()
        if len(samples) != data.n_frames:
            raise InputError(
                f"{table_path} has {len(samples)} rows, {trajectory} {data.n_frames} frames"
            )
        if sample not in set(samples.tolist()):
            raise InputError(f"{trajectory}: no sample {sample} (samples {sorted(set(samples))})")
        data = subset(data, np.flatnonzero(samples == sample))
    frames = data.to_mdtraj()
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdb":
        frames.save_pdb(str(output))
    else:
        frames.save_dcd(str(output))
        frames[:1].save_pdb(str(output.with_suffix(".pdb")))
    return output
