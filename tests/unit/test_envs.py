"""Conda environments per rule group (envs/*.yaml, for --software-deployment-method conda).

Every rule that runs a command names one; each pins what pyproject.toml says (the core
dependencies plus the extra of the env's name, in conda-forge's names) with an interpreter
that requires-python allows; and each group's commands import, and the first stages run,
without the packages that only the other groups' environments have (torch for the
reference group, OpenMM for the torch group); Snakemake itself plans the workflow without
torch.

The rules are read through Snakemake's own API, in a subprocess so that parsing the
workflow leaves this interpreter alone.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ALA2, REPO

ENVS = REPO / "envs"
ENV_NAMES = sorted(path.stem for path in ENVS.glob("*.yaml"))
# conda-forge's names of the packages that PyPI names otherwise.
CONDA_TO_PIP = {"pytorch": "torch", "pytorch_geometric": "torch-geometric", "pytables": "tables"}
# What an environment lists beyond pyproject.toml: the interpreter, and pip to install
# cgpipe itself.
TOOLS = {"python", "pip"}

# Makes the modules named in argv[1] (a JSON list) impossible to import, as in an
# environment without their packages.
_ABSENT = """
import importlib.abc, json, sys

ABSENT = set(json.loads(sys.argv[1]))


class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (not in this environment)",
                                      name=name)
        return None


sys.meta_path.insert(0, Absent())
"""

_RULES = (
    _ABSENT
    + """
import os
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import OutputSettings, ResourceSettings

settings = OutputSettings(quiet={Quietness.ALL}, enable_file_logging=False)
with SnakemakeApi(settings) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(cores=1), snakefile=Path("Snakefile"), workdir=Path(".")
    )._workflow
    rules = [
        {
            "name": rule.name,
            "snakefile": str(rule.snakefile),
            "conda": rule.conda_env,
            "runs": any(
                (rule.is_shell, rule.is_run, rule.is_script, rule.is_notebook,
                 rule.is_wrapper, rule.is_cwl)
            ),
            "shell": rule.shellcmd if rule.is_shell else None,
        }
        for rule in workflow.rules
    ]
print(json.dumps({"rules": rules, "source": os.environ.get("CGPIPE_SOURCE")}))
"""
)

# With _ABSENT's modules absent, either checks commands (`check CMD...`: each one's
# --help, the modules its function imports, and every registry those reach, which imports
# every method) or runs one (`run ARGS...`).
_WITHOUT = (
    _ABSENT
    + """
import ast, importlib, inspect, textwrap

from cgpipe import cli
from cgpipe.registry import Registry


def check(command):
    try:
        cli.main([command, "--help"])
    except SystemExit as done:
        assert done.code == 0, f"cgpipe {command} --help exited with {done.code}"
    functions = {
        info.name or info.callback.__name__.replace("_", "-"): info.callback
        for info in cli.app.registered_commands
    }
    tree = ast.parse(textwrap.dedent(inspect.getsource(functions[command])))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    importlib.import_module(f"{node.module}.{alias.name}")


def discover_registries():
    seen = set()
    while True:
        registries = [
            value
            for name, module in list(sys.modules.items())
            if name.startswith("cgpipe") and module is not None
            for value in list(vars(module).values())
            if isinstance(value, Registry) and id(value) not in seen
        ]
        if not registries:
            return
        for registry in registries:
            seen.add(id(registry))
            registry.names()


if sys.argv[2] == "check":
    for command in sys.argv[3:]:
        check(command)
    discover_registries()
else:
    try:
        cli.main(sys.argv[3:])
    except SystemExit as done:
        sys.exit(done.code)
