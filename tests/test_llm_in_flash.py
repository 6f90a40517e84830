"""LLM in a flash (issue 16, item 4): the flash level's chunk-size bandwidth (closed form), the
sliding-window plan (bytes read per token = the window's misses, conserved through the schedule),
hard capacities (exit 2 naming the level), naive >= sparse, and the physics of the token."""
from __future__ import annotations

import functools
import math

import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.hw.flash import FlashSpec, read_bw_gbps, read_time_ns
from hwsim.input_error import ConfigError
from hwsim.mappers.flash import FlashOptions, flash_plan
from hwsim.mappers.partition import partition
from hwsim.pipeline import evaluate
from hwsim.validate.llm_in_flash import io_latency_ms
from conftest import assert_refused_in_one_line, hwsim_run

CFG = CONFIG_DIR / "llm-in-flash.yaml"
D, FF, L, V = 4096, 16384, 32, 50272          # OPT 6.7B (facebook/opt-6.7b config.json)


@functools.cache
def result():
    return evaluate(load_config(CFG))


def graph(dtype="fp32"):
    return partition(load_config(CFG, overrides=[f"workload.dtype={dtype}"]).main.workload).devices[0].graph


def flash_bytes(sr) -> float:
    return sum(t.bytes_by_level.get("flash", 0.0) for t in sr.schedule.tasks)


run = hwsim_run


# ------------------------------------------------------------------ flash closed form

def test_chunk_bandwidth_closed_form():
    lat_us, peak = 4.6, 6.1
    # half the peak where the chunk streams as long as the latency lasts: chunk = latency x peak
    assert read_bw_gbps(lat_us * 1e3 * peak, lat_us, peak) == pytest.approx(peak / 2)
    bws = [read_bw_gbps(c, lat_us, peak) for c in (4096, 8192, 16384, 32768, 2**20, 2**30)]
    assert all(a < b for a, b in zip(bws, bws[1:])) and bws[-1] < peak     # rises towards the peak
    assert bws[-1] == pytest.approx(peak, rel=1e-3) and read_bw_gbps(math.inf, lat_us, peak) == peak
    # n chunks: n latencies + the bytes at the peak; a partial last chunk pays a whole latency
    assert read_time_ns(10 * 8192, 8192, lat_us, peak) == pytest.approx(10 * (4600 + 8192 / peak))
    assert read_time_ns(10 * 8192 + 1, 8192, lat_us, peak) == pytest.approx(11 * 4600 + (10 * 8192 + 1) / peak)
    assert read_bw_gbps(8192, 0.0, peak) == peak                              # no latency: no chunk effect
    with pytest.raises(ValueError):
        read_bw_gbps(0, lat_us, peak)


def test_m1_max_flash_against_the_papers_table_2():
    """The latency is solved from the bundled point (16 KiB at 2.25 GB/s); the unbundled point (8 KiB
    at 1.25 GB/s) is a prediction, and the dense read reaches the 6.1 GB/s peak."""
    flash = load_config(CFG).main.hardware.flash
    assert isinstance(flash, FlashSpec)
    assert flash.read_bw_gbps(16384) == pytest.approx(2.25, rel=0.01)
    assert flash.read_bw_gbps(8192) == pytest.approx(1.25, rel=0.15)
    assert flash.read_bw_gbps(2**30) == pytest.approx(6.1, rel=0.01)
    # the effective bytes take at the peak what the chunked read takes
    assert flash.effective_bytes(1e6, 8192) / flash.peak_read_gbps == pytest.approx(flash.read_time_ns(1e6, 8192))


# ------------------------------------------------------------------ the window plan

def test_plan_of_opt_6_7b_fp32():
    opt = FlashOptions()
    plan = flash_plan(graph(), opt)
    neuron = 2 * D * 4                                     # up column + down row, fp32: 32 KiB (section 4)
    assert plan.neuron_bytes == neuron == 32 * 1024 and plan.chunk_bytes == neuron
    assert plan.new_neurons_per_layer == math.ceil(0.024 * FF)
    assert plan.window_neurons_per_layer == math.ceil(0.24 * FF)
    assert plan.flash_read_bytes == L * math.ceil(0.024 * FF) * neuron
    ffn_matrix = L * FF * neuron
    predictor = L * 128 * (D + FF) * 4
    assert plan.dram_weight_bytes == pytest.approx(plan.model_bytes - ffn_matrix + predictor
                                                   + L * math.ceil(0.24 * FF) * neuron)
    assert plan.model_bytes == pytest.approx(6.66e9 * 4, rel=0.01)             # 6.66 B parameters
    unbundled = flash_plan(graph(), FlashOptions(bundling=False))
    assert unbundled.chunk_bytes == neuron / 2 and unbundled.flash_read_bytes == plan.flash_read_bytes


def test_bytes_read_per_token_are_the_window_misses():
    """Conserved through the schedule: the flash bytes of the sparse run are the misses of every layer,
    those of the naive run the whole model; twice the misses read twice the bytes."""
    r = result()
    plan = flash_plan(graph(), FlashOptions())
    assert flash_bytes(r.main) == pytest.approx(plan.flash_read_bytes, rel=1e-12)
    assert r.main.metrics.memory_levels["flash"]["bytes"] == pytest.approx(plan.flash_read_bytes, rel=1e-9)
    assert flash_bytes(r.baselines["cpu-naive"]) == pytest.approx(sum(op.weight_bytes for op in graph().ops))
    bf16 = graph("bf16")
    assert flash_bytes(r.baselines["gpu"]) == pytest.approx(flash_plan(bf16, FlashOptions()).flash_read_bytes)
    assert flash_bytes(r.baselines["gpu-naive"]) == pytest.approx(sum(op.weight_bytes for op in bf16.ops))
    double = evaluate(load_config(CFG, overrides=["mapper.window_new=0.048", "baselines={}"]))
    assert flash_bytes(double.main) == pytest.approx(L * math.ceil(0.048 * FF) * 2 * D * 4)
    # the weights the sparse step skips are exactly the FFN neurons outside the window
    skipped = L * (FF - math.ceil(0.24 * FF)) * (2 * D + 1) * 4           # + their up-projection biases
    assert r.main.schedule.skipped_weight_bytes == skipped
    assert r.baselines["cpu-naive"].schedule.skipped_weight_bytes == 0
    # and every flash byte crosses PCIe into the GPU
    pcie = sum(t.demands.get("pcie", 0.0) for t in r.baselines["gpu"].schedule.tasks)
    assert pcie == pytest.approx(flash_bytes(r.baselines["gpu"]))


