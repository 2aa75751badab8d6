"""1-D distributions of the beads' internal coordinates: radius of gyration, bond lengths,
bond angles and dihedrals (with impropers), CG against the reference.

Each family's score is the mean Jensen-Shannon divergence (nats) of its members' 1-D
histograms, with an interval (bootstrap over CG replicas), a noise floor (the reference
against itself at the CG frame count) and an echo baseline (the start frames, never
moving): see :mod:`cgpipe.evaluate.comparison`.
"""

from __future__ import annotations

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.comparison import Binned, compare, scored_rows
from cgpipe.evaluate.statistics import choose_resampling
from cgpipe.io import TrajectoryData
from cgpipe.observables import internal_coordinates

_FAMILIES = {
    "rg": (keys.JS_RG, "radius of gyration of the beads"),
    "bonds": (keys.JS_BONDS, "bond lengths, mean over bonds"),
    "angles": (keys.JS_ANGLES, "bond angles, mean over angles"),
    "dihedrals": (keys.JS_DIHEDRALS, "dihedrals and impropers, mean over them"),
}
_RANGES = {"angles": (0.0, np.pi), "dihedrals": (-np.pi, np.pi)}  # rad; others: the data's


def _captions() -> dict[str, str]:
    captions = {}
    for metric, what in _FAMILIES.values():
        text = (
            f"Jensen-Shannon divergence (nats) of the 1-D distributions of {what}, CG vs reference."
        )
        captions[metric] = text + " 95 % interval: bootstrap over CG replicas."
        captions[metric + keys.FLOOR_SUFFIX] = (
            text + " Noise floor: the reference against itself at the CG frame count."
        )
        captions[metric + keys.ECHO_SUFFIX] = (
            text + " Echo baseline: the start frames, never moving."
        )
    return captions


@METRICS.register("distributions")
class Distributions(Metric):
    """Per fold and pooled: the mean 1-D JS of each family of internal coordinates (Rg,
    bonds, angles, dihedrals) that the CG topology has, with interval, floor and echo.

    Parameters
    ----------
    bins
        Bins of every 1-D histogram (over [0, pi] for angles, [-pi, pi] for dihedrals,
        the reference's range plus 25 % for lengths).
    pseudo_mass
        Total mass of the uniform pseudo-distribution mixed into every histogram.
    resamples
        Resamples for each interval and noise floor.
    """

    needs = frozenset({"reference", "simulation", "health"})
    captions = _captions()

    def __init__(self, *, bins: int, pseudo_mass: float, resamples: int) -> None:
        self.bins = bins
        self.pseudo_mass = pseudo_mass
        self.resamples = resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        reference = internal_coordinates(context.reference)
        labels = context.reference.trajectory_index
        resampling = choose_resampling(
            labels, observable=context.projection.smooth(context.reference_values)
        )
        families = [name for name in _FAMILIES if reference[name].shape[1]]
        binned = {name: self._binning(name, reference[name]) for name in families}
        samples: list[tuple[str, dict[str, np.ndarray], np.ndarray, np.ndarray]] = []
        for fold in context.folds:
            simulation: TrajectoryData = context.simulation(fold)
            if simulation.n_frames:
                samples.append(
                    (
                        context.label(fold),
                        internal_coordinates(simulation),
                        simulation.trajectory_index,
                        context.start_frames(fold),
                    )
                )
        if len(samples) > 1:
            samples.append(
                (
                    keys.ALL_FOLDS,
                    {n: np.concatenate([s[1][n] for s in samples]) for n in families},
                    np.concatenate([s[2] + k * 1_000_000 for k, s in enumerate(samples)]),
                    np.concatenate([s[3] for s in samples]),
                )
            )
        rows: list[MetricRow] = []
        floors: dict[tuple[str, int], list] = {}
        for fold, values, replicas, starts in samples:
            for name in families:
                key = (name, len(replicas))
                scored = compare(
                    binned[name],
                    reference[name],
                    labels,
                    resampling,
                    values[name],
                    replicas,
                    reference[name][starts],
                    context.rng(f"distributions/{name}/{fold}"),
                    self.resamples,
                    floors.get(key),
                )
                floors[key] = [s.floor for s in scored]
                rows += scored_rows(fold, (_FAMILIES[name][0],), scored[:1])
        return rows

    def _binning(self, name: str, values: np.ndarray) -> Binned:
        edges = []
        for column in values.T:
            low, high = _RANGES.get(name, (None, None))
            if low is None:
                pad = 0.25 * max(float(np.ptp(column)), 1e-3)
                low, high = max(0.0, float(column.min()) - pad), float(column.max()) + pad
            edges.append(np.linspace(low, high, self.bins + 1))
        return Binned(edges, joint=False, pseudo_mass=self.pseudo_mass)
