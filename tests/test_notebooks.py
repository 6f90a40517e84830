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


def _serving_search_checks(out: Path) -> None:
    """The serving search stores its deployments, draws the front, and its answer meets the SLO in
    the metrics of its own run at the target load, with enough goodput for that load."""
    import json
    from hwsim.dse import load_results
    df = load_results(out)
    assert len(df) >= 2 and (df["status"] == "ok").all()
    assert (out / "front.png").read_bytes()[:4] == b"\x89PNG"
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen is not None, "no deployment met the SLO"
    served, slo = chosen["served"], chosen["slo"]
    assert served["slo_attainment"] >= slo["attainment"]
    assert served["replicas"] == chosen["replicas"] and served["requests"] >= 100
    assert chosen["replicas"] * chosen["goodput_rps_per_replica"] >= chosen["target_rps"]
    # its TTFT and TPOT at the share of requests the SLO names are within the targets
    assert served["ttft_s"]["p50"] <= slo["ttft_s"] and served["tpot_s"]["p50"] <= slo["tpot_s"]


CHECKS = {"neupims_design_space": _design_space_checks,    # what a notebook must leave in its folder
          "serving_search": _serving_search_checks}


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
