"""How good backmapped structures are: per structure, and on held-out frames of known
answer.

Per structure (:func:`structure_table`), against the fold's training frames
(:class:`Standard`): the share of heavy-atom bonds within 10 % of their mean training
length, the mean deviation of heavy-atom bond angles from their training mean (deg), the
clash score (100 x heavy-atom pairs, more than two bonds apart, closer than 0.12 nm per
such pair closer than 0.5 nm), the share of stereocentres whose hand disagrees with the
training frames', and, where the CG frame keeps phi and psi, the share of phi/psi signs
that disagree with the CG frame's (only where the CG angle lies at least 30 degrees from
0 and 180, where its sign means something).

On held-out frames (:func:`heldout_scores`): each frame is mapped to CG, backmapped
``samples`` times and compared with the truth: heavy-atom RMSD (nm, no superposition:
the CG frame fixes the frame) of the best sample and the mean over samples, the samples'
mean pairwise RMSD and DiAMoNDBack's diversity, and the per-structure metrics above with
the same metrics of the true frames as their floor; with the reference's force field,
the median potential energy (kJ/mol) beside the true frames', and, on request, all of it
again after a restrained minimisation (:mod:`cgpipe.backmap.energy`) of the structures
and, for the floor, of the true frames. Intervals are
percentile bootstraps over frames (the frames are spread evenly over the held-out
trajectories).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe.backmap.base import Backmapper
from cgpipe.backmap.quality import (
    Geometry,
    angle_deviation,
    bond_angles,
    bond_fraction,
    bond_lengths,
    chirality,
    clash_score,
    diversity,
    sample_rmsds,
)
from cgpipe.evaluate.statistics import bootstrap_trajectories, interval
from cgpipe.io import TrajectoryData
from cgpipe.observables import has_phi_psi, phi_psi

if TYPE_CHECKING:
    from cgpipe.backmap.energy import ForceField

log = logging.getLogger(__name__)

HANDED = 0.99
"""Share of training frames that must agree on a stereocentre's hand for it to count."""
SIGN_MARGIN = np.deg2rad(30.0)
"""A CG dihedral's sign counts only this far from 0 and 180 degrees."""

BOND_FRACTION = "bond_fraction"
ANGLE_DEVIATION = "angle_deviation"
CLASH_SCORE = "clash_score"
CHIRALITY_ERRORS = "chirality_errors"
SIGN_ERRORS = "phi_psi_sign_errors"
STRUCTURE_METRICS = (BOND_FRACTION, ANGLE_DEVIATION, CLASH_SCORE, CHIRALITY_ERRORS, SIGN_ERRORS)
RMSD_BEST = "heavy_rmsd_best"
RMSD_MEAN = "heavy_rmsd_mean"
RMSD_AMONG = "heavy_rmsd_among_samples"
DIVERSITY = "diversity"
POTENTIAL_ENERGY = "potential_energy"
MINIMISED = "_minimised"
UNITS = {
    BOND_FRACTION: "fraction",
    ANGLE_DEVIATION: "deg",
    CLASH_SCORE: "percent",
    CHIRALITY_ERRORS: "fraction",
    SIGN_ERRORS: "fraction",
    RMSD_BEST: "nm",
    RMSD_MEAN: "nm",
    RMSD_AMONG: "nm",
    DIVERSITY: "1",
    POTENTIAL_ENERGY: "kJ/mol",
}
UNITS.update({name + MINIMISED: unit for name, unit in UNITS.items()})


