"""The ``kmeans`` map: beads from k-means clustering of the mean structure's heavy atoms.

The fold's training frames (at most ``max_frames``, spread evenly) are superposed
iteratively on their mean (mass-weighted Kabsch, generalised Procrustes: align to the
first frame, average, align to the average, ... until the average stops moving), and the
heavy atoms' aligned mean positions are clustered by mass-weighted k-means
(scikit-learn, ``n_init`` restarts, seeded), so that a bead's centroid is a centre of
mass, as the CG bead will be.

Why heavy atoms only: a hydrogen always joins the bead of the heavy atom it is bonded to
(:func:`~cgpipe.mapping.groups.attach_hydrogens`), so that no bond constraint to
hydrogen crosses a bead boundary (a constraint force, which the reference does not
record, would cancel in the bead's aggregated force, so the recorded forces give the
mean force: :mod:`cgpipe.constraints`) and the light, fast hydrogens do not steer the
partition.

Why connected beads: a bead of atoms that are not bonded to one another has no
chemical meaning and its centre can sit in empty space. k-means alone ignores the bonds,
so its clusters are made connected (:func:`~cgpipe.mapping.groups.make_connected`: a
detached piece of a bead moves to the bonded bead whose centroid is nearest to it), then
refined by Lloyd rounds restricted to moves that keep every bead a bonded group (an
atom moves to a bonded neighbouring bead only if that bead's centroid is nearer and its
own bead stays connected). Each round lowers the within-cluster sum of squares, so the
refinement ends.

Choice of k: the elbow of the within-cluster sum of squares, WCSS(k) = sum over heavy
atoms of m_i |x_i - mu_bead(i)|^2 (amu nm^2, mu the bead's centre of mass) of the
final, connected assignment, over k = k_min - 1 .. k_max (k_max clipped to the number
of heavy atoms), located by the kneedle rule (Satopää, Albrecht, Irwin & Raghavan, ICDCS
Workshops 2011, 166) with sensitivity S, as the ``kneed`` package implements it for a
convex decreasing curve. The point k_min - 1 (for k_min = 2 the single bead, whose WCSS
is the molecule's total scatter) only anchors the curve and is never chosen: kneedle's
difference is zero at a curve's first point, so without it k_min could never be the
elbow. Where kneedle finds no knee (its threshold is never crossed, as on a short or
nearly straight curve), the k of the largest kneedle difference (the point of the
normalised curve farthest below the chord from its first to its last point) is taken;
on a curve with no point below the chord, k_min, the fewest beads. ``n_beads`` skips the
scan. The elbow table (``k``, ``wcss``, ``chosen``; its ``attrs`` name the rule and
whether k_max was clipped) is the method's
:attr:`~cgpipe.mapping.base.MappingMethod.fit_table`; the Autograin map reuses the rule
through :func:`elbow` and :meth:`KMeansMap.choose_k`.
"""

from __future__ import annotations

import logging

import mdtraj as md
import numpy as np
import pandas as pd
from kneed import KneeLocator
from sklearn.cluster import KMeans

from cgpipe import geometry
from cgpipe.data import evenly
from cgpipe.errors import InputError
from cgpipe.geometry import kabsch
from cgpipe.io import TrajectoryData
from cgpipe.mapping.base import MAPPINGS, Mapping, MappingMethod
from cgpipe.mapping.groups import (
    CENTRES,
    atom_masses,
    attach_hydrogens,
    components,
    group_mapping,
    heavy_atoms,
    make_connected,
    neighbours,
)

log = logging.getLogger(__name__)

K = "k"
WCSS = "wcss"
CHOSEN = "chosen"
WCSS_UNIT = "amu nm^2"

_MAX_ALIGN_ROUNDS = 20
_ALIGN_TOLERANCE = 1e-6  # nm, largest move of a mean position between rounds
_MAX_LLOYD_ROUNDS = 100


