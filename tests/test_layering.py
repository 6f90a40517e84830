"""The folder rules of DESIGN.md: hw/, workloads/ and sim/ never import the face (CLI, config
loader, pipeline, report, scenarios, validate) nor what sits above them (mappers, dse). Read
from the source (every import, including those inside functions), so a lazy import cannot hide."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FACE = ("hwsim.cli", "hwsim.cli_dse", "hwsim.errors", "hwsim.config", "hwsim.pipeline",
        "hwsim.report", "hwsim.plots", "hwsim.scenarios", "hwsim.metrics", "hwsim.outputs",
        "hwsim.validate", "hwsim.calibrate", "hwsim.extrapolate", "hwsim.check")
ABOVE = {"hw": ("hwsim.mappers", "hwsim.dse"), "workloads": ("hwsim.mappers", "hwsim.dse", "hwsim.hw"),
         "sim": ("hwsim.mappers", "hwsim.dse", "hwsim.hw", "hwsim.workloads")}


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("folder", sorted(ABOVE))
def test_lower_folders_do_not_import_the_face_or_the_layers_above(folder):
    banned = FACE + ABOVE[folder]
    bad = [f"{path.relative_to(REPO)}: {name}" for path in sorted((REPO / folder).rglob("*.py"))
           for name in imports(path) if any(name == b or name.startswith(b + ".") for b in banned)]
    assert bad == []