@pytest.mark.parametrize("kw, words", [
    ({"window_new": 0.2}, "cannot exceed predicted_active"),
    ({"window_resident": 0.05}, "must hold at least one token"),
    ({"window": 2}, "cannot exceed the union"),
])
def test_inconsistent_window_statistics_are_rejected(kw, words):
    with pytest.raises(ValueError, match=words):
        FlashOptions(**kw)


# ------------------------------------------------------------------ capacities

@pytest.mark.parametrize("override, words", [
    (["hardware.edge.ram_gib=12"], ["'ram'", "resident weights + predictor + window", "hardware.edge.ram_gib"]),
    (["mapper.window=10", "mapper.window_resident=0.5"], ["'ram'", "hardware.edge.ram_gib"]),
    (["hardware.flash.capacity_gib=16"], ["'flash'", "26.63 GB", "hardware.flash.capacity_gib"]),
    (["baselines.gpu.hardware.gpu.hbm_gib=4"], ["'hbm'", "hardware.gpu.hbm_gib"]),
    (["mapper.window_new=0.5"], ["window_new"]),
])
def test_what_does_not_fit_exits_2_naming_the_level(override, words):
    assert_refused_in_one_line(CFG, override, words, "/tmp/hwsim-test-llm-in-flash")


def test_the_window_fits_dram_that_the_model_does_not():
    r = result()
    plan = flash_plan(graph(), FlashOptions())
    ram = load_config(CFG).main.hardware.edge.ram_bytes
    assert plan.dram_peak_bytes <= ram < plan.model_bytes
    assert plan.model_bytes > 1.8 * ram                         # a model about twice the DRAM
    assert r.main.metrics.memory_levels["ram"]["capacity_bytes"] == ram


# ------------------------------------------------------------------ naive vs sparse, physics

def test_naive_loading_is_never_faster():
    r = result()
    t = {n: (r.main if n == "main" else r.baselines[n]).metrics.iteration_latency_s
         for n in ("main", "cpu-naive", "cpu-no-bundling", "gpu", "gpu-naive")}
    assert t["cpu-naive"] >= t["cpu-no-bundling"] >= t["main"]
    assert t["gpu-naive"] >= t["gpu"]
    # and on a device that holds the whole model the sparse token is still no slower than naive
    big = evaluate(load_config(CFG, overrides=["hardware.edge.ram_gib=64", "baselines={}"]))
    naive = evaluate(load_config(CFG, overrides=["hardware.edge.ram_gib=64", "mapper.loading=naive",
                                                 "baselines={}"]))
    assert naive.main.metrics.iteration_latency_s >= big.main.metrics.iteration_latency_s


def test_token_physics():
    """No token beats its flash reads at the chunked rate; the sparse step is serial per layer
    (predictor -> read -> window update -> FFN), so it takes at least the reads plus the compute
    that cannot overlap them; the naive step at least the whole model at the peak."""
    r = result()
    flash = load_config(CFG).main.hardware.flash
    plan = flash_plan(graph(), FlashOptions())
    t = r.main.metrics.iteration_latency_s * 1e9
    io = L * flash.read_time_ns(plan.new_neurons_per_layer * plan.neuron_bytes, plan.chunk_bytes)
    assert t >= io
    assert io == pytest.approx(io_latency_ms("fp32", True) * 1e6)
    naive = r.baselines["cpu-naive"].metrics.iteration_latency_s * 1e9
    assert naive >= plan.model_bytes / flash.peak_read_gbps
    # each read waits for its layer's predictor: no flash read overlaps a layer's attention
    sched = r.main.schedule
    reads = [tk for tk in sched.tasks if tk.name.startswith("read ")]
    assert len(reads) == L and all(any(sched.tasks[d].name.endswith("predictor") for d in tk.deps)
                                   for tk in reads)
    # I/O falls with bigger chunks: bundling halves the reads
    assert io_latency_ms("fp16", True) < io_latency_ms("fp16", False) < 2 * io_latency_ms("fp16", True)


def test_sparse_rejects_batches_and_tensor_parallelism():
    with pytest.raises(ConfigError):
        evaluate(load_config(CFG, overrides=["workload.batch=4", "baselines={}"]))


def test_an_edge_device_without_disk_has_no_disk_level():
    """The M1 Max edge preset has no disk (its SSD is the flash section); TPI-LLM on it exits 2."""
    cfg = load_config(CFG)
    edge = cfg.main.hardware.edge
    assert edge.disk_gib is None
    assert [lv.name for lv in cfg.main.hardware.device(("edge", "flash")).levels] == ["ram", "flash"]
    with pytest.raises(ConfigError, match="no disk"):
        edge.disk_bytes
    r = run(CFG, "--out", "/tmp/hwsim-test-llm-in-flash", "--set", "mapper={name: tpi}", "--set", "baselines={}")
    assert r.exit_code == 2 and "hardware.edge.disk_gib" in r.output, r.output
