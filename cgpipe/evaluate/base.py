"""The metric interface, its registry, and what a metric reads: the evaluation context.

A metric is a class in its own module of :mod:`cgpipe.evaluate` that registers itself::

    @METRICS.register("stability")
    class Stability(Metric):
        needs = frozenset({"health"})
        captions = {keys.STABLE_FRACTION: "Fraction of CG replicas that never failed."}

        def rows(self, context):
            return [(context.label(k), keys.STABLE_FRACTION, ...) for k in context.folds]

The stage builds each metric named in ``evaluate.metrics`` from its section of the
configuration (``METRICS.get(name)(**cfg["evaluate"][name])``) and concatenates their
rows. Units: nm, ps, kJ/mol, kJ/mol/nm; divergences in nats.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.data import split_frames, subset
from cgpipe.errors import InputError
from cgpipe.evaluate.statistics import Resampling, design_resampling
from cgpipe.io import TrajectoryData, read_table, read_trajectory
from cgpipe.models import load_model
from cgpipe.observables import (
    Projection,
    States,
    Tica,
    choose_projection,
    choose_states,
    fit_tica,
    tica_projection,
)
from cgpipe.paths import BACKMAP_TABLE_FILE
from cgpipe.registry import Registry

# What a metric may read (its ``needs``) -> the key of that file in a fold's paths
# (``None``: the CG reference, shared by every fold).
FOLD_FILES: dict[str, str | None] = {
    "reference": None,
    "simulation": "traj",
    "model": "model",
    "health": "health",
    "backmap": "backmap",
    "samples": "samples",
}
SAMPLINGS = ("dynamics", "iid")
"""How a model's frames were drawn: by dynamics (replicas in time, after burn-in), or
i.i.d. (independent draws, e.g. by reverse diffusion; each draw its own trajectory)."""


class EvaluationContext:
    """What metrics read: the CG reference and, per fold, that fold's artifacts.

    Every fold artifact is read on first use and kept, so a metric loads only what it
    needs and each file is read once however many metrics use it. While a metric runs
    (:meth:`serving`), reading something outside its ``needs`` is an error, so that
    ``needs`` stays true.

    Parameters
    ----------
    reference
        The CG reference: every trajectory, labelled by ``trajectory_index``; positions in
        nm, forces in kJ/mol/nm where the data has them.
    folds
        ``folds[k]``: the paths of fold k's files, keyed ``model`` (checkpoint), ``traj``
        (CG simulation), ``health`` (one row per replica) and ``backmap`` (the folder
        holding a folder per backmapper, each with its table of one row per backmapped
        structure). Only the files some metric reads need to exist.
    n_folds
        Cross-validation folds (``train.n_folds``); ``len(folds)`` must equal it.
    kT
        Thermal energy in kJ/mol.
    bins
        Bins per axis of the 2-D histograms of the projection.
    reference_path
        Where ``reference`` was read from (recorded as an input).
    seed
        Seeds the resampling of metrics that draw (bootstrap intervals, noise floors).
    burn_in
        Fraction (0-1) of the CG simulation's length discarded from the start of every
        replica: :meth:`simulation` holds the frames after it (the production).
    tica_lag
        Lag time (ps) of the TICA fitted on the reference's trajectories.
    only
        The one fold scored, for a map fitted per fold: its reference is that fold's CG
        data, which the other folds do not share (None: every fold, one shared reference).
    backmappers
        The backmappers (``backmap.methods``) whose tables :meth:`backmap` reads.
    sampling
        Which of the model's samples :meth:`simulation` holds (:data:`SAMPLINGS`):
        ``dynamics``, the simulation's production (``traj``, after burn-in, with the
        health table's replicas and starts), or ``iid``, every i.i.d. draw (``samples``;
        no burn-in, each draw resampled on its own, no start set and so no echo).
    """

    def __init__(
        self,
        reference: TrajectoryData,
        folds: Sequence[Mapping[str, str | os.PathLike[str]]],
        *,
        n_folds: int,
        kT: float,
        bins: int,
        reference_path: str | os.PathLike[str] | None = None,
        seed: int = 0,
        burn_in: float = 0.0,
        tica_lag: float = 1.0,
        only: int | None = None,
        sampling: str = "dynamics",
        backmappers: Sequence[str] = (),
    ) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.sampling = sampling
        self.backmappers = list(backmappers)
        if only is not None and not 0 <= only < n_folds:
            raise InputError(f"fold {only} is outside 0..{n_folds - 1}")
        self.only = only
        if len(folds) != n_folds:
            raise InputError(f"train.n_folds={n_folds} but {len(folds)} folds were given")
        self._reference = reference
        self._paths = [{key: Path(path) for key, path in fold.items()} for fold in folds]
        self.n_folds = n_folds
        self.kT = kT
        self.bins = bins
        self.seed = seed
        if not 0 <= burn_in < 1:
            raise InputError(f"burn_in must be in [0, 1), got {burn_in}")
        self.burn_in = burn_in
        self.tica_lag = tica_lag
        self.projection: Projection = choose_projection(reference)
        self._reference_path = reference_path
        self._cache: dict[tuple[str, int], Any] = {}
        self._reference_values: np.ndarray | None = None
        self._read: list[tuple[int, str]] = []  # (fold, file key) of every fold file read
        self._serving: tuple[str, frozenset[str]] | None = None

    # --- the reference ------------------------------------------------------------------
    @property
    def reference(self) -> TrajectoryData:
        """The CG reference (all trajectories)."""
        self._check("reference")
        return self._reference

    @property
    def reference_values(self) -> np.ndarray:
        """[n_frames, 2] projection of every reference frame (rad or nm)."""
        self._check("reference")
        if self._reference_values is None:
            self._reference_values = self.projection.compute(self._reference)
        return self._reference_values

    def heldout_frames(self, fold: int) -> np.ndarray:
        """Frame indices into :attr:`reference` of the trajectories held out in ``fold``."""
        self._check("reference")
        return self._cached(
            "heldout",
            fold,
            lambda: split_frames(self._reference.trajectory_index, self.n_folds, fold)[1],
        )

    # --- per fold ---------------------------------------------------------------------------
    @property
    def folds(self) -> range:
        """Fold numbers scored: 0 … n_folds - 1, or the one fold :attr:`only`."""
        return range(self.n_folds) if self.only is None else range(self.only, self.only + 1)

    @staticmethod
    def label(fold: int) -> str:
        """The ``fold`` column's value for rows of ``fold``."""
        return f"fold{fold}"

    def simulation(self, fold: int) -> TrajectoryData:
        """The production part of ``fold``'s CG simulation: every replica's frames after
        the first :attr:`burn_in` of the run (by time; the run's length is the latest
        frame's time); labelled by replica; may have no frames. For ``sampling="iid"``:
        every i.i.d. draw of the fold, labelled by draw."""
        if self.sampling == "iid":
            return self._load("simulation", fold, read_trajectory, key="samples")
        return self._load("simulation", fold, self._production)

    def draws(self, fold: int) -> TrajectoryData:
        """``fold``'s i.i.d. draws (each its own trajectory of one frame)."""
        return self._load("samples", fold, read_trajectory)

    def has(self, key: str, fold: int) -> bool:
        """Whether ``fold`` was given a file under ``key`` (e.g. ``samples``)."""
        return key in self._paths[fold]

    def _production(self, path: Path) -> TrajectoryData:
        full = read_trajectory(path)
        if not full.n_frames:
            return full
        save_times = _save_times(full)
        start = self.burn_in * (save_times[-1] if len(save_times) else full.time.max())
        return subset(full, np.flatnonzero(full.time > start))

    def sample(self, fold: int) -> CGSample:
        """``fold``'s production as it is scored: the frames saved, and the frames each
        failed replica did not live to save (escaped), with every replica's start."""

        def build() -> CGSample:
            simulation = self.simulation(fold)
            if self.sampling == "iid":
                return CGSample.independent(simulation.trajectory_index)
            health = self.health(fold).sort_values(keys.REPLICA)
            replicas = health[keys.REPLICA].to_numpy(dtype=np.int64)
            save_times = _save_times(simulation)
            if len(save_times):
                length = int(np.sum(save_times > self.burn_in * save_times[-1]))
            else:
                length = int(np.bincount(simulation.trajectory_index).max(initial=0))
            saved = np.bincount(
                np.searchsorted(replicas, simulation.trajectory_index), minlength=len(replicas)
            )
            return CGSample(
                replicas=replicas,
                frame_replicas=simulation.trajectory_index.astype(np.int64),
                escaped=np.maximum(length - saved, 0),
                start_frames=health[keys.START_FRAME].to_numpy(dtype=np.int64),
                start_groups=health[keys.START_STATE].astype(str).to_numpy(),
                length=length,
            )

        return self._cached("sample", fold, build)

    def training_frames(self, fold: int) -> np.ndarray:
        """Frame indices into :attr:`reference` of the trajectories ``fold`` trained on."""
        self._check("reference")
        return self._cached(
            "training",
            fold,
            lambda: split_frames(self._reference.trajectory_index, self.n_folds, fold)[0],
        )

    def start_frames(self, fold: int) -> np.ndarray:
        """[n_frames of :meth:`simulation`] the reference frame each frame's replica
        started from (the echo baseline: a model that never leaves its start)."""
        simulation = self.simulation(fold)
        health = self.health(fold)
        start = health.set_index(keys.REPLICA)[keys.START_FRAME]
        return start.loc[simulation.trajectory_index].to_numpy(dtype=np.int64)

    # --- TICA, projections and states ------------------------------------------------------
    def tica(self, fold: int | None) -> Tica:
        """TICA of the reference's training trajectories of ``fold`` (None: of every
        reference trajectory), at :attr:`tica_lag`."""
        self._check("reference")

        def fit() -> Tica:
            if fold is None:
                return fit_tica(self._reference, self.tica_lag)
            train, _ = split_frames(self._reference.trajectory_index, self.n_folds, fold)
            return fit_tica(subset(self._reference, train), self.tica_lag)

        return self._cached("tica", -1 if fold is None else fold, fit)

    def projections(self, fold: int | None) -> list[Projection]:
        """The projections on which ``fold`` (None: every fold pooled) is compared: the
        2-D :attr:`projection` and the first two TICA components of :meth:`tica`."""
        key = -1 if fold is None else fold
        return self._cached(
            "projections",
            key,
            lambda: [self.projection, tica_projection(self.tica(fold), self._reference)],
        )

    def reference_projected(self, projection: Projection) -> np.ndarray:
        """[n_frames, 2] the reference on ``projection``."""
        self._check("reference")
        if projection is self.projection:
            return self.reference_values
        return self._cached(
            ("reference", id(projection)), 0, lambda: projection.compute(self._reference)
        )

    def simulation_projected(self, fold: int, projection: Projection) -> np.ndarray:
        """[n_frames, 2] ``fold``'s production frames on ``projection``."""
        if projection is self.projection:
            return self.simulation_values(fold)
        simulation = self.simulation(fold)
        return self._cached(
            ("simulation", id(projection)),
            fold,
            lambda: projection.compute(simulation) if simulation.n_frames else np.empty((0, 2)),
        )

    @property
    def states(self) -> States:
        """The system's states (:func:`cgpipe.observables.choose_states`; TICA states from
        every reference trajectory)."""
        self._check("reference")
        # States from phi/psi need no TICA; otherwise the pooled one is reused.
        tica = (lambda: None) if self.projection.name == "phi_psi" else (lambda: self.tica(None))
        return self._cached(
            "states", -1, lambda: choose_states(self._reference, self.tica_lag, tica())
        )

    def reference_states(self) -> np.ndarray:
        """[n_frames] the state of every reference frame (index into :attr:`states`)."""
        return self._cached("reference_states", -1, lambda: self.states.assign(self.reference))

    def simulation_states(self, fold: int) -> np.ndarray:
        """[n_frames] the state of every production frame of ``fold``."""
        simulation = self.simulation(fold)
        return self._cached("simulation_states", fold, lambda: self.states.assign(simulation))

    def simulation_values(self, fold: int) -> np.ndarray:
        """[n_frames, 2] projection of ``fold``'s simulation (needs frames)."""
        simulation = self.simulation(fold)
        return self._cached(
            "simulation_values",
            fold,
            lambda: (
                self.projection.compute(simulation) if simulation.n_frames else np.empty((0, 2))
            ),
        )

    def model(self, fold: int) -> Any:
        """``fold``'s trained model (:func:`cgpipe.models.load_model`)."""
        return self._load("model", fold, load_model)

    def health(self, fold: int) -> pd.DataFrame:
        """``fold``'s simulation health table (one row per replica)."""
        return self._load("health", fold, read_table)

    def health_path(self, fold: int) -> Path:
        """The path of ``fold``'s health table (its provenance records the run's settings
        and, for parallel tempering, the exchanges)."""
        self._check("health")
        return self._paths[fold][FOLD_FILES["health"]]

    def backmap(self, fold: int) -> dict[str, pd.DataFrame]:
        """``fold``'s backmapping tables (one row per backmapped structure), by backmapper."""

        def read(folder: Path) -> dict[str, pd.DataFrame]:
            return {
                name: read_table(folder / name / BACKMAP_TABLE_FILE) for name in self.backmappers
            }

        return self._load("backmap", fold, read)

    # --- helpers --------------------------------------------------------------------------
    @property
    def edges(self) -> list[np.ndarray]:
        """Bin edges of each projected variable: ``bins`` bins over its range."""
        return [np.linspace(low, high, self.bins + 1) for low, high in self.projection.ranges]

    def rng(self, name: str) -> np.random.Generator:
        """A random generator of its own for the metric ``name``, from the seed."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    @property
    def inputs(self) -> list[str]:
        """The files read so far: the reference, then each fold's in fold order."""
        order = [key for key in FOLD_FILES.values() if key is not None]
        read = sorted(set(self._read), key=lambda item: (item[0], order.index(item[1])))
        files = []
        for fold, key in read:
            path = self._paths[fold][key]
            if key == FOLD_FILES["backmap"]:  # a folder: the backmappers' tables in it
                files += [os.fspath(path / name / BACKMAP_TABLE_FILE) for name in self.backmappers]
            else:
                files.append(os.fspath(path))
        if self._reference_path is not None:
            files.insert(0, os.fspath(self._reference_path))
        return files

    @contextlib.contextmanager
    def serving(self, metric: Metric) -> Iterator[EvaluationContext]:
        """Within the block, only what ``metric.needs`` names may be read."""
        self._serving = (metric.name, metric.needs)
        try:
            yield self
        finally:
            self._serving = None

    def _check(self, need: str) -> None:
        if self._serving is not None and need not in self._serving[1]:
            name, needs = self._serving
            raise RuntimeError(f"metric {name!r} reads {need!r} but needs only {sorted(needs)}")

    def _cached(self, what: Any, fold: int, compute: Any) -> Any:
        if (what, fold) not in self._cache:
            self._cache[what, fold] = compute()
        return self._cache[what, fold]

    def _load(self, need: str, fold: int, reader: Any, key: str | None = None) -> Any:
        self._check(need)
        if not 0 <= fold < self.n_folds:
            raise IndexError(f"fold {fold} is outside 0..{self.n_folds - 1}")
        key = FOLD_FILES[need] if key is None else key
        if (need, fold) not in self._cache:
            if key not in self._paths[fold]:
                raise InputError(f"fold {fold}: no {key!r} file given (needed for {need})")
            self._cache[need, fold] = reader(self._paths[fold][key])
            self._read.append((fold, key))
        return self._cache[need, fold]


