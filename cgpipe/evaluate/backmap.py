"""How good a model's backmapped structures are, per backmapper.

Per fold and backmapper ``<m>`` (``backmap.methods``), over the structures backmapped from
the model's CG frames: the mean CG-space RMSD (nm) between each structure, mapped back to
beads, and its CG frame; the structure metrics of :mod:`cgpipe.backmap.scoring` (bond
fraction, bond-angle deviation, clash score, stereocentres of the wrong hand, phi/psi
signs that disagree with the CG frame), each a mean with its 95 % interval by bootstrap
over replicas, and the median potential energy by the reference's force field where the
system has one; and, where the CG frames keep phi and psi, the JS divergence between the
phi/psi histogram of the backmapped atoms and that of the CG beads they were built from
(0 when backmapping keeps every frame's dihedrals in its bin). Their floors, the same
metrics of real held-out frames, are in each backmapper's held-out scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.backmap.scoring import POTENTIAL_ENERGY, STRUCTURE_METRICS
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.statistics import (
    bootstrap_trajectories,
    interval,
    js,
    regularised_histogram,
)
from cgpipe.observables import ANGLE_RANGE

JS_BACKMAPPED = "js_phi_psi_backmapped"
_CAPTIONS = {
    keys.CG_RMSD: "mean CG-space RMSD (nm) of backmapped structures to their CG frames",
    "bond_fraction": "share of bonds within 10 % of their mean training length",
    "angle_deviation": "mean |bond angle - training mean| (deg)",
    "clash_score": "100 x heavy-atom pairs (> 2 bonds apart) < 0.12 nm per pair < 0.5 nm",
    "chirality_errors": "share of stereocentres of the training frames' opposite hand",
    "phi_psi_sign_errors": "share of phi/psi signs unlike the CG frame's (CG angle > 30 deg "
    "from 0 and 180)",
    JS_BACKMAPPED: "JS divergence (nats) between the phi/psi histograms of the backmapped "
    "atoms and of the CG beads",
    POTENTIAL_ENERGY: "median potential energy (kJ/mol) by the reference's force field",
}


@METRICS.register("backmap")
class Backmap(Metric):
    """See the module docstring.

    Parameters
    ----------
    resamples
        Bootstrap resamples (over replicas) of each interval.
    pseudo_mass
        Uniform pseudo-distribution mixed into both phi/psi histograms of the JS.
    """

    needs = frozenset({"backmap"})
    captions = {  # each name is suffixed with the backmapper's: bond_fraction_flow
        (keys.BACKMAP_CG_RMSD if name == keys.CG_RMSD else name): text.capitalize() + "."
        for name, text in _CAPTIONS.items()
    }

    def __init__(self, *, resamples: int = 100, pseudo_mass: float = 0.02) -> None:
        self.resamples = resamples
        self.pseudo_mass = pseudo_mass

    def caption(self, metric: str) -> str | None:
        for base, text in _CAPTIONS.items():
            name = keys.BACKMAP_CG_RMSD if base == keys.CG_RMSD else base
            if metric.startswith(name + "_"):
                return f"Backmapper {metric.removeprefix(name + '_')}: {text}."
        return None

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        rows: list[MetricRow] = []
        if not context.backmappers:  # the model is not backmapped (backmap.models)
            return rows
        for fold in context.folds:
            label = context.label(fold)
            for method, table in context.backmap(fold).items():
                rows += self._rows(label, method, table, context)
        return rows

    def _rows(
        self, label: str, method: str, table: pd.DataFrame, context: EvaluationContext
    ) -> list[MetricRow]:
        if table.empty:  # every replica failed before its first saved frame
            return []
        rng = context.rng(f"{self.name}/{method}/{label}")
        # Replicas drawn whole, with replacement (a frame's samples with their replica).
        resampled = list(bootstrap_trajectories(table[keys.REPLICA], rng, self.resamples))

        def estimate(statistic: Any) -> tuple[float, float, float]:
            value = statistic(np.arange(len(table)))
            low, high = interval(np.array([statistic(frames) for frames in resampled]))
            return float(value), low, high

        rows = [
            MetricRow(label, f"{keys.BACKMAP_CG_RMSD}_{method}", float(table[keys.CG_RMSD].mean()))
        ]
        for metric in (*STRUCTURE_METRICS, POTENTIAL_ENERGY):
            if metric not in table or not table[metric].notna().any():
                continue
            values = table[metric].to_numpy(dtype=float)
            summary = np.nanmedian if metric == POTENTIAL_ENERGY else np.nanmean
            rows.append(
                MetricRow(
                    label,
                    f"{metric}_{method}",
                    *estimate(lambda f, v=values, s=summary: s(v[f])),
                )
            )
        if keys.PHI_ATOMS in table:
            atoms = table[[keys.PHI_ATOMS, keys.PSI_ATOMS]].to_numpy(dtype=float)
            cg = table[[keys.PHI_CG, keys.PSI_CG]].to_numpy(dtype=float)
            edges = [np.linspace(low, high, context.bins + 1) for low, high in ANGLE_RANGE]

            def divergence(frames: np.ndarray) -> float:
                p = regularised_histogram(atoms[frames], edges, self.pseudo_mass)
                q = regularised_histogram(cg[frames], edges, self.pseudo_mass)
                return js(p, q)

            rows.append(MetricRow(label, f"{JS_BACKMAPPED}_{method}", *estimate(divergence)))
        return rows
