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
from cgpipe.bonded import angle_triples, dihedral_quadruples, improper_quadruples
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
        Metric names: JS, KL(reference || CG), KL(CG || reference) and the free-energy
        RMSE (kT); their noise floors add :data:`cgpipe.keys.FLOOR_SUFFIX`, their echo
        baselines :data:`cgpipe.keys.ECHO_SUFFIX`.
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
    metrics: tuple[str, str, str, str]  # JS, KL(ref || CG), KL(CG || ref), FE RMSE
    title: str
    ticks: tuple[int, ...] | None = None
    periodic: bool = False

    def smooth(self, values: np.ndarray) -> np.ndarray:
        """[n, d] values without jumps: cos and sin of angles (a jump at ±pi is no change
        of state), the values themselves otherwise; for autocorrelation times."""
        if self.periodic:
            return np.concatenate([np.cos(values), np.sin(values)], axis=1)
        return values


def padded_ranges(
    values: np.ndarray, pad: float = 0.25, *, nonnegative: bool = False
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Each column's range [min, max] of ``values`` [n, 2] widened by ``pad`` of its width
    on both sides (not below 0 where ``nonnegative``)."""
    low, high = values.min(axis=0), values.max(axis=0)
    width = pad * np.maximum(high - low, 1e-3)
    low, high = low - width, high + width
    if nonnegative:
        low = np.maximum(low, 0.0)
    return ((float(low[0]), float(high[0])), (float(low[1]), float(high[1])))


def tica_projection(tica: Tica, reference: TrajectoryData) -> Projection:
    """The first two TICA components of ``tica`` over the range of ``reference``'s plus 25 %."""
    return Projection(
        "tica",
        tica.transform,
        padded_ranges(tica.transform(reference)),
        ("TIC 1", "TIC 2"),
        1.0,
        (keys.JS_TICA, keys.KL_TICA, keys.KL_REVERSE_TICA, keys.FE_RMSE_TICA),
        f"TICA (lag {tica.lag_ps:g} ps)",
    )


def choose_projection(reference: TrajectoryData) -> Projection:
    """phi/psi where the CG topology keeps the backbone dihedrals (backbone map), else
    radius of gyration and end-to-end distance over the reference's range plus 25 %."""
    if not has_phi_psi(reference):
        ranges = padded_ranges(radius_of_gyration_and_end_to_end(reference), nonnegative=True)
        return Projection(
            "rg_end_to_end",
            radius_of_gyration_and_end_to_end,
            ranges,
            ("radius of gyration (nm)", "end-to-end distance (nm)"),
            1.0,
            (
                keys.JS_RG_END_TO_END,
                keys.KL_RG_END_TO_END,
                keys.KL_REVERSE_RG_END_TO_END,
                keys.FE_RMSE_RG_END_TO_END,
            ),
            "radius of gyration / end-to-end",
        )
    return Projection(
        "phi_psi",
        phi_psi,
        ANGLE_RANGE,
        ("φ (deg)", "ψ (deg)"),
        180.0 / np.pi,
        (keys.JS_PHI_PSI, keys.KL_PHI_PSI, keys.KL_REVERSE_PHI_PSI, keys.FE_RMSE_PHI_PSI),
        "φ/ψ",
        (-180, -90, 0, 90, 180),
        periodic=True,
    )


# --- states (basins) ------------------------------------------------------------------------
# Ramachandran basins of a residue, by (phi, psi) in degrees: alpha_L wherever phi > 0
# (with the rare C7ax), alpha_R where phi <= 0 and -120 <= psi < 50, beta/PII (with C5
# and C7eq) elsewhere at phi <= 0. The boundaries run along the barriers of the alanine
# dipeptide map (e.g. Chodera et al., J. Chem. Phys. 124, 194111 (2006), fig. 1).
PHI_PSI_STATES = ("alpha_R", "beta_PII", "alpha_L")
_ALPHA_R_PSI = (np.radians(-120.0), np.radians(50.0))


def phi_psi_basins(values: np.ndarray) -> np.ndarray:
    """[n] state index into :data:`PHI_PSI_STATES` of each (phi, psi) [n, 2] in rad."""
    phi, psi = np.asarray(values)[:, 0], np.asarray(values)[:, 1]
    alpha_l = phi > 0
    alpha_r = ~alpha_l & (psi >= _ALPHA_R_PSI[0]) & (psi < _ALPHA_R_PSI[1])
    return np.where(alpha_l, 2, np.where(alpha_r, 0, 1)).astype(np.int64)


def bead_bonds(data: TrajectoryData) -> np.ndarray:
    """[n_bonds, 2] bead index pairs of the CG topology's bonds (may be empty)."""
    pairs = [(bond[0].index, bond[1].index) for bond in data.topology.bonds]
    return np.array(sorted(tuple(sorted(p)) for p in pairs), dtype=np.int64).reshape(-1, 2)


def internal_coordinates(data: TrajectoryData) -> dict[str, np.ndarray]:
    """The beads' internal coordinates, each [n_frames, n_members]: ``"rg"`` (radius of
    gyration, nm, one member), ``"bonds"`` (nm), ``"angles"`` (rad, in [0, pi]) and
    ``"dihedrals"`` (rad, in (-pi, pi]: one per central bond and the improper at every
    branched bead, :mod:`cgpipe.bonded`). Families the topology has none of are [n, 0]."""
    bonds = bead_bonds(data)
    trajectory = data.to_mdtraj()
    n = data.n_frames
    dihedrals = np.concatenate([dihedral_quadruples(bonds), improper_quadruples(bonds)])
    triples = angle_triples(bonds)
    return {
        "rg": radius_of_gyration_and_end_to_end(data)[:, :1],
        "bonds": md.compute_distances(trajectory, bonds) if len(bonds) else np.empty((n, 0)),
        "angles": md.compute_angles(trajectory, triples) if len(triples) else np.empty((n, 0)),
        "dihedrals": (
            md.compute_dihedrals(trajectory, dihedrals) if len(dihedrals) else np.empty((n, 0))
        ),
    }


def tica_features(data: TrajectoryData) -> np.ndarray:
    """[n_frames, k] features for TICA: every bead-pair distance (nm) and the cosine and
    sine of every bead dihedral (signed, so that a mirror image differs)."""
    trajectory = data.to_mdtraj()
    n = data.topology.n_atoms
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64).reshape(
        -1, 2
    )
    dihedrals = internal_coordinates(data)["dihedrals"]
    return np.concatenate(
        [md.compute_distances(trajectory, pairs), np.cos(dihedrals), np.sin(dihedrals)], axis=1
    )


