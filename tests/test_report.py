"""What a user reads (issue 9, item 6): the table says what each column means and in which unit,
a CNN run counts inferences, a run never silently replaces another config's results folder, the
Perfetto trace has one track per resource instance with nothing overlapping on a track, and the
timeline draws every unit, HBM included, in a bounded number of artists."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import systems
from hwsim.cli import main
from hwsim.configs import CONFIG_DIR


@pytest.fixture
def result(shipped_result):
    return shipped_result


def table_rows(text: str, header_words: str) -> list[list[str]]:
    """The body rows of the first table whose last header line starts "system" and holds
    `header_words` (cells split on runs of two or more spaces), up to its legend."""
    import re
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines)
                if line.startswith("system ") and header_words in line)
    rows = []
    for line in lines[head + 2:]:
        if not line.strip() or line.startswith("  "):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def legend(text: str) -> dict[str, str]:
    """Legend lines ("  name: meaning", continued by deeper-indented lines) -> {name: meaning}."""
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("      ") and name:
            out[name] += " " + line.strip()
        elif line.startswith("  ") and not line.startswith("   ") and ": " in line:
            name, meaning = line.strip().split(": ", 1)
            out[name] = meaning
        else:
            name = None
    return out


# --------------------------------------------------------------------------- the table

def test_table_header_states_model_layers_stage_layers_and_devices(result):
    from hwsim.report import format_table
    header = format_table(result).splitlines()[0]
    info = result.main.graph.info
    workload = result.main.system.workload
    if workload.kind == "transformer":
        assert f"{workload.model.n_layers} decoder layers" in header
        if info.pp > 1:
            assert f"({workload.model.n_layers // info.pp} per pipeline stage)" in header
    devices = info.tp * info.ep * info.pp
    assert f"tp {info.tp} x ep {info.ep} x pp {info.pp} = {devices} device" in header


def test_175b_header_gives_96_layers_and_24_per_stage():
    from hwsim.config.loader import load_config
    from hwsim.report import _header
    from hwsim.pipeline import RunResult, run_system
    cfg = load_config(CONFIG_DIR / "neupims-gpt3-175b.yaml")
    header = _header(RunResult(cfg, run_system(cfg.main)))
    assert "96 decoder layers (24 per pipeline stage)" in header and "= 32 devices" in header


@pytest.mark.parametrize("gpu,phase,caveat", [("{preset: h200-sxm}", "decode", True),
                                               ("{preset: h200-sxm}", "prefill", False),
                                               ("{preset: h200-sxm, profile: h200-sxm}", "decode", False)])
def test_a_datasheet_gpu_row_says_when_it_is_not_held_at_the_power_limit(gpu, phase, caveat):
    """Datasheet energy per HBM byte is the DRAM's alone, so a memory-bound decode step never
    reaches the card's power limit: the legend says its time is at full clock (with the measured
    size of the slowdown it misses). A datasheet prefill, whose tensor-core work reaches the
    limit, is held there and says so; a profiled GPU's measured energy covers both."""
    from hwsim.config.loader import load_config_text
    from hwsim.pipeline import RunResult, run_system
    from hwsim.report import format_table
    config = load_config_text(f"""name: t
workload: {{model: llama2-7b, phase: {phase}, batch: 1, dtype: bf16, lm_head: false,
           requests: {{distribution: fixed, context_len: 512}}}}
hardware: {{gpu: {gpu}}}
mapper: {{name: gpu}}
""")
    text = format_table(RunResult(config, run_system(config.main)))
    assert ("GPU datasheet mode" in legend(text)) == caveat
    if caveat:
        assert "full clock" in legend(text)["GPU datasheet mode"]
    if phase == "prefill":
        assert "power limit" in legend(text)          # the prefill is held there


def test_every_column_has_a_legend_with_its_unit(result):
    from hwsim.report import format_table
    text = format_table(result)
    unit = result.main.metrics.work_unit
    meanings = legend(text)
    for column in (f"{unit}s/s per replica", f"{unit}s/s per device", "iteration ms", "layer ms",
                   "roofline ms", f"energy mJ/{unit}", "speed-up of main", "utilization", "busy",
                   "GB per device per iteration", "area mm2 per device", f"mJ/{unit}"):
        assert column in meanings, column
    assert meanings["layer ms"] == ("time per decoder layer (see docs)" if unit == "token"
                                    else "time per weight layer (see docs)")
    assert "divided by this row's" in meanings["speed-up of main"]
    assert "busy" not in meanings["utilization"] and "peak" in meanings["utilization"]
    assert "at least one task in progress" in meanings["busy"]
    assert "one device in one iteration" in meanings["GB per device per iteration"]
    assert "one replica" in meanings[f"{unit}s/s per replica"]