"""
)


def _parse_workflow(absent: list[str]) -> subprocess.CompletedProcess:
    """Snakemake's parse of the workflow with ``absent`` modules absent: its rules, and the
    checkout it tells the environments to install."""
    env = {k: v for k, v in os.environ.items() if k != "CGPIPE_SOURCE"}  # the workflow's own
    return subprocess.run(
        [sys.executable, "-c", _RULES, json.dumps(absent)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


@functools.cache
def _workflow() -> dict:
    done = _parse_workflow([])
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def _rules() -> list[dict]:
    return _workflow()["rules"]


def _env_of(rule: dict) -> Path:
    return (Path(rule["snakefile"]).parent / rule["conda"]).resolve()


def _commands(env: str) -> list[str]:
    """The cgpipe commands of the rules that run in ``env``."""
    commands = set()
    for rule in _rules():
        if rule["conda"] and _env_of(rule) == (ENVS / f"{env}.yaml").resolve():
            match = re.match(r"cgpipe (\S+)", rule["shell"] or "")
            assert match, (
                f"rule {rule['name']} runs no `cgpipe <command>`: say here what it imports"
            )
            commands.add(match[1])
    return sorted(commands)


@functools.cache
def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]


def _requirements(env: str) -> dict[str, SpecifierSet]:
    """pyproject's core dependencies and the extra ``env``: name -> version specifiers."""
    project = _pyproject()
    extras = project["optional-dependencies"]
    assert env in extras, f"envs/{env}.yaml: pyproject.toml has no extra {env!r} to agree with"
    requirements = [Requirement(text) for text in [*project["dependencies"], *extras[env]]]
    return {canonicalize_name(r.name): r.specifier for r in requirements}


def _conda_spec(spec: str) -> tuple[str, SpecifierSet]:
    """A conda MatchSpec such as ``pytorch>=2.3`` or ``python=3.11``: its PyPI name and
    its versions as pip specifiers (conda's ``=X`` is ``==X.*``)."""
    match = re.fullmatch(r"(?:[\w.-]+::)?([A-Za-z0-9_.-]+)\s*([^|]*)", spec.strip())
    assert match, f"conda spec {spec!r}: use name, name>=X or name=X"
    name, versions = match[1], match[2].replace(" ", "")
    clauses = [
        f"=={clause[1:]}.*" if re.match(r"=[^=]", clause) else clause
        for clause in versions.split(",")
        if clause
    ]
    return canonicalize_name(CONDA_TO_PIP.get(name, name)), SpecifierSet(",".join(clauses))


def _env_file(env: str) -> dict:
    with open(ENVS / f"{env}.yaml") as handle:
        return yaml.safe_load(handle)


def _conda_specs(env: str) -> dict[str, SpecifierSet]:
    specs = [_conda_spec(d) for d in _env_file(env)["dependencies"] if isinstance(d, str)]
    names = [name for name, _ in specs]
    assert len(set(names)) == len(names), f"envs/{env}.yaml lists a package twice: {names}"
    return dict(specs)


def _closure(names: set[str]) -> set[str]:
    """The distributions ``names`` install, with their dependencies (their installed
    metadata, extras left out)."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append(canonicalize_name(requirement.name))
    return seen


def _absent_modules(env: str) -> list[str]:
    """Top-level modules of the packages that the other environments' extras bring and
    ``env`` does not have, not even as a dependency of its own."""
    extras = _pyproject()["optional-dependencies"]
    others = {
        canonicalize_name(Requirement(text).name)
        for other in ENV_NAMES
        if other != env
        for text in extras[other]
    }
    absent = others - _closure(set(_requirements(env)))
    modules = {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(dist) in absent for dist in dists)
    }
    return sorted(modules)


def _without(env: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``_WITHOUT`` with the modules that ``env`` lacks made absent."""
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT, json.dumps(_absent_modules(env)), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_every_rule_that_runs_a_command_names_an_environment_of_envs():
    problems = []
    for rule in _rules():
        if not rule["runs"]:
            continue  # a target rule such as `all` runs nothing
        where = f"rule {rule['name']} ({Path(rule['snakefile']).name})"
        if not rule["conda"]:
            problems.append(f"{where} has no conda: directive")
        elif not _env_of(rule).is_file():
            problems.append(f"{where} names {rule['conda']}, which does not exist")
        elif _env_of(rule).parent != ENVS.resolve():
            problems.append(f"{where} names {rule['conda']}, which is not in envs/")
    assert not problems, "\n".join(problems)


def test_every_environment_serves_a_rule():
    used = {_env_of(rule) for rule in _rules() if rule["conda"]}
    unused = [env for env in ENV_NAMES if (ENVS / f"{env}.yaml").resolve() not in used]
    assert not unused, f"no rule names envs/{unused[0]}.yaml"