@dataclasses.dataclass(frozen=True)
class Tica:
    """TICA of :func:`tica_features`, fitted on some trajectories (:func:`fit_tica`).

    Attributes
    ----------
    mean
        [n_features] mean of the features the projection was fitted on.
    vectors
        [n_features, rank] independent components, slowest first, scaled as a kinetic
        map (each by its autocorrelation at the lag).
    eigenvalues
        [rank] autocorrelations of the components at the lag.
    lag
        Lag time in frames of the trajectories it was fitted on.
    lag_ps
        The same in ps.
    dimensions
        Components kept.
    """

    mean: np.ndarray
    vectors: np.ndarray
    eigenvalues: np.ndarray
    lag: int
    lag_ps: float
    dimensions: int

    def transform(self, data: TrajectoryData) -> np.ndarray:
        """[n_frames, dimensions] TICA components of ``data`` (zero beyond the components
        the fitted data's rank allows)."""
        vectors = self.vectors[:, : self.dimensions]
        components = (tica_features(data) - self.mean) @ vectors
        missing = self.dimensions - components.shape[1]
        return np.pad(components, ((0, 0), (0, missing))) if missing > 0 else components


def tica_decomposition(
    series: list[np.ndarray], lag: int, epsilon: float = 1e-6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, vectors, eigenvalues) of TICA (Perez-Hernandez et al. 2013) of ``series``
    ([n_frames, n_features] each) at ``lag`` frames, as deeptime's ``TICA`` (kinetic-map
    scaling) computes them: instantaneous and lagged covariances of the mean-free pairs
    (x_t, x_t+lag), symmetrised (reversible), C00 whitened with its eigenvalues below
    ``epsilon`` dropped, and the whitened lagged covariance diagonalised, components in
    order of falling |eigenvalue|; each component's sign makes its largest element
    positive.

    Written here, not taken from deeptime, because importing deeptime costs 1-2 s (its
    package imports sindy and, through it, scikit-learn) in every simulation and
    evaluation job; tests/unit/evaluate/test_observables.py compares the two.
    """
    x = np.concatenate([s[:-lag] for s in series]).astype(np.float64)
    y = np.concatenate([s[lag:] for s in series]).astype(np.float64)
    mean = (x.sum(axis=0) + y.sum(axis=0)) / (2 * len(x))
    x, y = x - mean, y - mean
    c00 = (x.T @ x + y.T @ y) / (2 * len(x))
    c0t = (x.T @ y + y.T @ x) / (2 * len(x))
    variances, basis = np.linalg.eigh(c00)
    keep = variances > max(epsilon, -variances.min() + 1e-16)
    if not keep.any():
        raise ValueError("TICA: every feature is constant: no component is left")
    whiten = basis[:, keep] / np.sqrt(variances[keep])
    eigenvalues, rotation = np.linalg.eigh(whiten.T @ c0t @ whiten)
    order = np.argsort(-np.abs(eigenvalues), kind="stable")
    eigenvalues, vectors = eigenvalues[order], whiten @ rotation[:, order]
    largest = np.argmax(np.abs(vectors), axis=0)
    vectors = vectors * np.sign(vectors[largest, np.arange(vectors.shape[1])])
    return mean, vectors * eigenvalues, eigenvalues


def frame_interval(data: TrajectoryData) -> float:
    """The time between saved frames (ps): the median step of the time column within
    trajectories (NaN with fewer than two frames in every trajectory)."""
    steps = np.diff(np.asarray(data.time, dtype=float))
    same = np.diff(np.asarray(data.trajectory_index)) == 0
    steps = steps[same & (steps > 0)]
    return float(np.median(steps)) if len(steps) else float("nan")


def fit_tica(data: TrajectoryData, lag_ps: float, dimensions: int = 2) -> Tica:
    """TICA of ``data``'s trajectories (labelled by ``trajectory_index``) at a lag of
    ``lag_ps`` ps (rounded to whole frames, at least 1, at most a trajectory's length - 1)."""
    features = tica_features(data)
    labels = np.asarray(data.trajectory_index)
    series = [features[labels == k] for k in np.unique(labels)]
    dt = frame_interval(data)
    lag = max(1, round(lag_ps / dt)) if np.isfinite(dt) else 1
    lag = min(lag, max(1, max(len(s) for s in series) - 1))
    series = [s for s in series if len(s) > lag]
    if not series:
        raise ValueError(f"no trajectory is longer than the TICA lag ({lag} frames)")
    # With fewer features than components (a two-bead map has one distance) the missing
    # components are zero (Tica.transform), so every projection stays two-dimensional.
    mean, vectors, eigenvalues = tica_decomposition(series, lag)
    lag_ps = lag * dt if np.isfinite(dt) else float("nan")
    return Tica(mean, vectors, eigenvalues, lag, lag_ps, dimensions)


@dataclasses.dataclass(frozen=True)
class States:
    """Named states (basins) of a system and how to tell a frame's state.

    phi/psi basins (:data:`PHI_PSI_STATES`) where the CG topology keeps phi and psi, else
    the two sides of the slowest TICA component (TIC1 < 0 and >= 0, the components
    having zero mean over the frames TICA was fitted on).
    """

    names: tuple[str, ...]
    tica: Tica | None = None

    def assign(self, data: TrajectoryData) -> np.ndarray:
        """[n_frames] state index into :attr:`names` of every frame."""
        if self.tica is None:
            return phi_psi_basins(phi_psi(data))
        return (self.tica.transform(data)[:, 0] >= 0).astype(np.int64)


def has_phi_psi(data: TrajectoryData) -> bool:
    """Whether the topology keeps a residue's phi and psi atoms."""
    try:
        phi_psi(TrajectoryData(data.topology, data.coordinates[:1], [0.0]))
    except ValueError:
        return False
    return True


def choose_states(training: TrajectoryData, tica_lag: float, tica: Tica | None = None) -> States:
    """phi/psi basins where the topology has them, else the sides of TIC1 of ``tica`` or,
    without one, of a TICA fitted on ``training`` at ``tica_lag`` ps."""
    if has_phi_psi(training):
        return States(PHI_PSI_STATES)
    return States(("tic1_low", "tic1_high"), tica or fit_tica(training, tica_lag))
