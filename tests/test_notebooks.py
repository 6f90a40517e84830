"""Every notebook in notebooks/ runs end to end (nbclient, kernel python3) and is stored with its
outputs stripped. Notebooks write into the folder named by HWSIM_NOTEBOOK_OUT (a temporary
folder here) and run with notebooks/ as the working directory."""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs"


def _design_space_checks(out: Path) -> None:
    """The NeuPIMs study stores every point of the shipped space and draws its front."""
    from hwsim.configs import CONFIG_DIR
    from hwsim.dse import load_results, load_sweep
    size = load_sweep(CONFIG_DIR / "sweeps" / "neupims-space.yaml").size
    assert len(load_results(out)) == size
    assert (out / "front.png").read_bytes()[:4] == b"\x89PNG"


def _four_systems_checks(out: Path) -> None:
    """The issue-15 comparison writes its table (four systems, every metric), one chart per metric,
    and its claims: each system below its own roofline bound; the HNLPU's memories move less than
    half the model's weights per iteration (they serve KV entries and embedding rows only)."""
    import csv
    import json
    rows = list(csv.DictReader((out / "four_systems.csv").open()))
    assert len(rows) == 4
    for r in rows:
        assert 0 < float(r["tok/s"]) <= float(r["roofline tok/s"]) * (1 + 1e-9), r["system"]
        assert float(r["J/token"]) > 0 and float(r["silicon mm2"]) > 0
        assert float(r["$/Mtoken low"]) <= float(r["$/Mtoken"]) <= float(r["$/Mtoken high"])
    claims = json.loads((out / "claims.json").read_text())
    assert all(0 < v <= 1 + 1e-9 for v in claims["below_roofline"].values())
    assert claims["hnlpu_memory_bytes_per_iteration"] < claims["weight_bytes"] / 2
    for stem in ("throughput", "energy_per_token", "silicon_area", "cost_per_token"):
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"


CHECKS = {"neupims_design_space": _design_space_checks,   # what a notebook must leave in its folder
          "wafer_hardwired_threetier": _four_systems_checks}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("HWSIM_NOTEBOOK_OUT", str(out))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert out.exists() and any(out.iterdir()), "the notebook wrote nothing into HWSIM_NOTEBOOK_OUT"
    CHECKS.get(path.stem, lambda out: None)(out)