@dataclasses.dataclass(frozen=True)
class Standard:
    """What structures are measured against: the fold's training frames' mean bond
    lengths (nm) and angles (rad), and each stereocentre's hand (+1, -1; 0 where fewer
    than :data:`HANDED` of the frames agree)."""

    topology: md.Topology
    geometry: Geometry
    lengths: np.ndarray
    angles: np.ndarray
    hand: np.ndarray

    @classmethod
    def from_frames(cls, topology: md.Topology, frames: np.ndarray) -> Standard:
        geometry = Geometry.from_topology(topology)
        # Bonds and angles of heavy atoms only, as the field scores them (DiAMoNDBack and
        # GenZProt rebuild heavy atoms alone): a hydrogen's bond is not scored.
        heavy = np.zeros(topology.n_atoms, dtype=bool)
        heavy[geometry.heavy] = True
        geometry = dataclasses.replace(
            geometry,
            bonds=geometry.bonds[heavy[geometry.bonds].all(axis=1)],
            angles=geometry.angles[heavy[geometry.angles].all(axis=1)],
        )
        frames = np.asarray(frames, dtype=np.float64)
        signs = chirality(frames, geometry)
        share = (signs > 0).mean(axis=0) if len(signs) else np.zeros(0)
        hand = np.where(share >= HANDED, 1.0, np.where(share <= 1 - HANDED, -1.0, 0.0))
        return cls(
            topology,
            geometry,
            bond_lengths(frames, geometry).mean(axis=0),
            bond_angles(frames, geometry).mean(axis=0),
            hand,
        )


def structure_table(
    positions: np.ndarray,
    standard: Standard,
    cg: np.ndarray | None = None,
    forcefield: ForceField | None = None,
) -> pd.DataFrame:
    """One row per structure [n, n_atoms, 3] (nm): the metrics of the module docstring;
    ``cg`` [n, 2] the CG phi/psi (rad) each structure was built from, or None; with a
    ``forcefield``, each structure's potential energy (kJ/mol) too."""
    g = standard.geometry
    positions = np.asarray(positions, dtype=np.float64)
    table = pd.DataFrame(
        {
            BOND_FRACTION: bond_fraction(positions, g, standard.lengths),
            ANGLE_DEVIATION: angle_deviation(positions, g, standard.angles),
            CLASH_SCORE: clash_score(positions, g),
        }
    )
    handed = standard.hand != 0
    if handed.any() and len(positions):
        signs = chirality(positions, g)[:, handed]
        table[CHIRALITY_ERRORS] = (signs * standard.hand[handed] < 0).mean(axis=1)
    else:
        table[CHIRALITY_ERRORS] = 0.0
    table[SIGN_ERRORS] = np.nan
    if cg is not None and len(positions):
        atoms = phi_psi(TrajectoryData(standard.topology, positions, np.zeros(len(positions))))
        meaningful = np.abs(np.sin(cg)) >= np.sin(SIGN_MARGIN)
        wrong = (np.sign(atoms) != np.sign(cg)) & meaningful
        counted = meaningful.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            table[SIGN_ERRORS] = np.where(counted > 0, wrong.sum(axis=1) / counted, np.nan)
    if forcefield is not None:
        table[POTENTIAL_ENERGY] = forcefield.energies(positions)
    return table


def cg_phi_psi(cg: TrajectoryData) -> np.ndarray | None:
    """[n_frames, 2] phi/psi (rad) of CG frames whose topology keeps them, else None."""
    return phi_psi(cg) if cg.n_frames and has_phi_psi(cg) else None