def _save_times(trajectory: TrajectoryData) -> np.ndarray:
    """The times (ps) at which a replica that never failed saved a frame, from the
    simulation's provenance (``n_steps``, ``save_every``, ``timestep``); empty where it
    does not say."""
    config = trajectory.provenance.get("config", {}) if trajectory.provenance else {}
    try:
        every = int(config["save_every"])
        n_saves = int(config["n_steps"]) // every
        return (np.arange(n_saves) + 1) * every * float(config["timestep"])
    except (KeyError, TypeError, ValueError):
        return np.empty(0)


@dataclasses.dataclass(frozen=True)
class CGSample:
    """One fold's CG production as scored: the frames saved, and the frames lost.

    Attributes
    ----------
    replicas
        [n_replicas] replica numbers, as in the health table.
    frame_replicas
        [n_saved] the replica of each saved production frame (in the simulation's order:
        replica by replica, in time).
    escaped
        [n_replicas] production frames each replica did not save because it failed
        (0 for a replica that ran to the end).
    start_frames, start_groups
        [n_replicas] the reference frame each replica started from, and its start state;
        ``start_frames`` is None for i.i.d. draws, which start from nothing.
    length
        Production frames of a replica that ran to the end.
    """

    replicas: np.ndarray
    frame_replicas: np.ndarray
    escaped: np.ndarray
    start_frames: np.ndarray | None
    start_groups: np.ndarray
    length: int

    @classmethod
    def independent(cls, draws: np.ndarray) -> CGSample:
        """I.i.d. draws [n] (labels): each its own replica of one frame, none lost, no
        start, one group."""
        draws = np.asarray(draws, dtype=np.int64)
        return cls(
            replicas=draws,
            frame_replicas=draws,
            escaped=np.zeros(len(draws), dtype=np.int64),
            start_frames=None,
            start_groups=np.full(len(draws), "iid"),
            length=1,
        )

    @property
    def labels(self) -> np.ndarray:
        """[n_saved + n_escaped] the replica of every scored frame: the saved frames, then
        each replica's escaped ones."""
        return np.concatenate([self.frame_replicas, np.repeat(self.replicas, self.escaped)])

    def values(self, saved: np.ndarray) -> np.ndarray:
        """[n_saved + n_escaped, d] the saved frames' values, then a NaN row per escaped
        frame (:class:`~cgpipe.evaluate.comparison.Binned` counts them apart)."""
        saved = np.asarray(saved, dtype=float)
        saved = saved[:, None] if saved.ndim == 1 else saved
        if len(saved) != len(self.frame_replicas):
            raise ValueError(f"{len(saved)} values for {len(self.frame_replicas)} saved frames")
        lost = np.full((int(self.escaped.sum()), saved.shape[1]), np.nan)
        return np.concatenate([saved, lost])

    def echo_frames(self) -> np.ndarray | None:
        """[n_replicas * length] reference frames of the echo baseline: every replica on
        its start frame for the whole production (a model that never moves never fails);
        None for i.i.d. draws, which have no start to echo."""
        if self.start_frames is None:
            return None
        return np.repeat(self.start_frames, self.length)

    def echo(self, values: np.ndarray) -> np.ndarray | None:
        """The echo baseline's rows of ``values`` (one row per reference frame), or None
        for i.i.d. draws."""
        frames = self.echo_frames()
        return None if frames is None else values[frames]

    def resampling(self, *, escaped: bool = True) -> Resampling:
        """The bootstrap by design of the scored frames (``escaped``: the saved frames
        then the escaped ones, as :meth:`values` orders them; else the saved frames
        alone): replicas within start groups, by start frame where starts repeat."""
        labels = self.labels if escaped else self.frame_replicas
        index = np.searchsorted(self.replicas, labels)
        # I.i.d. draws: each its own cluster (the ordinary bootstrap, n - 1 of n drawn).
        starts = labels if self.start_frames is None else self.start_frames[index]
        return design_resampling(labels, self.start_groups[index], starts)


