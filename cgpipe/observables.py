"""Observables of CG and all-atom trajectories, shared by the stages that need them
(the simulate stage picks start states with them, the evaluate stage compares
ensembles on them).

The two collective variables on which CG and reference ensembles are compared:

phi/psi of the first residue with both dihedrals where the CG topology keeps the
backbone atoms (backbone map); otherwise (C-alpha map) the radius of gyration and the
end-to-end distance of the beads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import mdtraj as md
import numpy as np

from cgpipe import keys
from cgpipe.io import TrajectoryData

ANGLE_RANGE = ((-np.pi, np.pi), (-np.pi, np.pi))  # rad, the range of two dihedrals


def phi_psi(data: TrajectoryData) -> np.ndarray:
    """[n_frames, 2] (phi, psi) in rad of the first residue with both angles defined.

    Works on all-atom and on CG topologies that keep the backbone atoms' names.
    """
    trajectory = data.to_mdtraj()
    phi_atoms, phi = md.compute_phi(trajectory)
    psi_atoms, psi = md.compute_psi(trajectory)
    if not len(phi_atoms) or not len(psi_atoms):
        raise ValueError("the topology has no phi/psi dihedral (backbone atoms C, N, CA, C, N)")
    # phi of residue i is (C[i-1], N[i], CA[i], C[i]);
    # psi of residue i is (N[i], CA[i], C[i], N[i+1]).
    phi_by_ca = {int(a[2]): k for k, a in enumerate(phi_atoms)}
    for k, atoms in enumerate(psi_atoms):
        if int(atoms[1]) in phi_by_ca:
            return np.stack([phi[:, phi_by_ca[int(atoms[1])]], psi[:, k]], axis=1)
    raise ValueError("no residue has both phi and psi defined")


def radius_of_gyration_and_end_to_end(data: TrajectoryData) -> np.ndarray:
    """[n_frames, 2]: radius of gyration of the beads (unweighted) and the distance from
    the first bead to the last, both in nm."""
    x = data.coordinates.astype(np.float64)
    centred = x - x.mean(axis=1, keepdims=True)
    rg = np.sqrt((centred**2).sum(axis=-1).mean(axis=1))
    end_to_end = np.linalg.norm(x[:, -1] - x[:, 0], axis=-1)
    return np.stack([rg, end_to_end], axis=1)


@dataclasses.dataclass(frozen=True)
class Projection:
    """Two collective variables on which the CG and reference ensembles are compared.

    Attributes
    ----------
    name
        ``"phi_psi"`` or ``"rg_end_to_end"``.
    compute
        TrajectoryData -> [n_frames, 2] values in the variables' units (rad or nm).
    ranges
        The histogram's range of each variable, in the variables' units.
    labels
        Axis labels, in plotted units.
    scale
        Factor from the variables' units to plotted units (rad -> deg, or 1).
    metrics
        Metric names: JS, KL(reference || CG) and KL(CG || reference); their noise
        floors add :data:`cgpipe.keys.FLOOR_SUFFIX`.
    title
        What the free-energy plot shows, in words.
    ticks
        Plotted tick positions on both axes, or ``None`` for matplotlib's choice.
    periodic
        Whether the variables are angles (rad, period 2 pi).
    """

    name: str
    compute: Callable[[TrajectoryData], np.ndarray]
    ranges: tuple[tuple[float, float], tuple[float, float]]
    labels: tuple[str, str]
    scale: float
    metrics: tuple[str, str, str]  # JS, KL(reference || CG), KL(CG || reference)
    title: str
    ticks: tuple[int, ...] | None = None
    periodic: bool = False

    def smooth(self, values: np.ndarray) -> np.ndarray:
        """[n, d] values without jumps: cos and sin of angles (a jump at ±pi is no change
        of state), the values themselves otherwise; for autocorrelation times."""
        if self.periodic:
            return np.concatenate([np.cos(values), np.sin(values)], axis=1)
        return values


def choose_projection(reference: TrajectoryData) -> Projection:
    """phi/psi where the CG topology keeps the backbone dihedrals (backbone map), else
    radius of gyration and end-to-end distance over the reference's range plus 25 %."""
    try:
        phi_psi(TrajectoryData(reference.topology, reference.coordinates[:1], [0.0]))
    except ValueError:
        values = radius_of_gyration_and_end_to_end(reference)
        low, high = values.min(axis=0), values.max(axis=0)
        pad = 0.25 * np.maximum(high - low, 1e-3)
        low, high = np.maximum(low - pad, 0.0), high + pad
        ranges = ((float(low[0]), float(high[0])), (float(low[1]), float(high[1])))
        return Projection(
            "rg_end_to_end",
            radius_of_gyration_and_end_to_end,
            ranges,
            ("radius of gyration (nm)", "end-to-end distance (nm)"),
            1.0,
            (keys.JS_RG_END_TO_END, keys.KL_RG_END_TO_END, keys.KL_REVERSE_RG_END_TO_END),
            "radius of gyration / end-to-end",
        )
    return Projection(
        "phi_psi",
        phi_psi,
        ANGLE_RANGE,
        ("φ (deg)", "ψ (deg)"),
        180.0 / np.pi,
        (keys.JS_PHI_PSI, keys.KL_PHI_PSI, keys.KL_REVERSE_PHI_PSI),
        "φ/ψ",
        (-180, -90, 0, 90, 180),
        periodic=True,
    )
