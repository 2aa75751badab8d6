"""Methods are plug-ins: every registered method has its config section and builds from
config/test.yaml; a toy mapping, a toy model and a toy metric registered here, and only
here, run through mapping -> forces -> train -> simulate -> evaluate -> report without
any change to the package."""

from __future__ import annotations

import copy
import math

import mdtraj as md
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from cgpipe import keys, paths
from cgpipe.backmap import BACKMAPPERS
from cgpipe.config import CONFIG_SCHEMA, MAPPING_SETTINGS, load_config, mapping_fitted
from cgpipe.evaluate import METRICS, EvaluationContext, Metric
from cgpipe.forces import FORCE_MAPS
from cgpipe.io import read_provenance, read_table, read_trajectory
from cgpipe.mapping import MAPPINGS
from cgpipe.mapping.fixed import FixedMapping, bonds_between_centres
from cgpipe.models import MODELS, EnergyModel, Prior
from cgpipe.models.priors import PRIOR_TERMS
from cgpipe.simulate import INTEGRATORS
from cgpipe.train import TRAINERS
from cgpipe.units import thermal_energy
from tests.conftest import REPO

# registry, where its methods' sections are in a configuration, and the key that
# chooses one method where a stage runs exactly one.
KINDS = [
    (MAPPINGS, ("mapping",), None),
    (FORCE_MAPS, ("forces",), "force_map"),
    (MODELS, ("models",), None),
    (TRAINERS, ("trainers",), None),
    (INTEGRATORS, ("simulate",), "integrator"),
    (BACKMAPPERS, ("backmap",), "methods"),
    (METRICS, ("evaluate",), None),
]


def _sections(config: dict, where: tuple[str, ...]) -> dict:
    section = config
    for key in where:
        section = section[key]
    settings = MAPPING_SETTINGS if where == ("mapping",) else ()
    return {
        name: value
        for name, value in section.items()
        if isinstance(value, dict) and name not in settings
    }


@pytest.mark.parametrize(("registry", "where", "choice"), KINDS, ids=lambda k: str(k))
def test_every_registered_method_has_its_schema_section(registry, where, choice):
    """A method is its module, its section of the schema and its tests: no section may be
    missing, and no section may name a method that does not exist."""
    config = load_config(REPO / "config/test.yaml")
    assert set(registry.names()) == set(_sections(config, where)), registry.kind
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())["properties"][where[0]]["properties"]
    if choice is not None:  # one method, or a list of them
        enum = schema[choice].get("enum") or schema[choice]["items"]["enum"]
        assert set(enum) == set(registry.names())


def test_the_schema_says_which_maps_are_fitted_as_their_classes_do():
    # Snakemake decides from the schema (without importing the methods) which maps get an
    # artifact per fold; the stage decides from the class.
    config = load_config(REPO / "config/test.yaml")
    for name in MAPPINGS.names():
        assert mapping_fitted(config, name) == MAPPINGS.get(name).fitted, name


@pytest.mark.parametrize(
    "registry", [MAPPINGS, FORCE_MAPS, TRAINERS, BACKMAPPERS, METRICS], ids=lambda r: r.kind
)
def test_methods_built_from_their_section_alone(registry):
    # Models and integrators take data too (bead types, a fitted prior; forces, masses):
    # their packages' tests build them. These take their section and nothing else.
    config = load_config(REPO / "config/test.yaml")
    where = next(w for r, w, _ in KINDS if r is registry)
    for name, section in _sections(config, where).items():
        assert registry.get(name)(**section).name == name


def test_the_schema_holds_exactly_the_options_the_prior_terms_read():
    # A prior term's options live in train.prior (the prior is fitted once per fold for
    # all its terms); no key may be read by no term, and none may be missing.
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())["properties"]["train"]["properties"]
    read = set().union(*(PRIOR_TERMS.get(name).option_names() for name in PRIOR_TERMS))
    assert read == set(schema["prior"]["properties"])


def test_every_prior_term_builds_from_the_test_config():
    # Alanine dipeptide's backbone_cb graph (C-N-CA(-CB)-C-N): every kind of bead tuple.
    config = load_config(REPO / "config/test.yaml")
    bonds = np.array([[0, 1], [1, 2], [2, 3], [2, 4], [4, 5]])
    template = np.array(
        [[0, 0, 0], [0.13, 0.05, 0], [0.2, 0.16, 0.02], [0.18, 0.22, 0.16], [0.35, 0.13, -0.02],
         [0.42, 0.24, -0.05]]
    )  # fmt: skip
    frames = template + np.random.default_rng(0).normal(scale=0.015, size=(500, 6, 3))
    x = torch.as_tensor(frames, dtype=torch.float64)
    kT = thermal_energy(config["temperature"])
    terms = {}
    for name in PRIOR_TERMS.names():
        cls = PRIOR_TERMS.get(name)
        options = {k: v for k, v in config["train"]["prior"].items() if k in cls.option_names()}
        term = cls.fit(x, bonds, kT, **options)
        assert term.name == name and len(term) > 0, name
        assert torch.isfinite(term.double()(x)).all(), name
        terms[name] = term.hparams
    prior = Prior(terms, config["temperature"])
    assert set(prior.terms) == set(PRIOR_TERMS.names())


