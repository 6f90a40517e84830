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


def _pim_comparison_checks(out: Path) -> None:
    """The PIM comparison's table holds every design on every workload: each one that ran within
    its roofline, with energy and area; each one that did not with hwsim's reason (PIM-GPT on the
    MoE), and its three bar charts."""
    import pandas as pd
    df = pd.read_csv(out / "pim_comparison.csv", keep_default_na=False, na_values=[""])
    assert len(df) == 3 * 5 and set(df["design"]) == {"Duplex", "H100", "AttAcc", "NeuPIMs", "PIM-GPT"}
    ran, refused = df[df["reason"].isna()], df[df["reason"].notna()]
    assert list(refused["design"]) == ["PIM-GPT"] and "mixture of experts" in refused["reason"].iloc[0]
    assert (ran["tokens_per_s_per_device"] <= ran["roofline_tokens_per_s_per_device"] * (1 + 1e-9)).all()
    assert (ran["tokens_per_s_per_device"] > 0).all() and (ran["energy_mj_per_token"] > 0).all()
    area = ran.pivot(index="workload", columns="design", values="area_mm2_per_device")
    assert (area["Duplex"] > area["H100"]).all()          # an H100 plus logic on its HBM base dies
    for metric in ("tokens_per_s_per_device", "energy_mj_per_token", "area_mm2_per_device"):
        assert (out / f"{metric}.png").read_bytes()[:4] == b"\x89PNG"


# What a notebook must leave in its folder (one entry per notebook, one line each).
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


# What a notebook must leave in its folder (one entry per notebook, one line each).
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


# What a notebook must leave in its folder (one entry per notebook, one line each).
CHECKS = {
    "neupims_design_space": _design_space_checks,
    "wafer_hardwired_threetier": _four_systems_checks,
    "pim_comparison": _pim_comparison_checks,
    "cloudmatrix_ep_sweep": _cloudmatrix_ep_checks,
    "serving_search": _serving_search_checks,
}


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
