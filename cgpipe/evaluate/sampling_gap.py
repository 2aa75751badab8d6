"""The gap between a model's two ways of sampling: the JS of its simulation over the JS of
its i.i.d. draws, per projection, per fold and pooled, with a 95 % interval.

A denoising-diffusion model is an i.i.d. sampler (reverse diffusion) and, through its score
at a small noise level, a force field. The two agree only to the extent that the score at
that level is the score of the distribution the sampler draws; the ratio says by how much
the force field's ensemble is further from the reference than the draws are (1: no gap;
Plainer et al. 2025 report 0.0695 / 0.0081 for a plain diffusion model on alanine
dipeptide's phi/psi). Both JS are against the fold's held-out trajectories on the same
histogram; the interval bootstraps both samples apart (the simulation's replicas by
design, the draws one by one) and takes the ratio resample by resample.
"""

from __future__ import annotations

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, CGSample, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.comparison import Binned
from cgpipe.evaluate.statistics import interval

_PROJECTIONS = {
    "phi_psi": "φ/ψ",
    "rg_end_to_end": "(radius of gyration, end-to-end distance)",
    "tica": "the first two TICA components (fitted on the fold's training trajectories)",
}


@METRICS.register("sampling_gap")
class SamplingGap(Metric):
    """JS(simulation) / JS(i.i.d. draws) on each projection, for a model with draws (no
    rows for one without).

    Parameters
    ----------
    pseudo_mass
        Total probability mass of the uniform pseudo-distribution mixed into every
        histogram (as ``free_energy``'s).
    resamples
        Bootstrap resamples of each interval.
    """

    needs = frozenset({"reference", "simulation", "health", "samples"})
    captions = {
        keys.SAMPLING_GAP_PREFIX + name: (
            f"Jensen-Shannon divergence of {what} of the CG simulation over that of the "
            "model's i.i.d. draws, both against the fold's held-out trajectories (1: the force "
            "field samples what the sampler draws); 95 % interval: bootstrap of both (the "
            "simulation's replicas by design, the draws one by one), ratio resample by resample."
        )
        for name, what in _PROJECTIONS.items()
    }

    def __init__(self, *, pseudo_mass: float, resamples: int) -> None:
        self.pseudo_mass = pseudo_mass
        self.resamples = resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        rows: list[MetricRow] = []
        pooled: dict[str, list[tuple[float, np.ndarray, float, np.ndarray]]] = {}
        for fold in context.folds:
            if not context.has("samples", fold):
                continue
            # A fold whose every replica failed is scored with its escaped mass, as
            # free_energy scores it, not skipped.
            draws = context.draws(fold)
            simulated = context.sample(fold)
            independent = CGSample.independent(draws.trajectory_index)
            heldout = context.heldout_frames(fold)
            for projection in context.projections(fold):
                name = keys.SAMPLING_GAP_PREFIX + projection.name
                edges = [np.linspace(lo, hi, context.bins + 1) for lo, hi in projection.ranges]
                binned = Binned(edges, joint=True, pseudo_mass=self.pseudo_mass)
                target = binned.counts(context.reference_projected(projection)[heldout])
                rng = context.rng(f"{name}/{context.label(fold)}")
                scores = []
                for sample, values in (
                    (simulated, simulated.values(context.simulation_projected(fold, projection))),
                    (independent, independent.values(projection.compute(draws))),
                ):
                    value = float(binned.scores(binned.counts(values), target)[0])
                    resampled = np.array(
                        [
                            binned.scores(binned.counts(values[frames]), target)[0]
                            for frames in sample.resampling().resamples(rng, self.resamples)
                        ]
                    )
                    scores += [value, resampled]
                rows.append(_ratio_row(context.label(fold), name, *scores))
                pooled.setdefault(name, []).append(tuple(scores))
        for name, folds in pooled.items():
            if len(folds) > 1:
                sim, sim_draws, iid, iid_draws = (
                    np.mean([f[k] for f in folds], axis=0) for k in range(4)
                )
                rows.append(_ratio_row(keys.ALL_FOLDS, name, sim, sim_draws, iid, iid_draws))
        return rows


def _ratio_row(
    fold: str,
    metric: str,
    simulated: float,
    simulated_draws: np.ndarray,
    iid: float,
    iid_draws: np.ndarray,
) -> MetricRow:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = simulated_draws / iid_draws
        value = float(simulated / iid) if iid > 0 else float("nan")
    finite = ratios[np.isfinite(ratios)]
    low, high = interval(finite) if len(finite) else (float("nan"), float("nan"))
    return MetricRow(fold, metric, value, float(low), float(high))
