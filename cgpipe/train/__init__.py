"""Training by force matching, one model per cross-validation fold.

Folds are split by trajectory, never by frame: frames of one trajectory are
correlated, so a frame-wise split would leak the test set into training. Force
matching (Noid et al. 2008; CGnet, Wang et al. 2019) minimises
E ||F_theta(z) - Xi_f f(x)||^2 over the training frames, whose minimiser is the mean
force -grad A(z); forces are -dE/dz by autograd, so the loss is differentiated twice.
"""

from cgpipe.train.folds import fold_trajectories, split_frames
from cgpipe.train.force_matching import train_fold

__all__ = ["fold_trajectories", "split_frames", "train_fold"]
