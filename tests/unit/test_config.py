import pytest

from cgpipe.config import ConfigError, load_config, load_systems, system_config
from tests.conftest import ALA2, REPO

SHIPPED = ["config/config.yaml", "config/test.yaml"] + sorted(
    str(p.relative_to(REPO)) for p in (REPO / "config/examples").glob("*.yaml")
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_and_their_systems_validate(name):
    config = load_config(REPO / name)
    systems = load_systems(REPO / config["systems"])
    for _, row in systems.iterrows():
        resolved = system_config(config, row)
        assert config["train"]["n_folds"] <= resolved["reference"]["n_trajectories"]


def test_defaults_are_filled():
    config = load_config(None)
    assert config["temperature"] == 300.0
    assert config["models"]["cgschnet"]["cutoff"] > 0
    assert config["models"]["cgschnet"]["trainer"] in config["trainers"]


def test_a_job_receives_only_its_methods_sections():
    from cgpipe.config import job_config

    config = load_config(REPO / "config/test.yaml")
    train = job_config(config, "train", model="prior")
    assert set(train["models"]) == {"prior"} and set(train["trainers"]) == {"force_matching"}
    assert "models" not in train["train"]  # choosing jobs, not shaping them
    assert set(job_config(config, "mapping", mapping="calpha")["mapping"]) == {"calpha"}
    simulate = job_config(config, "simulate")["simulate"]
    assert simulate["integrator"] in simulate and simulate["n_replicas"] == 4
    assert job_config(config, "reference")["reference"].get("n_trajectories") is None


def test_an_evaluation_learns_only_whether_its_model_is_backmapped():
    from cgpipe.config import job_config

    config = load_config(REPO / "config/test.yaml")
    config["backmap"]["models"] = ["cgschnet"]
    assert job_config(config, "evaluate", model="cgschnet")["backmap"]["models"] == ["cgschnet"]
    assert job_config(config, "evaluate", model="prior")["backmap"]["models"] == []
    assert "models" not in job_config(config, "backmap", backmapper="flow")["backmap"]
    config["backmap"]["models"] = None  # every model
    assert job_config(config, "evaluate", model="prior")["backmap"]["models"] is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"trainers": {"force_matching": {"epochs": 3, "epoch": 3}}},
            r"trainers.force_matching: .*'epoch' was unexpected",
        ),
        ({"models": {"cgschnet": {"width": 3}}}, r"models.cgschnet: .*'width' was unexpected"),
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
    bad.write_text(f"system\tstructure\tmappings\nala2\t{ALA2}\tback bone\n")
    with pytest.raises(ConfigError, match=r"(?s)line 2.*mappings"):
        load_systems(bad)
    bad.write_text(f"system\tstructure\tmappings\nala2\t{ALA2}\tbeads\n")
    with pytest.raises(
        ConfigError, match=r"system ala2: mapping 'beads' .* known: \['autograin', 'backbone'"
    ):
        system_config(load_config(None), load_systems(bad).loc["ala2"])


def _sheet(tmp_path, text):
    path = tmp_path / "systems.tsv"
    path.write_text(text)
    return path


