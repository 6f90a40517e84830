"""SN40L and Composition of Experts (issue 15 item 3): capacity per tier (a model exceeding DDR or
HBM exits 2 naming the level), switching time = bytes / bandwidth in closed form (and shared
links slow it), the request loop's LRU count, no op faster than its roofline (fused and unfused,
the copy tasks), fused never slower than unfused, the footprint closed form, bad inputs exit 2."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.coe import footprint_nodes, levels_of, plan_tiers, routes, serve_stream
from hwsim.coe.spec import CoESpec
from hwsim.coe.switch import switch_cost
from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.errors import ConfigError
from hwsim.hw.memory import MemoryLevel
from hwsim.pipeline import evaluate
from hwsim.validate.sn40l import fusion_ratio, hc24_switch_s

COE = CONFIG_DIR / "sn40l-coe.yaml"
LLAMA2_7B_BYTES = 2 * (32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 2 * 32000 * 4096)   # bf16, untied head


@functools.cache
def result():
    return evaluate(load_config(COE))


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def test_expert_bytes_and_switch_is_bytes_over_ddr_bandwidth():
    d = result().main.metrics.coe
    assert d["switch_bytes"] == pytest.approx(LLAMA2_7B_BYTES, rel=1e-3)   # norms are the rest
    # 8 sockets copy their 1/8 at once, each from its own DDR at 100 GB/s (HBM writes at 1,638 GB/s)
    assert d["switch_s"] == pytest.approx(d["expert_bytes_per_device"] / 100e9, rel=1e-6)
    assert d["switch_bw_gbps"] == pytest.approx(800, rel=0.03)


def test_dgx_switch_is_pcie_bound_and_a_shared_link_halves_it():
    r = result()
    for name, link in (("dgx_h100", 63.0), ("dgx_a100", 31.5)):
        d = r.baselines[name].metrics.coe
        assert d["store"] == "host"
        # the 8 GPUs share one x16 link's worth (the paper's baseline): the whole expert over it
        assert d["switch_s"] == pytest.approx(8 * d["expert_bytes_per_device"] / (link * 1e9), rel=1e-6)
        assert d["switch_bw_gbps"] == pytest.approx(link, rel=1e-6)
    # the DGX H100 as built: a link per GPU, each its 1/8 at 63 GB/s (host DRAM's 614 GB/s not binding)
    d = r.baselines["dgx_h100_all_links"].metrics.coe
    assert d["switch_s"] == pytest.approx(d["expert_bytes_per_device"] / 63.0e9, rel=1e-6)
    # two GPUs behind one link: the engine shares it, the switch takes twice as long
    store = MemoryLevel("host", 1e12, 63.0, 63.0, 20.0)
    hbm = MemoryLevel("hbm", 80e9, 3350.0, 3350.0, 3.9)
    one = switch_cost([1e9] * 4, 8, store, hbm, devices_per_link=1).time_s
    two = switch_cost([1e9] * 4, 8, store, hbm, devices_per_link=2).time_s
    assert one == pytest.approx(4e9 / 63e9, rel=1e-9) and two == pytest.approx(2 * one, rel=1e-9)
    # and a host DRAM slower than the 8 links together binds instead: 8 x 4 GB at 200 GB/s
    slow = switch_cost([1e9] * 4, 8, store, hbm, shared_bw_gbps=200.0).time_s
    assert slow == pytest.approx(32e9 / 200e9, rel=1e-9)


def test_hc24_llama31_8b_switch_closed_form():
    # Llama-3.1-8B (8.03 B parameters, bf16) over 16 sockets at 100 GB/s each
    assert hc24_switch_s() == pytest.approx(2 * 8.03e9 / 16 / 100e9, rel=0.01)


def test_capacity_per_tier_and_resident_experts():
    r = result()
    for name, sr in [("main", r.main), *r.baselines.items()]:
        d = sr.metrics.coe
        assert d["store_used_bytes_per_device"] <= d["store_capacity_bytes_per_device"], name
        per = d["expert_bytes_per_device"]
        assert (d["resident_experts"] + 1) * per <= d["hbm_capacity_bytes_per_device"] * 0.9, name  # + router
        assert (d["resident_experts"] + 3) * per > d["hbm_capacity_bytes_per_device"] * 0.9, name   # as many as fit


def test_a_composition_exceeding_ddr_exits_2_naming_the_level(tmp_path):
    out = run(COE, "--set", "scenario.experts=1000", "--out", tmp_path)
    assert out.exit_code == 2
    assert "memory level 'ddr'" in out.output and "scenario.experts" in out.output
    small = tmp_path / "small-ddr.yaml"       # 10 GiB of DDR per socket: 150 x 1.68 GB do not fit
    small.write_text(COE.read_text().replace("capacity_gib: 1396.98", "capacity_gib: 10"))
    out = run(small, "--out", tmp_path / "o")
    assert out.exit_code == 2 and "'ddr'" in out.output


def test_an_expert_not_fitting_hbm_exits_2_naming_hbm(tmp_path):
    out = run(COE, "--set", "workload.model=llama2-70b", "--set", "workload.tp=1",
              "--set", "scenario.experts=2", "--out", tmp_path)
    assert out.exit_code == 2 and "'hbm'" in out.output
    out = run(COE, "--set", "scenario.resident_experts=1000", "--out", tmp_path)
    assert out.exit_code == 2 and "'hbm'" in out.output and "resident_experts" in out.output


@pytest.mark.parametrize("key,value", [("scenario.store", "sram"), ("scenario.store", "hbm"),
                                       ("scenario.store", "nvme"), ("scenario.experts", "0"),
                                       ("scenario.experts", "-3"), ("scenario.output_tokens", "0"),
                                       ("scenario.routing", "random"), ("scenario.zipf_a", "1"),
                                       ("scenario.prompt_tokens", "5000"), ("mapper.fusion", "half"),
                                       ("mapper.unfused_launch_us", "-1"), ("workload.pp", "2")])
def test_bad_inputs_exit_2(tmp_path, key, value):
    out = run(COE, "--set", f"{key}={value}", "--out", tmp_path)
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output


def test_request_loop_counts_lru_misses():
    spec = CoESpec(experts=5, requests=8, output_tokens=3, seed=1)
    seq = routes(spec).tolist()
    cache, misses = list(range(2)), 0                # warm: experts 0 and 1 resident
    for e in seq:
        if e in cache:
            cache.remove(e)
        else:
            misses += 1
            if len(cache) == 2:
                cache.pop(0)
        cache.append(e)
    d = serve_stream(spec, 2, 0.001, 0.01, 0.002, 0.0005)
    assert d["switches"] == misses
    assert d["total_s"] == pytest.approx(8 * (0.001 + 0.002 + 2 * 0.0005) + misses * 0.01)
    # every expert resident: no switch; zipf routing skews to the first experts
    assert serve_stream(spec, 5, 0.001, 0.01, 0.002, 0.0005)["switches"] == 0
    z = routes(CoESpec(experts=100, requests=2000, routing="zipf", zipf_a=2.0))
    assert np.mean(z == 0) > 0.5


def test_no_task_beats_its_roofline_copies_included():
    r = result()
    for name, sr in [("main", r.main), *r.baselines.items()]:
        durations = sr.trace.end_ns - sr.trace.start_ns
        for task in sr.schedule.tasks:
            slack = 4 * np.spacing(sr.trace.end_ns[task.id])     # ulps late in the run, as test_physics
            assert durations[task.id] >= task.roofline_ns * (1 - 1e-9) - slack, (name, task.name)
    from hwsim.sim.engine import simulate
    s = switch_cost([1e9, 2e9], 4, MemoryLevel("ddr", 1e12, 100, 100, 70),
                    MemoryLevel("hbm", 64e9, 1638.4, 1638.4, 3.9)).schedule
    t = simulate(s)
    for task in s.tasks:
        assert t.end_ns[task.id] - t.start_ns[task.id] >= task.roofline_ns * (1 - 1e-9)


def test_fused_never_slower_than_unfused_and_unfused_respects_its_roofline():
    for phase, ctx in (("decode", 138), ("prefill", 2048)):
        assert fusion_ratio(phase, ctx) >= 1.0
        assert fusion_ratio(phase, ctx, tp=1) >= 1.0
    from hwsim.config.schema import MapperChoice
    from hwsim.pipeline import run_system
    from hwsim.serving.spec import PassSpec
    main_ = load_config(COE).main
    s = main_.model_copy(update={"scenario": PassSpec(), "mapper": MapperChoice(name="npu_only", fusion="unfused")})
    r = run_system(s)
    durations = r.trace.end_ns - r.trace.start_ns
    for task in r.schedule.tasks:
        slack = 4 * np.spacing(r.trace.end_ns[task.id])
        assert durations[task.id] >= task.roofline_ns * (1 - 1e-9) - slack, task.name
    fused = run_system(s.model_copy(update={"mapper": MapperChoice(name="npu_only")}))
    assert r.metrics.bytes["hbm"] > fused.metrics.bytes["hbm"]     # activations round-trip HBM


def test_footprint_closed_form():
    most, nodes = footprint_nodes(13.48e9, 8 * 1.5e12, 8 * 80e9)
    assert most == 890 and nodes == math.ceil(890 * 13.48e9 / 640e9) == 19
    assert footprint_nodes(10.0, 100.0, 25.0) == (10, 4)


def test_levels_and_plan_from_the_config():
    system = load_config(COE).main
    store, hbm = levels_of(system)
    assert (store.name, hbm.name) == ("ddr", "hbm")
    plan = plan_tiers(system, store, hbm)
    assert plan.expert_bytes == pytest.approx(LLAMA2_7B_BYTES / 8, rel=1e-3)
    bad = system.model_copy(update={"scenario": system.scenario.model_copy(update={"store": "disk"})})
    with pytest.raises(ConfigError, match="scenario.store|not a memory level"):
        levels_of(bad)
