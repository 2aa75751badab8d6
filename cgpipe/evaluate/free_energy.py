"""Divergences between the CG and reference ensembles on the 2-D projection."""

from __future__ import annotations

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric
from cgpipe.evaluate.divergence import js_divergence, kl_divergence


@METRICS.register("free_energy")
class FreeEnergy(Metric):
    """KL divergence D(ref || CG) and Jensen-Shannon divergence (nats, natural log, so
    JS <= ln 2) between the 2-D histograms of the projection (phi/psi, or radius of
    gyration and end-to-end distance) of the reference (all trajectories) and of each
    fold's CG simulation; and the same between the two halves of the reference
    trajectories (first half of the trajectories against the second), the noise floor
    that finite sampling alone produces.

    Parameters
    ----------
    pseudo_count
        Added to every bin's count before normalising, so that KL stays finite.
    """

    needs = frozenset({"reference", "simulation"})
    captions = {
        keys.JS_PHI_PSI: "Jensen-Shannon divergence (nats) of φ/ψ, CG vs all-atom reference.",
        keys.KL_PHI_PSI: "KL divergence D(ref ‖ CG) (nats) of φ/ψ.",
        keys.JS_PHI_PSI_REFERENCE_HALVES: (
            "JS (nats) between two halves of the reference: the sampling noise floor."
        ),
        keys.KL_PHI_PSI_REFERENCE_HALVES: "KL (nats) between two halves of the reference.",
        keys.JS_RG_END_TO_END: (
            "Jensen-Shannon divergence (nats) of (radius of gyration, end-to-end distance)."
        ),
        keys.KL_RG_END_TO_END: "KL divergence D(ref ‖ CG) (nats) of (Rg, end-to-end distance).",
        keys.JS_RG_END_TO_END_REFERENCE_HALVES: (
            "JS (nats) between two halves of the reference: the sampling noise floor."
        ),
        keys.KL_RG_END_TO_END_REFERENCE_HALVES: "KL (nats) between two halves of the reference.",
    }

    def __init__(self, *, pseudo_count: float) -> None:
        self.pseudo_count = pseudo_count

    def rows(self, context: EvaluationContext) -> list[tuple[str, str, float]]:
        js_name, kl_name, js_halves, kl_halves = context.projection.metrics
        reference = context.reference
        values = context.reference_values
        p_reference = context.histogram(values, self.pseudo_count)
        labels = reference.trajectories
        first_half = np.isin(reference.trajectory_index, labels[: max(1, len(labels) // 2)])
        rows: list[tuple[str, str, float]] = []
        if (~first_half).any():
            p_first = context.histogram(values[first_half], self.pseudo_count)
            p_second = context.histogram(values[~first_half], self.pseudo_count)
            rows.append((keys.ALL_FOLDS, js_halves, js_divergence(p_first, p_second)))
            rows.append((keys.ALL_FOLDS, kl_halves, kl_divergence(p_first, p_second)))
        for fold in context.folds:
            if not context.simulation(fold).n_frames:
                continue  # every replica failed before its first saved frame
            p_model = context.histogram(context.simulation_values(fold), self.pseudo_count)
            name = context.label(fold)
            rows.append((name, js_name, js_divergence(p_reference, p_model)))
            rows.append((name, kl_name, kl_divergence(p_reference, p_model)))
        return rows