class Metric:
    """One kind of score of a model against the reference.

    Subclasses register themselves with ``@METRICS.register(name)`` and set:

    Attributes
    ----------
    name
        The registered name (set by the registry), also the metric's config section.
    needs
        What :meth:`rows` reads from the context: any of ``"reference"`` (the CG
        reference, its projection and held-out frames), ``"simulation"``, ``"model"``,
        ``"health"``, ``"backmap"``, ``"samples"`` (per-fold artifacts).
    samplings
        The samplings (:data:`SAMPLINGS`) the metric scores: a metric of the sampled
        ensemble alone (divergences, populations) scores i.i.d. draws as well, where the
        model has them, in a context whose :meth:`~EvaluationContext.simulation` holds
        them (the stage prefixes those rows ``iid_``); burn-in, relaxation, stability and
        the start-set check are of dynamics only.
    captions
        Every metric name its rows may carry -> one sentence saying what it is, with its
        units (shown in the report).

    The constructor takes the metric's config section (``evaluate.<name>``) as keyword
    arguments, and nothing else.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset()
    samplings: ClassVar[frozenset[str]] = frozenset({"dynamics"})
    captions: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.needs) - set(FOLD_FILES)
        if unknown:
            raise TypeError(
                f"{cls.__qualname__}.needs names {sorted(unknown)}; known: {list(FOLD_FILES)}"
            )

    def __init__(self) -> None:
        pass

    def caption(self, metric: str) -> str | None:
        """The caption of a metric name its rows may carry, None for a name it never gives
        (a metric whose names depend on the data, such as one per state, overrides this)."""
        return self.captions.get(metric)

    def rows(self, context: EvaluationContext) -> list[MetricRow | tuple[str, str, float]]:
        """(fold, metric, value[, low, high]) rows: ``fold`` is ``context.label(k)`` for a
        fold's row or :data:`cgpipe.keys.ALL_FOLDS` for a row that depends on no fold;
        ``metric`` a key of :attr:`captions`; ``value`` in the caption's units, with its
        95 % interval where the metric has one (:class:`MetricRow`)."""
        raise NotImplementedError

    @staticmethod
    def per_fold(
        context: EvaluationContext, metric: str, value: Callable[[int], float]
    ) -> list[tuple[str, str, float]]:
        """One ``metric`` row per fold, valued ``value(fold)``."""
        return [(context.label(fold), metric, float(value(fold))) for fold in context.folds]


class MetricRow(NamedTuple):
    """One row of the metrics table: a value and, where it has one, its 95 % interval."""

    fold: str
    metric: str
    value: float
    low: float = float("nan")
    high: float = float("nan")


METRICS: Registry[type[Metric]] = Registry("metric", "cgpipe.evaluate")