def test_table_numbers_are_the_metrics_in_the_units_the_headers_state(result):
    """Per replica = the metric; per device = per replica / devices; iteration in ms; speed-up
    of main on a baseline's row = main's throughput / the baseline's; GB = bytes / 1e9."""
    from hwsim.report import format_table
    text = format_table(result)
    rows = {r[0]: r for r in table_rows(text, "mapper")}
    main = result.main.metrics
    for name, r in systems(result):
        m, row = r.metrics, rows[name]
        number = lambda cell: float(cell.replace(",", "").rstrip("x"))   # noqa: E731
        assert number(row[2]) == pytest.approx(m.throughput_per_s, abs=0.051)
        assert number(row[3]) == pytest.approx(m.throughput_per_s / m.devices, abs=0.051)
        assert number(row[4]) == pytest.approx(m.iteration_latency_s * 1e3, abs=5e-4)
        assert number(row[7]) == pytest.approx(m.energy_per_work_unit_j * 1e3, abs=5e-4)
        assert number(row[8]) == pytest.approx(main.throughput_per_s / m.throughput_per_s, abs=0.0051)
    traffic = [r for r in table_rows(text, "level") if r[0] == "main" and r[1] == "hbm"]
    if "hbm" in main.bytes:
        assert float(traffic[0][2].replace(",", "")) == pytest.approx(main.bytes["hbm"] / 1e9, abs=5e-4)


def test_cnn_run_counts_inferences_everywhere():
    """A CNN pass produces inferences: the metrics name them (work_unit, JSON keys), the table
    says inferences/s and mJ/inference, and nothing says tokens."""
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    from hwsim.report import format_table
    result = evaluate(load_config(CONFIG_DIR / "cnn-resnet18-topology.yaml"))
    m = result.main.metrics
    assert m.work_unit == "inference"
    doc = result.to_json()["metrics"]
    assert doc["work_unit"] == "inference"
    assert doc["throughput_inferences_per_s"] == m.throughput_per_s == pytest.approx(
        m.work_per_iteration / m.iteration_latency_s)
    assert "energy_per_inference_j" in doc and "inferences_per_iteration" in doc
    assert not [k for k in doc if "token" in k]
    with pytest.raises(AttributeError, match="counts inferences"):
        m.throughput_tokens_per_s
    text = format_table(result)
    assert "inferences/s" in text and "mJ/inference" in text and "token" not in text


def test_transformer_run_keeps_the_token_names():
    """Sweeps, pareto and notebooks read throughput_tokens_per_s of Transformer runs."""
    from hwsim.config.loader import load_config
    from hwsim.dse.spec import check_metric_name
    from hwsim.pipeline import run_system
    m = run_system(load_config(CONFIG_DIR / "gpt3-7b-npu.yaml").main).metrics
    doc = m.to_json()
    assert doc["work_unit"] == "token"
    assert doc["throughput_tokens_per_s"] == m.throughput_tokens_per_s == m.throughput_per_s
    assert doc["energy_per_token_j"] == m.energy_per_token_j and doc["tokens_per_iteration"] == m.work_per_iteration
    assert "throughput_per_s" not in doc
    for name in ("throughput_tokens_per_s", "throughput_inferences_per_s", "energy_per_inference_j"):
        assert check_metric_name(name, baselines=False) is None, name


# --------------------------------------------------------------------------- results folders

def run_cli(*args) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["run", *map(str, args)])
    return res.exit_code, res.output


SMALL = ["--set", "workload.model.n_layers=2"]      # the shipped gpt3-7b-npu config, 2 layers