def _bootstrap(
    values: np.ndarray, statistic: Any, rng: np.random.Generator, resamples: int
) -> tuple[float, float, float]:
    """``statistic`` (np.mean, np.median) of the finite ``values`` and its percentile
    bootstrap interval."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan, np.nan
    # Each frame its own trajectory: the ordinary bootstrap over frames.
    draws = bootstrap_trajectories(np.arange(len(values)), rng, resamples)
    low, high = interval([statistic(values[frames]) for frames in draws])
    return float(statistic(values)), low, high


def _compare(
    positions: np.ndarray,
    truth: TrajectoryData,
    real_positions: np.ndarray,
    cg: TrajectoryData,
    standard: Standard,
    forcefield: ForceField | None,
    rng: np.random.Generator,
    resamples: int,
    suffix: str,
) -> list[tuple]:
    n = len(positions) // max(cg.n_frames, 1)
    stacked = positions.reshape(cg.n_frames, n, *positions.shape[1:]).transpose(1, 0, 2, 3)
    to_truth, among = sample_rmsds(stacked, truth.coordinates, standard.geometry.heavy)
    angles = cg_phi_psi(cg)
    repeated = None if angles is None else np.repeat(angles, n, axis=0)
    built = structure_table(positions, standard, repeated, forcefield)
    real = structure_table(real_positions, standard, angles, forcefield)
    per_frame = {
        RMSD_BEST: to_truth.min(axis=0),
        RMSD_MEAN: to_truth.mean(axis=0),
        RMSD_AMONG: among,
        DIVERSITY: diversity(to_truth, among),
    }
    rows = []
    for metric, values in per_frame.items():
        estimate = _bootstrap(values, np.mean, rng, resamples)
        rows.append((metric + suffix, *estimate, np.nan, np.nan, np.nan))
    for metric in STRUCTURE_METRICS + ((POTENTIAL_ENERGY,) if forcefield else ()):
        frame_means = built[metric].to_numpy().reshape(cg.n_frames, n).mean(axis=1)
        statistic = np.median if metric == POTENTIAL_ENERGY else np.mean
        rows.append(
            (
                metric + suffix,
                *_bootstrap(frame_means, statistic, rng, resamples),
                *_bootstrap(real[metric].to_numpy(), statistic, rng, resamples),
            )
        )
    return rows


def heldout_scores(
    backmapper: Backmapper,
    truth: TrajectoryData,
    cg: TrajectoryData,
    standard: Standard,
    *,
    rng: np.random.Generator,
    forcefield: ForceField | None = None,
    minimise: dict[str, float] | None = None,
    resamples: int = 200,
) -> pd.DataFrame:
    """Backmap the CG images ``cg`` of held-out all-atom frames ``truth`` and score them
    against the truth: one row per metric (``metric``, ``value``, ``low``, ``high``,
    ``floor``, ``floor_low``, ``floor_high``; the floor is the same metric of the true
    frames, NaN where it has none); the cost per backmapped frame goes to the log (a
    time is not a result: the same fit gives the same table anywhere). With a
    ``forcefield``, the median potential energy too; with ``minimise`` as well (the
    options of :meth:`~cgpipe.backmap.energy.ForceField.minimise`), every metric again,
    suffixed ``_minimised``, after the restrained minimisation of each structure (their
    floor: the true frames after the same minimisation), except
    for a negative control (:attr:`~cgpipe.backmap.base.Backmapper.control`), scored as
    drawn: minimised, its clashes would be the force field's to clear (chignolin's
    scattered atoms came out with none), at 20-30 times a fitted backmapper's cost."""
    start = time.perf_counter()
    positions, _ = backmapper.backmap(cg)
    seconds = (time.perf_counter() - start) / max(cg.n_frames, 1)
    scored = standard, forcefield, rng, resamples
    rows = _compare(positions, truth, truth.coordinates, cg, *scored, "")
    log.info("%s: %.3g s per CG frame backmapped", backmapper.name, seconds)
    if minimise is not None and forcefield is not None and not backmapper.control:
        start = time.perf_counter()
        minimised = forcefield.minimise(positions, **minimise)
        seconds = (time.perf_counter() - start) / max(cg.n_frames, 1)
        log.info("restrained minimisation: %.3g s per CG frame", seconds)
        # The floor of a minimised metric is the true frames minimised the same way: the
        # force field pulls angles to its own equilibria (retrieval's real frames of
        # another time, minimised: 0.7 deg from the training mean angles against their
        # 2.3 deg as simulated). The RMSDs are still to the truth as it was.
        real = forcefield.minimise(truth.coordinates, **minimise)
        rows += _compare(minimised, truth, real, cg, *scored, MINIMISED)
    return pd.DataFrame(
        rows, columns=["metric", "value", "low", "high", "floor", "floor_low", "floor_high"]
    )
