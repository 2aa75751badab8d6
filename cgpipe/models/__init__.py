"""CG force-field models: SchNet energy network, physical priors, and their sum.

Every model maps CG positions [batch, n_beads, 3] (nm) to energies [batch] (kJ/mol);
forces (kJ/mol/nm) are -dE/dx by autograd, so they are conservative by construction.
"""

from cgpipe.models.cgmodel import MODEL_NAMES, CGModel, build_model, load_model, save_model
from cgpipe.models.neighbours import pair_distances, radius_graph
from cgpipe.models.prior import Prior, fit_prior
from cgpipe.models.schnet import SchNet

__all__ = [
    "MODEL_NAMES",
    "CGModel",
    "Prior",
    "SchNet",
    "build_model",
    "fit_prior",
    "load_model",
    "pair_distances",
    "radius_graph",
    "save_model",
]
