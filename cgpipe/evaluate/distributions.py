"""1-D distributions of the beads' internal coordinates: radius of gyration, bond lengths,
bond angles and dihedrals (with impropers), CG against the reference.

Each family's score is the mean Jensen-Shannon divergence (nats) of its members' 1-D
histograms, per fold against the fold's held-out trajectories, with its interval, noise
floor, echo and replay baselines and in-sample companion (see
:mod:`cgpipe.evaluate.comparison`); pooled, the mean over folds.
"""

from __future__ import annotations

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.comparison import Binned, Reference, Scored, compare, pool, scored_rows
from cgpipe.evaluate.comparison import captions as comparison_captions
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
        for suffix, caption in comparison_captions(text).items():
            captions[metric + suffix] = caption
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
    samplings = frozenset({"dynamics", "iid"})
    captions = _captions()

    def __init__(self, *, bins: int, pseudo_mass: float, resamples: int) -> None:
        self.bins = bins
        self.pseudo_mass = pseudo_mass
        self.resamples = resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        reference = internal_coordinates(context.reference)
        smooth = context.projection.smooth(context.reference_values)
        families = [name for name in _FAMILIES if reference[name].shape[1]]
        binned = {name: self._binning(name, reference[name]) for name in families}
        rows: list[MetricRow] = []
        echoed = context.sampling == "dynamics"  # i.i.d. draws have no start to echo
        pooled: dict[str, list[Scored]] = {name: [] for name in families}
        for fold in context.folds:
            simulation: TrajectoryData = context.simulation(fold)
            sample = context.sample(fold)
            resampling = sample.resampling()
            values = internal_coordinates(simulation) if simulation.n_frames else None
            heldout, training = context.heldout_frames(fold), context.training_frames(fold)
            for name in families:
                saved = (
                    values[name] if values is not None else np.empty((0, reference[name].shape[1]))
                )
                scored = compare(
                    binned[name],
                    Reference(
                        heldout=reference[name][heldout],
                        heldout_labels=context.reference.trajectory_index[heldout],
                        training=reference[name][training],
                        everything=reference[name],
                    ),
                    sample.values(saved),
                    resampling,
                    sample.echo(reference[name]),
                    context.rng(f"distributions/{name}/{context.label(fold)}"),
                    self.resamples,
                    observable=smooth[heldout],
                )
                rows += scored_rows(
                    context.label(fold), (_FAMILIES[name][0],), scored[:1], echo=echoed
                )
                pooled[name].append(scored[0])
        for name in families:
            if len(pooled[name]) > 1:
                rows += scored_rows(
                    keys.ALL_FOLDS, (_FAMILIES[name][0],), [pool(pooled[name])], echo=echoed
                )
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