def test_a_run_never_silently_replaces_another_configs_results(tmp_path, monkeypatch):
    """Plain run -> results/<name>/; a --set run -> results/<name>-2/ with a note saying why;
    the plain run again reuses results/<name>/ (same resolved config), and so does the --set
    run its -2 folder; --out replaces what it is given, saying so when it held another config."""
    monkeypatch.chdir(tmp_path)
    config = CONFIG_DIR / "gpt3-7b-npu.yaml"
    code, out = run_cli(config, *SMALL)
    assert code == 0, out
    assert "results: results/gpt3-7b-npu/\n" in out + "\n" and "note:" not in out
    plain = Path("results/gpt3-7b-npu/config.yaml").read_text()

    code, out = run_cli(config, *SMALL, "--set", "workload.batch=32")
    assert code == 0, out
    assert "results: results/gpt3-7b-npu-2/" in out
    assert "note: results/gpt3-7b-npu/ holds the results of a different config (differs at workload.batch" in out
    assert Path("results/gpt3-7b-npu/config.yaml").read_text() == plain           # untouched
    assert "batch: 32" in Path("results/gpt3-7b-npu-2/config.yaml").read_text()

    code, out = run_cli(config, *SMALL)
    assert code == 0 and "results: results/gpt3-7b-npu/" in out and "note:" not in out
    code, out = run_cli(config, *SMALL, "--set", "workload.batch=32", "--json")
    assert code == 0 and sorted(p.name for p in Path("results").iterdir()) == ["gpt3-7b-npu", "gpt3-7b-npu-2"]

    code, out = run_cli(config, *SMALL, "--out", "results/gpt3-7b-npu")
    assert code == 0 and "note:" not in out
    code, out = run_cli(config, *SMALL, "--set", "workload.batch=16", "--out", "results/gpt3-7b-npu")
    assert code == 0 and "note: results/gpt3-7b-npu/ held the results of a different config" in out
    assert "batch: 16" in Path("results/gpt3-7b-npu/config.yaml").read_text()


def test_results_dir_skips_folders_of_other_things(tmp_path):
    from hwsim.config.loader import load_config
    from hwsim.report import results_dir
    cfg = load_config(CONFIG_DIR / "gpt3-7b-npu.yaml", [f"output.dir={tmp_path / 'out'}"])
    assert results_dir(cfg) == (tmp_path / "out", None)           # new
    (tmp_path / "out").mkdir()
    assert results_dir(cfg) == (tmp_path / "out", None)           # empty
    (tmp_path / "out" / "notes.txt").write_text("mine")
    folder, notice = results_dir(cfg)
    assert folder == tmp_path / "out-2" and "no config.yaml" in notice


# --------------------------------------------------------------------------- trace.json

def test_trace_has_a_track_per_resource_and_nothing_overlaps_on_a_track(result, tmp_path):
    """Chrome trace of every shipped config's main system: every slice on a named thread of a
    named process; ts and dur in microseconds (the last end is the makespan / 1e3), dur >= 0;
    no two slices of one thread overlap; every task appears once per resource it had work on
    (HBM and every memory level included) and tasks with no work at all appear once."""
    trace = result.main.trace
    path = tmp_path / "trace.json"
    trace.write_chrome_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    processes = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    slices = [e for e in events if e["ph"] == "X"]
    assert slices
    by_track = defaultdict(list)
    on_resource = defaultdict(int)
    for e in slices:
        assert (e["pid"], e["tid"]) in threads and e["pid"] in processes, e
        assert e["dur"] >= 0 and e["ts"] >= 0, e
        by_track[e["pid"], e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
        on_resource[e["args"].get("resource")] += 1
    assert max(end for track in by_track.values() for _, end in track) == \
        pytest.approx(trace.makespan_ns / 1e3, rel=1e-12)
    for track, spans in by_track.items():
        spans.sort()
        starts, ends = np.array(spans).T
        overlap = ends[:-1] - starts[1:]
        assert (overlap <= 1e-9 * max(1.0, ends.max())).all(), (track, overlap.max())
    for name, r in trace.schedule.resources.items():
        assert on_resource[name] == len(trace.tasks_on[name][0]), name
    # every memory level that moved bytes has its track (a level holding nothing, such as the
    # DDR of an SN40L socket whose share of the model fits its HBM, moves none)
    moved = [n for n, r in trace.schedule.resources.items() if r.kind == "memory" and len(trace.tasks_on[n][0])]
    assert moved and all(on_resource[n] for n in moved)
    used = {int(i) for ids, _ in trace.tasks_on.values() for i in ids}
    assert on_resource[None] == len(trace.schedule.tasks) - len(used)


def test_pim_channels_have_a_track_each():
    from hwsim.config.loader import load_config
    from hwsim.pipeline import run_system
    trace = run_system(load_config(CONFIG_DIR / "neupims.yaml").main).trace
    events = trace.chrome_trace_events()
    names = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    channels = [n for n, r in trace.schedule.resources.items() if r.unit == "pim"]
    assert len(channels) == 32 and set(channels) <= names


def test_pack_lanes_uses_as_many_lanes_as_intervals_open_at_once():
    from hwsim.sim.trace import pack_lanes
    rng = np.random.default_rng(0)
    start = rng.uniform(0, 100, 400)
    end = start + rng.exponential(5, 400)
    lane = pack_lanes(start, end)
    for k in range(lane.max() + 1):
        s, e = start[lane == k], end[lane == k]
        order = np.argsort(s)
        assert (s[order][1:] >= e[order][:-1]).all()
    open_at = max(((start <= t) & (end > t)).sum() for t in start)     # most open at once
    assert lane.max() + 1 == open_at


# --------------------------------------------------------------------------- plots

def test_timeline_draws_every_unit_hbm_included_and_covers_all_busy_time(result, tmp_path):
    """A row per unit (HBM included), labelled in order; one path per resource instance; every
    bar is a union of task intervals, and the bars cover all busy time of their resource."""
    import xml.etree.ElementTree as ET

    from hwsim.plots import merged_intervals, timeline_bars, timeline_plot, timeline_rows
    rows = timeline_rows(result)
    assert any(result.main.schedule.resources[n].kind == "memory" for _, res in rows for n in res)
    svg = ET.parse(timeline_plot(result, tmp_path / "timeline.svg")).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.find(f"{ns}tspan").text.split(" x")[0] for t in svg.iter(f"{ns}text")
              if t.find(f"{ns}tspan") is not None]
    assert labels == [unit for unit, _ in rows]
    bars = timeline_bars(result)
    assert len(bars) == sum(len(res) for _, res in rows)
    drawn = [p for p in svg.iter(f"{ns}path")]
    assert len(drawn) == sum(1 for *_, s, e in bars if len(s))     # one element per strip
    trace = result.main.trace
    for (row, k, strips, s, e), (unit, resources) in zip(
            bars, [(u, res) for u, res in rows for _ in res]):
        name = resources[k]
        ids = trace.tasks_on[name][0]
        exact_s, exact_e = merged_intervals(trace.start_ns[ids], trace.end_ns[ids], 0.0)
        busy_ms = float((exact_e - exact_s).sum()) / 1e6
        assert busy_ms == pytest.approx(trace.busy_fraction(name) * trace.makespan_ns / 1e6,
                                        rel=1e-9, abs=1e-12)
        assert float((e - s).sum()) >= busy_ms * (1 - 1e-9)