def test_the_workflow_tells_the_environments_to_install_its_own_checkout():
    # Snakemake hands conda a copy of each env file under .snakemake/conda, so their pip
    # section names the checkout through $CGPIPE_SOURCE, which the workflow sets.
    source = _workflow()["source"]
    assert source is not None, "the workflow does not set CGPIPE_SOURCE"
    assert Path(source).resolve() == REPO.resolve()


def test_snakemake_plans_the_workflow_without_torch():
    # The machine that runs Snakemake installs cgpipe[workflow] (with the reference
    # extra, for structures shipped in packages), not torch.
    done = _parse_workflow(_absent_modules("reference"))
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("env", ENV_NAMES)
def test_environment_pins_agree_with_pyproject(env):
    specs = _conda_specs(env)
    wanted = _requirements(env)
    missing = sorted(set(wanted) - set(specs))
    assert not missing, f"envs/{env}.yaml lacks {missing}, which pyproject.toml requires"
    extra = sorted(set(specs) - set(wanted) - TOOLS)
    assert not extra, (
        f"envs/{env}.yaml lists {extra}, which neither pyproject.toml's dependencies nor its "
        f"extra {env!r} name"
    )
    for name, specifier in wanted.items():
        assert specs[name] == specifier, (
            f"envs/{env}.yaml pins {name} to {str(specs[name]) or 'any version'}, "
            f"pyproject.toml to {str(specifier) or 'any version'}"
        )
    pip = [d for d in _env_file(env)["dependencies"] if isinstance(d, dict)]
    assert pip == [{"pip": [f"-e ${{CGPIPE_SOURCE}}[{env}]"]}], (
        f"envs/{env}.yaml must install cgpipe with its own extra: pip: -e ${{CGPIPE_SOURCE}}[{env}]"
    )


def test_environments_share_one_python_that_requires_python_allows():
    requires = SpecifierSet(_pyproject()["requires-python"])
    pythons = {env: _conda_specs(env).get("python") for env in ENV_NAMES}
    assert len({str(spec) for spec in pythons.values()}) == 1, f"pythons differ: {pythons}"
    spec = next(iter(pythons.values()))
    match = re.fullmatch(r"==(\d+\.\d+)\.\*", str(spec))
    assert match, f"pin python to one minor version (python=3.X), not {spec}"
    assert Version(match[1]) in requires, f"python {match[1]} is outside requires-python {requires}"


@pytest.mark.parametrize("env", ENV_NAMES)
def test_commands_import_without_the_other_environments_packages(env):
    absent = _absent_modules(env)
    commands = _commands(env)
    assert absent and commands
    done = _without(env, "check", *commands)
    assert done.returncode == 0, f"without {absent}:\n{done.stderr[-5000:]}"


MAP = "results/mapping/ala2/backbone_cb.parquet"


def test_reference_runs_without_torch_and_mapping_without_openmm(tmp_path):
    # The first stages for real, each in what its environment has: prepare and reference
    # in the reference group's, mapping and projected forces in the torch group's.
    assert {"torch", "sklearn"} <= set(_absent_modules("reference"))
    assert {"openmm", "pdbfixer"} <= set(_absent_modules("torch"))
    steps_of = {"start_steps": 10, "equilibration_steps": 10, "n_steps": 40, "save_every": 10}
    config = json.dumps({"reference": steps_of})
    steps = [
        ("reference", f"prepare --system ala2 --structure {ALA2} --output ala2.pdb"),
        ("reference", "reference --structure ala2.pdb --system ala2 --index 0 --output traj_0.h5"),
        # The mapping stage takes its job's system from the path grammar (for its seed).
        ("torch", f"mapping traj_0.h5 --mapping backbone_cb --output {MAP}"),
        ("torch", f"forces traj_0.h5 --mapping {MAP} --output cg.h5"),
    ]
    for env, command in steps:
        done = _without(env, "run", *command.split(), "--config", config, cwd=tmp_path)
        assert done.returncode == 0, f"cgpipe {command} (envs/{env}.yaml):\n{done.stderr[-5000:]}"
    assert (tmp_path / "cg.h5").is_file()
