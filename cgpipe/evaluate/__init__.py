"""Evaluation of CG simulations against the all-atom reference.

One tidy table per model (:data:`cgpipe.keys.METRIC_COLUMNS`), made by the metrics
named in ``evaluate.metrics``: each is a :class:`Metric` registered in :data:`METRICS`
by its own module of this package, built from its config section, and reading what it
needs from an :class:`EvaluationContext`. Built in:

- ``free_energy``: JS and KL in both directions (nats) of the 2-D projection (phi/psi,
  or radius of gyration and end-to-end distance) per fold, each beside its noise floor
  at the fold's frame count with a 95 % interval (:mod:`cgpipe.evaluate.statistics`);
- ``force_error``: force RMSE (kJ/mol/nm per component) of the model and of its prior
  alone on the held-out trajectories;
- ``stability``: replicas that never failed, over all replicas;
- ``backmap``: per backmapper, the quality of the structures backmapped from the model's
  CG frames (CG-space RMSD, bonds, angles, clashes, chirality, the phi/psi of atoms
  against those of the beads), with intervals over replicas;
- ``sampling_gap``: for a model that also samples i.i.d., the JS of its simulation over
  that of its draws.

A model that samples i.i.d. as well (the diffusion model) is scored twice by the metrics of
the sampled ensemble (``Metric.samplings``): its simulation, and its draws in rows
prefixed ``iid_``.

Each metric's captions travel with the table (Parquet schema metadata), so the report
names no metric.
"""

from cgpipe.evaluate.base import FOLD_FILES, METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.stage import run
from cgpipe.observables import Projection, choose_projection, phi_psi

__all__ = [
    "FOLD_FILES",
    "METRICS",
    "EvaluationContext",
    "Metric",
    "MetricRow",
    "Projection",
    "choose_projection",
    "phi_psi",
    "run",
]