def test_an_unknown_method_is_an_input_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'cgshnet'; known: \['cgschnet'"):
        MODELS.get("cgshnet")


# --- three plug-ins that live in this test only ------------------------------------------


class HeavyAtoms(FixedMapping):
    """A bead on every heavy atom, typed by element; hydrogens go with their atom."""

    def centres(self, topology: md.Topology) -> list[int]:
        return [a.index for a in topology.atoms if a.element.symbol != "H"]

    def cg_bonds(self, topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
        return bonds_between_centres(topology, centres)

    def bead_type_name(self, centre: md.core.topology.Atom) -> str:
        return centre.element.symbol


class ScaledPrior(EnergyModel):
    """E = s * prior(z), with one trainable scale s (started at ``scale``)."""

    def __init__(self, bead_types, prior, *, scale: float) -> None:
        super().__init__(bead_types, prior)
        self.record_hparams(scale=float(scale))
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        return self.log_scale.exp() * self.prior(positions)


class MeanRadiusOfGyration(Metric):
    """Per fold: the mean radius of gyration (nm) of the beads over the CG simulation."""

    needs = frozenset({"simulation"})
    captions = {"toy_rg": "Mean radius of gyration of the CG beads (nm)."}

    def __init__(self, *, weighted: bool) -> None:
        self.weighted = weighted

    def rows(self, context: EvaluationContext) -> list[tuple[str, str, float]]:
        def rg(fold: int) -> float:
            x = context.simulation(fold).coordinates
            return float(np.sqrt(((x - x.mean(axis=1, keepdims=True)) ** 2).sum(-1).mean()))

        return self.per_fold(context, "toy_rg", rg)


@pytest.fixture
def plugins():
    """The three toys registered under test-only names, and a config with their sections."""
    registered = [
        (MAPPINGS, "test_heavy", HeavyAtoms),
        (MODELS, "test_scaled_prior", ScaledPrior),
        (METRICS, "test_rg", MeanRadiusOfGyration),
    ]
    for registry, name, cls in registered:
        registry.register(name)(cls)
    cfg = copy.deepcopy(load_config(REPO / "config/test.yaml"))
    cfg["mapping"]["test_heavy"] = {}
    cfg["models"]["test_scaled_prior"] = {"trainer": "force_matching", "scale": 1.0}
    cfg["evaluate"]["test_rg"] = {"weighted": False}
    cfg["evaluate"]["metrics"] = ["test_rg", "stability", "free_energy"]
    cfg["simulate"].update(n_replicas=3, n_steps=40, save_every=10)
    try:
        yield cfg
    finally:
        for registry, name, _ in registered:
            registry.unregister(name)


def test_toy_plugins_run_through_every_stage(plugins, ala2_reference, tmp_path):
    from cgpipe import backmap, evaluate, forces, mapping, report, simulate, train

    cfg = plugins
    mapping_path, cg_path = tmp_path / "heavy.parquet", tmp_path / "cg" / "test_heavy.h5"
    built = mapping.run(ala2_reference, mapping_path, name="test_heavy", cfg=cfg)
    assert built.n_beads == 10  # alanine dipeptide's heavy atoms
    forces.run(ala2_reference, mapping_path, cg_path, cfg=cfg)
    assert read_trajectory(cg_path).forces.shape[1:] == (10, 3)

    folds = []
    for fold in range(cfg["train"]["n_folds"]):
        train_dir, simulate_dir = tmp_path / f"train{fold}", tmp_path / f"simulate{fold}"
        backmap_dir = tmp_path / f"backmap{fold}"
        model = train.run(
            cg_path, mapping_path, train_dir, model="test_scaled_prior", fold=fold, cfg=cfg, seed=3
        )
        assert isinstance(model, ScaledPrior)
        assert read_provenance(train_dir / paths.MODEL_FILE)["config"]["models"] == {
            "test_scaled_prior": cfg["models"]["test_scaled_prior"]
        }
        model_file = train_dir / paths.MODEL_FILE
        simulate.run(model_file, cg_path, mapping_path, simulate_dir, fold=fold, cfg=cfg, seed=4)
        simulation = simulate_dir / paths.TRAJECTORY_FILE
        fitted = tmp_path / f"fitted{fold}"
        backmap.fit(
            ala2_reference, mapping_path, fitted, fold=fold, method="nearest", cfg=cfg, seed=5
        )
        backmap.run(
            simulation,
            fitted / paths.BACKMAPPER_FILE,
            ala2_reference,
            backmap_dir / "nearest",
            fold=fold,
            cfg=cfg,
        )
        backmapped = read_trajectory(backmap_dir / "nearest" / paths.TRAJECTORY_FILE)
        assert backmapped.topology.n_atoms == 22
        folds.append(
            {
                "model": model_file,
                "traj": simulation,
                "health": simulate_dir / paths.HEALTH_FILE,
                "backmap": backmap_dir,
            }
        )

    out = tmp_path / "evaluate"
    table = evaluate.run(
        cg_path, folds, out, system="ala2", mapping="test_heavy", model="test_scaled_prior", cfg=cfg
    )
    toy = table[table[keys.METRIC] == "toy_rg"]
    assert list(toy[keys.FOLD]) == ["fold0", "fold1"]
    assert ((toy[keys.VALUE] > 0.1) & (toy[keys.VALUE] < 0.5)).all()  # nm, a dipeptide
    assert {keys.STABLE_FRACTION, keys.JS_PHI_PSI} <= set(table[keys.METRIC])
    assert keys.FORCE_RMSE_HELDOUT not in set(table[keys.METRIC])  # not in evaluate.metrics
    assert read_table(out / paths.METRICS_FILE).equals(table)
    page = tmp_path / "index.html"
    report.run(page, [out / paths.METRICS_FILE], [out / paths.FES_FILE])
    assert "Mean radius of gyration of the CG beads (nm)." in page.read_text()
    # Every stage wrote the configuration it ran with.
    for written in (mapping_path, cg_path, tmp_path / "train0", tmp_path / "simulate1", out):
        assert paths.resolved_config_path(written).is_file(), written
