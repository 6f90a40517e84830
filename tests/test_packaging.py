"""What `pip install .` ships and needs (issue 9, item 1), checked without building a wheel
(.ci/run builds one and compares its file list with the tree).

- Every folder holding Python under the package folders (hwsim/ and every top-level folder with
  an __init__.py, installed as hwsim.<folder>) is a package setuptools will install, under the
  right name and from the right folder; every other file there is package data.
- The extras of pyproject.toml are the ones hwsim.extras names, and `hwsim run` of the main
  config (plots included) imports none of their modules: the core install is enough for it.
- A missing extra is one line naming the pip command, exit 2.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.extras import EXTRA_OF, EXTRAS, GPU_EXTRAS, missing_extra_message

REPO = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"__pycache__"}


def package_folders() -> dict[str, str]:
    """{top-level folder: its package}, read off the tree."""
    folders = sorted(p.parent.name for p in REPO.glob("*/__init__.py"))
    return {f: "hwsim" if f == "hwsim" else f"hwsim.{f}" for f in folders}


def tree_files():
    """(top folder, path relative to the repo) of every file under the package folders."""
    for folder in package_folders():
        for path in sorted((REPO / folder).rglob("*")):
            rel = path.relative_to(REPO)
            if path.is_file() and not any(p in NOT_SHIPPED or p.startswith(".") or p.endswith(".egg-info")
                                          for p in rel.parts) and path.suffix not in (".pyc", ".pyo"):
                yield folder, rel


@pytest.fixture(scope="module")
def dist():
    """setuptools' view of the project: setup.py and pyproject.toml read, nothing built."""
    import setuptools  # noqa: F401  (provides distutils on Python >= 3.12)
    from distutils.core import run_setup
    return run_setup(str(REPO / "setup.py"), stop_after="config")


def installed_folder(dist, package: str) -> Path:
    """Where setuptools takes `package` from: the longest package_dir prefix, then the rest."""
    parts = package.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in dist.package_dir:
            return Path(dist.package_dir[prefix], *parts[n:])
    return Path(*parts)


def test_the_charters_top_level_folders_are_the_package_folders():
    assert set(package_folders()) >= {"hwsim", "sim", "hw", "workloads", "mappers", "dse", "configs"}


def test_every_folder_with_python_is_an_installed_package(dist):
    python_folders = {rel.parent for _, rel in tree_files() if rel.suffix == ".py"}
    assert python_folders, "no Python files found"
    for folder in sorted(python_folders):
        top = folder.parts[0]
        package = ".".join([package_folders()[top], *folder.parts[1:]])
        assert (REPO / folder / "__init__.py").is_file(), f"{folder}/ has Python files but no __init__.py"
        assert package in dist.packages, f"{folder}/ would not be installed (as {package})"
        assert installed_folder(dist, package) == folder, f"{package} would be taken from the wrong folder"


def test_every_other_file_is_package_data(dist):
    import fnmatch
    data_files = [rel for _, rel in tree_files() if rel.suffix != ".py"]
    assert any(rel.suffix == ".yaml" for rel in data_files) and any(rel.suffix == ".csv" for rel in data_files)
    for rel in data_files:
        owners = [p for p in dist.packages if rel.is_relative_to(installed_folder(dist, p))]
        shipped = any(fnmatch.fnmatch(rel.relative_to(installed_folder(dist, p)).as_posix(), pattern)
                      for p in owners for pattern in dist.package_data.get(p, []))
        assert shipped, f"{rel} would not be in the wheel"


def test_a_new_subpackage_and_data_folder_need_no_edit(tmp_path):
    """setup.py's discovery on a copy of the layout with a new subpackage and profile data."""
    import runpy
    (tmp_path / "hw" / "interconnect").mkdir(parents=True)
    (tmp_path / "hw" / "__init__.py").write_text("")
    (tmp_path / "hw" / "interconnect" / "__init__.py").write_text("")
    (tmp_path / "configs" / "profiles" / "h200").mkdir(parents=True)
    (tmp_path / "configs" / "__init__.py").write_text("")
    (tmp_path / "configs" / "profiles" / "h200" / "gemm.json").write_text("{}")
    (tmp_path / "configs" / "__pycache__").mkdir()
    (tmp_path / "configs" / "__pycache__" / "x.cpython-311.pyc").write_text("")
    setup = runpy.run_path(str(REPO / "setup.py"), run_name="discovery")
    roots = {"hwsim.hw": "hw", "hwsim.configs": "configs"}
    packages, data = setup["packages_and_data"](tmp_path, roots)
    assert packages == ["hwsim.configs", "hwsim.hw", "hwsim.hw.interconnect"]
    assert data == {"hwsim.configs": ["profiles/h200/gemm.json"]}