def superpose(frames: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Frames rotated and translated onto ``reference`` by the weighted Kabsch fit.

    Parameters
    ----------
    frames
        [n_frames, n_atoms, 3] positions, nm.
    reference
        [n_atoms, 3] positions, nm.
    weights
        [n_atoms] fit weights (masses, amu).

    Returns
    -------
    numpy.ndarray
        [n_frames, n_atoms, 3] the superposed frames (nm), each minimising
        sum_i w_i |R x_i + t - y_i|^2 over proper rotations R and translations t.
    """
    target = np.broadcast_to(reference, frames.shape)
    rotation, translation = kabsch(frames, target, weights)
    return geometry.superpose(frames, rotation, translation)


def mean_structure(training: TrajectoryData, max_frames: int) -> np.ndarray:
    """The aligned mean positions of all atoms over at most ``max_frames`` training frames.

    The frames (spread evenly) are superposed, mass-weighted, on the first frame and
    averaged, then on that average and averaged again, until the average moves by less
    than 1e-6 nm (generalised Procrustes superposition).

    Parameters
    ----------
    training
        All-atom frames, [n_frames, n_atoms, 3] nm.
    max_frames
        The most frames used.

    Returns
    -------
    numpy.ndarray
        [n_atoms, 3] mean positions, nm (centred on their centre of mass).
    """
    frames = training.coordinates[evenly(np.arange(len(training.coordinates)), max_frames)]
    frames = frames.astype(np.float64)
    masses = atom_masses(training.topology)
    mean = frames[0] - masses @ frames[0] / masses.sum()
    for _ in range(_MAX_ALIGN_ROUNDS):
        updated = superpose(frames, mean, masses).mean(axis=0)
        shift = np.abs(updated - mean).max()
        mean = updated
        if shift < _ALIGN_TOLERANCE:
            break
    return mean


def _wcss(positions: np.ndarray, masses: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mass-weighted within-cluster sum of squares, amu nm^2, of labels 0 .. k - 1."""
    centroids = _centroids(positions, masses, labels, k)
    return float(masses @ ((positions - centroids[labels]) ** 2).sum(axis=1))


def _centroids(positions: np.ndarray, masses: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """[k, 3] centres of mass of the clusters."""
    total = np.bincount(labels, weights=masses, minlength=k)
    return (
        np.stack(
            [np.bincount(labels, weights=masses * positions[:, d], minlength=k) for d in range(3)],
            axis=1,
        )
        / total[:, None]
    )


def _refine(
    bonded: dict[int, list[int]], positions: np.ndarray, masses: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Lloyd rounds that keep every cluster connected in the bond graph ``bonded``
    (local indices): with the centroids of the round fixed, an atom moves to a bonded
    cluster whose centroid is strictly nearer if its own cluster stays connected (and
    non-empty) without it; then the centroids are recomputed. Every move and every
    recomputation lowers the WCSS, so the rounds end."""
    labels = labels.copy()
    k = int(labels.max()) + 1
    for _ in range(_MAX_LLOYD_ROUNDS):
        centroids = _centroids(positions, masses, labels, k)
        distance = ((positions[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        moved = False
        for atom in range(len(labels)):
            own = labels[atom]
            candidates = sorted({int(labels[o]) for o in bonded[atom] if labels[o] != own})
            if not candidates:
                continue
            best = min(candidates, key=lambda c: (distance[atom, c], c))
            if distance[atom, best] >= distance[atom, own]:
                continue
            rest = [a for a in np.flatnonzero(labels == own).tolist() if a != atom]
            if not rest or len(components(bonded, rest)) > 1:
                continue
            labels[atom] = best
            moved = True
        if not moved:
            break
    return labels


def connected_kmeans(
    topology: md.Topology, positions: np.ndarray, k: int, *, n_init: int, seed: int
) -> tuple[np.ndarray, float]:
    """k connected beads from mass-weighted k-means of the heavy atoms' positions.

    Parameters
    ----------
    topology
        The all-atom topology (bonds included).
    positions
        [n_atoms, 3] positions of all atoms (the aligned mean structure), nm.
    k
        The number of beads, 1 <= k <= the number of heavy atoms.
    n_init
        k-means restarts (the lowest WCSS is kept).
    seed
        Seeds the k-means initial centroids.

    Returns
    -------
    labels : numpy.ndarray
        [n_atoms] bead of each atom, 0 .. k - 1; each hydrogen in its heavy atom's bead.
    wcss : float
        The mass-weighted within-cluster sum of squares of the heavy atoms, amu nm^2.
    """
    heavy = heavy_atoms(topology)
    x, m = positions[heavy].astype(np.float64), atom_masses(topology)[heavy]
    found = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x, sample_weight=m)
    _, local = np.unique(found.labels_, return_inverse=True)
    if local.max() + 1 != k:
        raise InputError(
            f"mapping 'kmeans': k-means found {local.max() + 1} distinct clusters for k = {k} "
            "(heavy atoms share positions in the mean structure)"
        )
    centroids = _centroids(x, m, local, k)
    row = {int(atom): i for i, atom in enumerate(heavy)}

    def nearest(atom: int, candidates: list[int]) -> int:
        distance = ((centroids[candidates] - x[row[atom]]) ** 2).sum(axis=1)
        return candidates[int(np.argmin(distance))]

    labels = np.full(topology.n_atoms, -1, dtype=np.int64)
    labels[heavy] = local
    try:
        labels = make_connected(topology, labels, nearest)
    except ValueError as error:
        raise InputError(
            f"mapping 'kmeans': k = {k} beads cannot all be made connected ({error}); "
            "choose another mapping.kmeans.n_beads or k range"
        ) from error
    bonded_all = neighbours(topology)
    bonded = {i: [row[o] for o in bonded_all[int(a)] if o in row] for i, a in enumerate(heavy)}
    local = _refine(bonded, x, m, labels[heavy])
    labels = attach_hydrogens(topology, {int(a): int(b) for a, b in zip(heavy, local, strict=True)})
    return labels, _wcss(x, m, local, k)


def knee(ks: np.ndarray, wcss: np.ndarray, sensitivity: float) -> tuple[int, str]:
    """The elbow of a decreasing WCSS curve and the rule that found it.

    The first point is the curve's anchor, never chosen: kneedle's difference curve is
    zero there by construction, so an elbow at the second point is only found because the
    first one precedes it.

    Parameters
    ----------
    ks
        [n] increasing numbers of beads, n >= 2.
    wcss
        [n] their within-cluster sums of squares (any unit: kneedle normalises).
    sensitivity
        Kneedle's S.

    Returns
    -------
    k : int
        The kneedle knee (convex, decreasing, ``S = sensitivity``); without one, the k
        of the largest positive kneedle difference (the point farthest below the chord of
        the normalised curve); with no point below the chord, ``ks[1]``, the fewest beads.
    rule : str
        ``"kneedle"``, ``"largest difference"``, ``"no elbow"`` or ``"single k"``.
    """
    ks, wcss = np.asarray(ks), np.asarray(wcss, dtype=np.float64)
    if len(ks) == 2:
        return int(ks[1]), "single k"
    if np.ptp(wcss) == 0.0:  # a flat curve: no reason for more beads
        return int(ks[1]), "no elbow"
    locator = KneeLocator(ks, wcss, S=sensitivity, curve="convex", direction="decreasing")
    if locator.knee is not None and locator.knee != ks[0]:
        return int(locator.knee), "kneedle"
    difference = np.asarray(locator.y_difference)[1:]
    if difference.max() <= 0.0:
        return int(ks[1]), "no elbow"
    return int(ks[1 + int(np.argmax(difference))]), "largest difference"


@MAPPINGS.register("kmeans")
class KMeansMap(MappingMethod):
    """k-means beads of the heavy atoms in the aligned mean structure, made connected; k
    from the elbow of the within-cluster sum of squares unless ``n_beads`` is given.

    Parameters
    ----------
    k_min, k_max
        The range of k scanned by the elbow method (k_max clipped to the heavy atoms).
    n_beads
        The number of beads; ``None`` chooses it by the elbow.
    sensitivity
        The kneedle sensitivity S (larger is more conservative).
    n_init
        k-means restarts per k.
    max_frames
        Training frames (spread evenly) aligned and averaged into the mean structure.
    centre
        ``"mass"`` or ``"geometry"``: where a bead sits.
    """

    fitted = True

    def __init__(
        self,
        *,
        k_min: int = 2,
        k_max: int = 10,
        n_beads: int | None = None,
        sensitivity: float = 1.0,
        n_init: int = 10,
        max_frames: int = 2000,
        centre: str = "mass",
    ) -> None:
        integer = self.integer_option
        self.k_min = integer("k_min", k_min, 2)
        self.k_max = integer("k_max", k_max, 3)
        if self.k_max <= self.k_min:
            raise InputError(
                f"mapping.kmeans.k_max ({self.k_max}) must be larger than "
                f"mapping.kmeans.k_min ({self.k_min})"
            )
        self.n_beads = None if n_beads is None else integer("n_beads", n_beads, 2)
        self.sensitivity = self.number_option("sensitivity", sensitivity, positive=True)
        self.n_init = integer("n_init", n_init, 1)
        self.max_frames = integer("max_frames", max_frames, 1)
        self.centre = self.choice_option("centre", centre, CENTRES)

    def _fit(
        self, topology: md.Topology, training: TrajectoryData | None, seed: int
    ) -> tuple[int, pd.DataFrame, np.ndarray]:
        """(k, elbow table, [n_atoms] labels of the chosen k)."""
        if training is None:
            raise InputError(
                f"mapping {self.name!r} is fitted: it needs the fold's training frames"
            )
        if training.topology.n_atoms != topology.n_atoms:
            raise InputError(
                f"mapping {self.name!r}: the training frames have "
                f"{training.topology.n_atoms} atoms, the topology {topology.n_atoms}"
            )
        if len(training.coordinates) == 0:
            raise InputError(f"mapping {self.name!r}: the fold has no training frames")
        n_heavy = len(heavy_atoms(topology))
        if self.n_beads is not None:
            if self.n_beads > n_heavy:
                raise InputError(
                    f"mapping.kmeans.n_beads ({self.n_beads}) exceeds the {n_heavy} heavy "
                    "atoms of the topology"
                )
            ks, rule, clipped = [self.n_beads], "n_beads", False
        else:
            if self.k_min > n_heavy:
                raise InputError(
                    f"mapping.kmeans.k_min ({self.k_min}) exceeds the {n_heavy} heavy atoms "
                    "of the topology"
                )
            k_max = min(self.k_max, n_heavy)
            clipped = k_max < self.k_max
            if clipped:
                log.info("mapping.kmeans.k_max %d clipped to the %d heavy atoms", self.k_max, k_max)
            # k_min - 1 (the single bead for k_min = 2) anchors the curve: kneedle never
            # chooses a curve's first point, so without it k_min could never be the elbow.
            ks, rule = list(range(self.k_min - 1, k_max + 1)), ""
        mean = mean_structure(training, self.max_frames)
        fits = {k: connected_kmeans(topology, mean, k, n_init=self.n_init, seed=seed) for k in ks}
        wcss = np.array([fits[k][1] for k in ks])
        if self.n_beads is not None:
            chosen = self.n_beads
        else:
            chosen, rule = knee(np.array(ks), wcss, self.sensitivity)
        table = pd.DataFrame(
            {K: np.array(ks, dtype=np.int64), WCSS: wcss, CHOSEN: np.array(ks) == chosen}
        )
        table.attrs.update(
            {
                "rule": rule,
                "sensitivity": self.sensitivity,
                "k_max": self.k_max,
                "n_heavy_atoms": n_heavy,
                "k_max_clipped": clipped,
                "units": {WCSS: WCSS_UNIT},
            }
        )
        log.info("mapping.kmeans: k = %d (%s)", chosen, rule)
        return chosen, table, fits[chosen][0]

    def choose_k(
        self, topology: md.Topology, training: TrajectoryData | None, seed: int
    ) -> tuple[int, pd.DataFrame]:
        """The number of beads: ``n_beads`` if given, else the elbow of WCSS(k).

        Parameters
        ----------
        topology
            The all-atom topology.
        training
            The fold's training frames, positions in nm.
        seed
            Seeds k-means.

        Returns
        -------
        k : int
            The chosen number of beads.
        table : pandas.DataFrame
            One row per k on the curve, k_min - 1 (the anchor) .. k_max, or ``n_beads``
            alone: ``k``, ``wcss`` (amu nm^2), ``chosen`` (one True); its ``attrs``
            record the rule that chose k and whether k_max was clipped.
        """
        k, table, _ = self._fit(topology, training, seed)
        return k, table

    def build(
        self, topology: md.Topology, training: TrajectoryData | None, *, seed: int = 0
    ) -> Mapping:
        k, self.fit_table, labels = self._fit(topology, training, seed)
        mapping = group_mapping(self.name, topology, labels, self.centre)
        if mapping.n_beads != k:
            raise ValueError(f"mapping {self.name!r} built {mapping.n_beads} beads, expected {k}")
        return mapping


def elbow(
    topology: md.Topology,
    training: TrajectoryData,
    *,
    k_min: int,
    k_max: int,
    sensitivity: float,
    n_init: int,
    max_frames: int,
    seed: int,
) -> tuple[int, pd.DataFrame]:
    """The elbow's number of beads and its table (see :meth:`KMeansMap.choose_k`).

    Parameters
    ----------
    topology
        The all-atom topology.
    training
        The fold's training frames, positions in nm.
    k_min, k_max, sensitivity, n_init, max_frames
        The options of the ``mapping.kmeans`` section.
    seed
        Seeds k-means.
    """
    method = KMeansMap(
        k_min=k_min, k_max=k_max, sensitivity=sensitivity, n_init=n_init, max_frames=max_frames
    )
    return method.choose_k(topology, training, seed)