def test_roofline_points_sit_under_both_roofs(result, tmp_path):
    """No op beats the compute roof or its off-chip bandwidth roof (a roofline is an upper bound)."""
    import xml.etree.ElementTree as ET

    from hwsim.plots import roofline_plot, roofline_points
    res = result.main.schedule.resources.values()
    compute = next(r for r in res if r.kind == "compute")
    memory = next(r for r in res if r.kind == "memory")
    intensity, achieved = roofline_points(result)
    assert len(achieved) > 0
    # durations are end - start in float64: at times of ~1e10 ns (a 70B model streamed from disk)
    # that difference carries ~1e-6 ns of rounding, so the tolerance grows with the makespan
    trace = result.main.trace
    shortest = float(trace.columns["duration_ns"][trace.columns["duration_ns"] > 0].min())
    tol = 1e-9 + 8 * np.finfo(float).eps * trace.makespan_ns / shortest
    assert (achieved <= compute.peak_flops_per_ns * (1 + tol)).all()
    assert (achieved <= intensity * memory.peak_per_ns * (1 + tol)).all()
    svg = ET.parse(roofline_plot(result, tmp_path / "roofline.svg")).getroot()
    assert any(True for _ in svg.iter("{http://www.w3.org/2000/svg}circle"))


def test_merged_intervals_only_closes_gaps_narrower_than_asked():
    from hwsim.plots import merged_intervals
    start, end = np.array([0.0, 1.0, 5.0, 5.5, 9.0]), np.array([1.0, 2.0, 6.0, 5.7, 9.0])
    s, e = merged_intervals(start, end, 0.0)
    assert s.tolist() == [0.0, 5.0, 9.0] and e.tolist() == [2.0, 6.0, 9.0]
    s, e = merged_intervals(start, end, 3.0)
    assert s.tolist() == [0.0] and e.tolist() == [9.0]


def test_config_yaml_is_the_text_pyyaml_writes_for_every_shipped_config():
    """config.yaml uses libyaml's emitter for speed; it must write what yaml.safe_dump writes,
    since an earlier run's folder is recognised by comparing this text."""
    import yaml

    from hwsim.config.loader import load_config
    from hwsim.report import _config_text
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        config = load_config(path)
        assert _config_text(config) == yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), path.name
