"""What the wheel holds, computed from the tree so that nothing can be left out by hand.

The charter's top-level folders install under one namespace (``sim/`` is ``hwsim.sim``, ...;
``ROOTS``). Every folder under a root that holds a Python file is a package, and every other
file under a root (YAML, CSV, Markdown, JSON, ...) ships as package data of the nearest package
above it: a new subpackage (``hw/interconnect/``) or data folder (``configs/profiles/h200/``)
gets in with no edit here. All other metadata lives in pyproject.toml.
tests/test_packaging.py checks this against the tree; .ci/run checks the built wheel.
"""
from pathlib import Path

from setuptools import setup

ROOTS = {"hwsim": "hwsim", "hwsim.sim": "sim", "hwsim.hw": "hw", "hwsim.workloads": "workloads",
         "hwsim.mappers": "mappers", "hwsim.dse": "dse", "hwsim.configs": "configs"}
NOT_SHIPPED = ("__pycache__", ".pyc", ".pyo", ".egg-info")   # build and interpreter leftovers
HERE = Path(__file__).resolve().parent


def _shipped(path: Path) -> bool:
    return not any(part.startswith(".") or part.endswith(NOT_SHIPPED) for part in path.parts)


def packages_and_data(here: Path = HERE, roots: dict[str, str] = ROOTS
                      ) -> tuple[list[str], dict[str, list[str]]]:
    """(every package name, {package: its data files relative to the package's folder})."""
    packages: dict[Path, str] = {Path(root): name for name, root in roots.items()}
    files: list[tuple[str, Path]] = []          # (root package, file relative to the root folder)
    for root_name, root in roots.items():
        for path in sorted((here / root).rglob("*")):
            rel = path.relative_to(here / root)
            if not path.is_file() or not _shipped(rel):
                continue
            if path.suffix == ".py":
                folder = Path(root) / rel.parent
                packages[folder] = ".".join([root_name, *rel.parent.parts])
            else:
                files.append((root_name, rel))
    data: dict[str, list[str]] = {}
    for root_name, rel in files:
        folder = Path(roots[root_name]) / rel.parent
        while folder not in packages:               # the nearest package above the file
            folder = folder.parent
        data.setdefault(packages[folder], []).append(
            (Path(roots[root_name]) / rel).relative_to(folder).as_posix())
    return sorted(packages.values()), data


if __name__ == "__main__":
    packages, package_data = packages_and_data()
    setup(packages=packages, package_dir=ROOTS, package_data=package_data)