def test_the_sheet_overrides_the_config_per_system(tmp_path):
    sheet = _sheet(
        tmp_path,
        "system\tsequence\tmappings\ttemperature\tsolvent\tn_steps\tforcefield\n"
        "cln\tGYDPETGTWG\tcalpha\t340\ttip3p\t1000\tamber14-all.xml\n"
        "ala2\tGA\tbackbone\t\t\t\t\n",
    )
    systems = load_systems(sheet)
    config = load_config(None)
    cln = system_config(config, systems.loc["cln"])
    assert cln["temperature"] == 340.0 and cln["reference"]["solvent"] == "tip3p"
    assert cln["reference"]["n_steps"] == 1000
    assert cln["reference"]["forcefield"] == ["amber14-all.xml"]
    ala2 = system_config(config, systems.loc["ala2"])
    assert ala2["temperature"] == 300.0 and ala2["reference"] == config["reference"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "system\tsequence\tmappings\nx\tGYB\tcalpha\n",
            r"line 2, column 'sequence': 'B' at position 3",
        ),
        ("system\tmappings\nx\tcalpha\n", r"line 2: source openmm needs exactly one of"),
        (
            "system\tstructure\tsequence\tmappings\nx\ta.pdb\tGG\tcalpha\n",
            "exactly one of",
        ),
        ("system\tsource\tmappings\nx\tmdcath\tcalpha\n", "needs the column dataset"),
        (
            "system\tsource\tdataset\tmappings\nx\tmdcath\t1r9lA02\tcalpha\n",
            r"temperature column, one of the dataset's \[320",
        ),
        (
            "system\tsource\tdataset\tmappings\nx\tmdshare\tbpti\tcalpha\n",
            "unknown mdshare dataset 'bpti'",
        ),
        (
            "system\tsequence\tmappings\tn_steps\nx\tGG\tcalpha\tmany\n",
            "'n_steps' must be a integer",
        ),
        ("system\tsequence\tmappings\tsolvent\nx\tGG\tcalpha\twater\n", r"solvent: 'water'"),
    ],
)
def test_bad_systems_sheet_names_line_and_column(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_systems(_sheet(tmp_path, text))


def test_downloaded_datasets_bound_their_trajectories(tmp_path):
    sheet = _sheet(
        tmp_path,
        "system\tsource\tdataset\tmappings\tn_trajectories\ttemperature\n"
        "ala2\tmdshare\talanine-dipeptide\tbackbone\t\t\n"
        "dom\tmdcath\t1r9lA02\tcalpha\t5\t348\n",
    )
    systems = load_systems(sheet)
    config = load_config(None)
    with pytest.raises(ConfigError, match="the mdshare dataset has 3"):
        system_config(config, systems.loc["ala2"])
    three = load_config(
        {"reference": {"n_trajectories": 3}, "train": {"n_folds": 3, "models": ["prior"]}}
    )
    assert system_config(three, systems.loc["ala2"])["temperature"] == 300.0
    # Positions only: a model trained by force matching cannot use them.
    three["train"]["models"] = ["cgschnet", "prior"]
    with pytest.raises(ConfigError, match=r"positions only, but train.models \['cgschnet'\]"):
        system_config(three, systems.loc["ala2"])
    assert system_config(config, systems.loc["dom"])["temperature"] == 348.0


def test_a_missing_structure_file_is_refused_naming_line_and_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = _sheet(
        tmp_path,
        "system\tstructure\tmappings\n"
        "ala2\topenmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb\tbackbone\n"
        "gone\tmissing.pdb\tbackbone\n",
    )
    with pytest.raises(ConfigError) as refused:
        load_systems(sheet)
    assert str(refused.value) == f"{sheet}, line 3, column 'structure': no file at missing.pdb"
    sheet.write_text("system\tstructure\tmappings\nx\tno_such_package_cgpipe:data/x.pdb\tcalpha\n")
    with pytest.raises(ConfigError, match=r"line 2, column 'structure': package 'no_such_packa"):
        load_systems(sheet)


def test_a_relative_structure_path_is_taken_from_the_current_directory(tmp_path, monkeypatch):
    # Snakemake runs from the workflow directory, where the sheet's paths start.
    sheet = _sheet(tmp_path, "system\tstructure\tmappings\nx\tinputs/x.pdb\tcalpha\n")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "x.pdb").write_text("ATOM\n")
    monkeypatch.chdir(tmp_path)
    assert load_systems(sheet.name).loc["x", "structure"] == "inputs/x.pdb"
    monkeypatch.chdir(tmp_path / "inputs")
    with pytest.raises(ConfigError, match="no file at inputs/x.pdb"):
        load_systems(tmp_path / sheet.name)


def test_sheet_errors_count_comment_and_blank_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = _sheet(
        tmp_path,
        "# the systems of a study\nsystem\tstructure\tmappings\n\n# built next\n"
        "gone\tmissing.pdb\tbackbone\n",
    )
    with pytest.raises(ConfigError, match=r"line 5, column 'structure'"):
        load_systems(sheet)


def test_a_config_that_does_not_parse_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"given as JSON: not valid JSON"):
        load_config('{"seed": ')
    broken = tmp_path / "broken.yaml"
    broken.write_text("reference:\n  forcefield: [amber14-all.xml\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML \(.*\)$"):
        load_config(broken)
