import pytest

from cgpipe.config import ConfigError, load_config, load_systems
from tests.conftest import REPO


@pytest.mark.parametrize("name", ["config/config.yaml", "config/test.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(REPO / name)
    assert config["train"]["n_folds"] <= config["reference"]["n_trajectories"]


def test_defaults_are_filled():
    config = load_config(None)
    assert config["temperature"] == 300.0
    assert config["train"]["cgschnet"]["cutoff"] > 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train": {"epochs": 3, "epoch": 3}}, r"train: .*'epoch' was unexpected"),
        ({"temperature": "hot"}, r"temperature: 'hot' is not of type 'number'"),
        ({"simulate": {"timestep": -0.1}}, r"simulate.timestep: -0.1 is less than or equal"),
        ({"reference": {"constraints": "Bonds"}}, r"reference.constraints: 'Bonds' is not one of"),
    ],
)
def test_bad_configuration_names_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(override)


def test_systems_sheet(tmp_path):
    systems = load_systems(REPO / "config/systems.tsv")
    assert "ala2" in systems.index
    bad = tmp_path / "systems.tsv"
    bad.write_text("system\tstructure\tmappings\nala 2\tx.pdb\tbackbone\n")
    with pytest.raises(ConfigError, match=r"(?s)line 2.*system"):
        load_systems(bad)
    bad.write_text("system\tstructure\tmappings\nala2\tx.pdb\tbeads\n")
    with pytest.raises(ConfigError, match=r"(?s)line 2.*mappings"):
        load_systems(bad)
