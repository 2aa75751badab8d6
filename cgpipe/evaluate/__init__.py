"""Evaluation of CG simulations against the all-atom reference.

Metrics (one tidy table per model, :data:`cgpipe.keys.METRIC_COLUMNS`):

- ``kl_phi_psi``, ``js_phi_psi``: Kullback-Leibler D(ref || CG) and Jensen-Shannon
  divergence (natural log, so JS <= ln 2) between phi/psi histograms of the reference
  (all trajectories) and of a fold's CG simulation; ``bins`` x ``bins`` bins over
  [-pi, pi)^2 with ``pseudo_count`` added to every bin's count before normalising;
- ``*_reference_halves``: the same between the two halves of the reference
  trajectories (first half of the trajectories against the second) — the noise floor
  that finite sampling alone produces;
- ``force_rmse_heldout``: force RMSE (kJ/mol/nm, per component) of the fold's model
  on the held-out trajectories, and ``force_rmse_heldout_prior`` of its prior alone;
- ``stable_fraction``: replicas that never failed, over all replicas;
- ``backmap_cg_rmsd``: mean CG-space RMSD (nm) between backmapped and CG frames.
"""

from cgpipe.evaluate.divergence import histogram_2d, js_divergence, kl_divergence
from cgpipe.evaluate.metrics import evaluate_model, phi_psi

__all__ = ["evaluate_model", "histogram_2d", "js_divergence", "kl_divergence", "phi_psi"]
