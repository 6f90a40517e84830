"""TPI-LLM on CPU edge devices (issue 16, item 5): the edge component, the sliding-window plan (closed
form of the blocks of LLaMA-2-70B's 8-way fp32 slice), hard capacities (exit 2 naming the level),
disk bytes per token = the device's slice, the read/compute/all-reduce overlap coming from the
engine, and star vs ring all-reduce on a high-latency link."""
from __future__ import annotations

import functools

import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.mappers.partition import partition
from hwsim.mappers.tpi import blocks_of, memory_plan
from hwsim.pipeline import evaluate
from hwsim.validate.tpi_llm import ring_over_star
from conftest import assert_refused_in_one_line, hwsim_run

TPI = CONFIG_DIR / "tpi-llm-70b.yaml"
D, KV, FF, L, TP, B = 8192, 8 * 128, 28672, 80, 8, 4     # LLaMA-2-70B, 8-way, fp32


@functools.cache
def result():
    return evaluate(load_config(TPI))


@functools.cache
def graph():
    return partition(load_config(TPI).main.workload).devices[0].graph


run = hwsim_run


def test_blocks_are_the_attention_and_mlp_slices_of_every_layer():
    blocks = blocks_of(graph())
    assert [b.name for b in blocks[:3]] == ["input", "L0.attn", "L0.mlp"]
    assert blocks[-1].name == "output" and len(blocks) == 2 * L + 2
    attn = (2 * D * D + 2 * D * KV) * B / TP + D * B    # Q, O (d x d) and K, V (d x kv) column/row slices, norm1
    mlp = 3 * D * FF * B / TP + D * B                    # gate, up, down, norm2 (norms are whole on every rank)
    assert blocks[1].weight_bytes == attn and blocks[2].weight_bytes == mlp
    plan = memory_plan(graph(), 2)
    head = 32000 * D * B / TP + D * B                    # the output block: the head's vocabulary slice, final norm
    assert blocks[-1].weight_bytes == head
    assert plan.window_bytes == mlp + head               # the largest pair of neighbours: L79.mlp + output
    assert plan.weight_bytes == pytest.approx(L * (attn + mlp) + blocks[0].weight_bytes + blocks[-1].weight_bytes)
    # a wider window holds more; the whole slice without the scheduler
    assert memory_plan(graph(), 4).window_bytes == 2 * mlp + attn + head
    assert memory_plan(graph(), 2, memory_schedule=False).window_bytes == plan.weight_bytes


def test_the_window_fits_ram_and_the_slice_fits_disk():
    r = result()
    spec = load_config(TPI).main.hardware.edge
    plan = memory_plan(graph(), 2)
    assert plan.peak_bytes <= spec.ram_bytes < plan.weight_bytes   # streaming is what makes it fit
    assert plan.weight_bytes <= spec.disk_bytes
    assert r.main.metrics.memory_levels["ram"]["capacity_bytes"] == spec.ram_bytes


@pytest.mark.parametrize("override, words", [
    (["mapper.memory_schedule=false"], ["'ram'", "all weights", "34.36 GB", "8.00 GB", "hardware.edge.ram_gib"]),
    (["mapper.window=40"], ["'ram'", "a window of 40 blocks", "hardware.edge.ram_gib"]),
    (["hardware.edge.ram_gib=0.25"], ["'ram'", "a window of 2 blocks", "hardware.edge.ram_gib"]),
    (["hardware.edge.disk_gib=16"], ["'disk'", "34.36 GB", "17.18 GB", "hardware.edge.disk_gib"]),
])
def test_what_does_not_fit_exits_2_naming_the_level(override, words):
    assert_refused_in_one_line(TPI, override, words, "/tmp/hwsim-test-tpi")


def test_disk_bytes_per_token_are_the_device_slice():
    r = result()
    plan = memory_plan(graph(), 2)
    assert r.main.metrics.memory_levels["disk"]["bytes"] == pytest.approx(plan.weight_bytes, rel=1e-12)
    one = memory_plan(partition(load_config(TPI).baselines["accelerate"].workload).devices[0].graph, 1)
    assert r.baselines["accelerate"].metrics.memory_levels["disk"]["bytes"] == pytest.approx(one.weight_bytes)
    assert one.weight_bytes == pytest.approx(TP * plan.weight_bytes, rel=0.01)   # the whole model


def test_overlap_comes_from_the_engine():
    """The token takes less than disk + compute + all-reduce time run back to back, and no less than
    the disk alone; the blocking variant on the same 8 devices is slower."""
    r = result()
    m = r.main.metrics
    t = m.iteration_latency_s
    spec = load_config(TPI).main.hardware.edge
    disk_s = memory_plan(graph(), 2).weight_bytes / (spec.disk_read_gbps * 1e9)
    trace_busy = {k: v * t for k, v in m.busy.items()}
    cpu = next(v for k, v in trace_busy.items() if k.endswith("edge"))
    link = max(v for k, v in trace_busy.items() if k.startswith("link"))
    assert disk_s <= t * (1 + 1e-9)
    assert t < disk_s + cpu + link
    blocking = evaluate(load_config(TPI, overrides=["mapper.overlap=false", "baselines={}"]))
    assert blocking.main.metrics.iteration_latency_s > t


def test_tpi_llm_is_faster_than_blocking_offload_on_one_device():
    r = result()
    assert r.main.metrics.iteration_latency_s < 0.2 * r.baselines["accelerate"].metrics.iteration_latency_s


def test_star_beats_ring_when_latency_dominates_and_ring_wins_on_bandwidth():
    # one token's hidden state (32 kB) at 1 ms per route: the ring's 14 latencies dominate
    assert ring_over_star(D * B) > 1.0
    # a 64 MB buffer on the same 300 Mbps ports: the star's root moves 2 (p-1) B, the ring 2 (p-1)/p B
    assert ring_over_star(64e6) < 0.2


def test_star_vs_ring_in_the_engine_when_weights_stay_in_ram():
    """LLaMA-2-7B fits RAM 8-way (3.4 GB per device): no disk reads hide the all-reduces, and the
    star's token is faster than the ring's on the same network."""
    r = evaluate(load_config(TPI, overrides=["workload.model=llama2-7b", "mapper.memory_schedule=false",
                                             ]))
    assert r.main.metrics.iteration_latency_s < r.baselines["ring"].metrics.iteration_latency_s