# --------------------------------------------------------------------------- extras

def test_pyproject_extras_are_the_ones_hwsim_names():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras) == set(EXTRAS) | set(GPU_EXTRAS) | {"test"}
    itself = [r for r in extras["test"] if r.startswith("hwsim[")]
    assert len(itself) == 1 and set(itself[0][6:-1].split(",")) == set(EXTRAS), \
        "[test] must bring every extra"
    core = " ".join(project["dependencies"])
    for module in EXTRA_OF:
        assert module not in core, f"{module} is in the core install and in an extra"


@pytest.mark.parametrize("module", sorted(m for modules in EXTRAS.values() for m in modules))
def test_the_test_install_brings_every_extra(module):
    assert importlib.util.find_spec(module) is not None, f"{module}: pip install -e '.[test]'"


def test_the_main_job_imports_no_extra(tmp_path):
    """`hwsim run neupims` (results folder and plots) in a fresh process: no module of any
    extra gets imported, so `pip install .` (the core) is all it needs."""
    code = ("import sys; from hwsim.cli import main\n"
            "try:\n    main(['run', 'neupims', '--out', sys.argv[1]])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "import json; print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    imported = {m.partition(".")[0] for m in modules}
    assert (tmp_path / "out" / "timeline.svg").is_file() and (tmp_path / "out" / "roofline.svg").is_file()
    assert imported & set(EXTRA_OF) == set(), "the main job needs an extra"
    assert "matplotlib.pyplot" not in modules, "plots draw on a Figure: pyplot loads a GUI backend"


def test_help_imports_nothing_heavy():
    code = ("import sys; from hwsim.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    for heavy in ("numpy", "pydantic", "matplotlib", "networkx", "simpy", "yaml"):
        assert f"'{heavy}'" not in proc.stdout, f"`hwsim --help` imports {heavy}"


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    lines = result.stderr.strip().splitlines()
    return result.exit_code, lines


def without(monkeypatch, *modules):
    """Make importlib.util.find_spec report `modules` as not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in modules else real(name, *a))


@pytest.mark.parametrize("command", [["sweep", "tiny"], ["results", "results/x"],
                                     ["pareto", "results/x"]])
def test_dse_command_without_dse_extra(monkeypatch, tmp_path, command):
    monkeypatch.chdir(tmp_path)
    without(monkeypatch, "optuna")
    code, lines = invoke(*command)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == f'error: `hwsim {command[0]}` needs optuna, not installed: pip install "hwsim[dse]"'


def test_check_without_check_extra(monkeypatch, tmp_path):
    without(monkeypatch, "numba")
    code, lines = invoke("run", "neupims", "--check", "--out", tmp_path)
    assert (code, lines) == (2, ['error: `hwsim run --check` needs numba, not installed: pip install "hwsim[check]"'])
    assert not tmp_path.joinpath("metrics.json").exists(), "failed before simulating"


def test_onnx_workload_without_onnx_extra(monkeypatch, tmp_path):
    """The module is imported deep in the pipeline: the CLI maps its ModuleNotFoundError to the
    extra that brings it."""
    (tmp_path / "model.onnx").write_bytes(b"")
    config = tmp_path / "cnn.yaml"
    config.write_text((REPO / "configs" / "tpu-like.yaml").read_text())
    monkeypatch.setitem(sys.modules, "onnx", None)      # `import onnx` now fails
    code, lines = invoke("run", config, "--set", "workload.model=null", "--set",
                         f"workload.onnx={tmp_path / 'model.onnx'}", "--out", tmp_path / "out")
    assert (code, lines) == (2, ['error: onnx is not installed: pip install "hwsim[onnx]"'])


def test_only_modules_of_an_extra_are_blamed_on_it():
    assert missing_extra_message(ModuleNotFoundError("x", name="optuna.samplers")) == \
        'optuna is not installed: pip install "hwsim[dse]"'
    assert missing_extra_message(ModuleNotFoundError("x", name="hwsim.config")) is None   # a bug: exit 1
    assert missing_extra_message(ImportError("x", name="optuna")) is None
