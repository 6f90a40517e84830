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


def _cloudmatrix_ep_checks(out: Path) -> None:
    """The CloudMatrix EP sweep stores every point and its plot; on every simulated point
    tokens/s per NPU = batch per NPU / TPOT (a step yields batch x (1 + MTP acceptance) tokens),
    and a quarter of the UB bandwidth never shortens TPOT at the same EP degree and batch."""
    import pandas as pd
    df = pd.read_csv(out / "cloudmatrix_ep_sweep.csv")
    assert (out / "cloudmatrix_ep_sweep.png").read_bytes()[:4] == b"\x89PNG"
    ok = df[df["status"] == "ok"]
    assert len(ok) >= 8 and ok["ep"].nunique() >= 2 and ok["bw_scale"].nunique() >= 2
    assert ok["tokens_per_s_per_npu"].to_numpy() == pytest.approx(
        (ok["batch_per_npu"] / (ok["tpot_ms"] / 1e3)).to_numpy(), rel=1e-12)
    tpot = ok.pivot_table(index=["ep", "batch_per_npu"], columns="bw_scale", values="tpot_ms").dropna()
    assert len(tpot) and (tpot[tpot.columns.min()] >= tpot[tpot.columns.max()]).all()


CHECKS = {"neupims_design_space": _design_space_checks,   # what a notebook must leave in its folder
          "cloudmatrix_ep_sweep": _cloudmatrix_ep_checks}


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
