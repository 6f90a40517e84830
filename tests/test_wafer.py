"""Wafer-scale engines (issue 15, item 1): hwsim/hw/wafer.py and the `wafer_pipeline` mapper.

Physics over the shipped WSE configs (each region's and wafer's SRAM holds what was placed there,
no op beats its roofline on its own region, every activation that leaves a region arrives once at
each consuming region over the fabric or the wafer link), the closed forms of the per-token
pipeline latency on a tiny model and a tiny wafer, the bound attribution, and the refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.errors import ConfigError
from hwsim.hw.wafer import (FABRIC, WAFER_LINK, WaferSpec, region_op_time, region_side, sram_bytes)
from hwsim.mappers.wafer import (BOUNDS, TOKEN_ID_BYTES, binding_bound, op_groups, place_regions,
                                 split_over_wafers, token_latency_terms)
from hwsim.pipeline import evaluate
from hwsim.workloads.ops import OpKind

WSE_CONFIGS = ("wse3-llama3-8b", "wse3-llama3-70b", "wse3-llama3.1-405b")


@pytest.fixture(scope="module", params=WSE_CONFIGS)
def wse(request):
    return evaluate(load_config(CONFIG_DIR / f"{request.param}.yaml")).main


def spec_of(r) -> WaferSpec:
    return r.system.hardware.specs("wafer")[0]


def test_regions_and_wafers_hold_what_is_placed_on_them(wse):
    spec = spec_of(wse)
    group_of, regions = place_regions(wse.graph, spec)
    _, resident = op_groups(wse.graph)
    assert set(regions) == set(resident) == set(group_of.values())
    order = list(resident)
    wafers = [regions[g].wafer for g in order]
    assert wafers == sorted(wafers) and set(wafers) == set(range(spec.wafers))   # contiguous runs, all used
    for w in range(spec.wafers):
        on = [regions[g] for g in order if regions[g].wafer == w]
        assert sum(r.cores for r in on) <= spec.cores
        assert sum(r.resident_bytes for r in on) <= spec.sram_gb * 1e9
        for r in on:
            assert r.cores >= 1 and r.resident_bytes <= r.cores * spec.sram_bytes_per_core
    # everything resident: the weights of the graph (table included) and its KV cache
    info = wse.graph.info
    kv = sum(op.kv_read_bytes + op.kv_write_bytes for op in wse.graph.ops)
    assert sum(resident.values()) == pytest.approx(info.weight_bytes_per_device + kv)


def test_no_op_beats_its_roofline_on_its_region(wse):
    spec = spec_of(wse)
    group_of, regions = place_regions(wse.graph, spec)
    ops = {op.name: op for op in wse.graph.ops}
    durations = wse.trace.end_ns - wse.trace.start_ns
    checked = 0
    for t in wse.schedule.tasks:
        if t.component != "wafer":
            continue
        op, region = ops[t.op], regions[group_of[t.op]]
        floor = max(op.flops / (region.cores * spec.flops_per_core_per_ns),
                    sram_bytes(op) / (region.cores * spec.sram_bw_per_core))
        slack = 4 * np.spacing(wse.trace.end_ns[t.id])     # a few ulps of a long run's end time
        assert durations[t.id] >= floor * (1 - 1e-9) - slack, t.name
        # and no faster than the whole wafer's peak either
        assert durations[t.id] >= op.flops / spec.peak_flops_per_ns * (1 - 1e-9) - slack
        checked += 1
    assert checked == len(wse.graph.ops)


def test_fabric_bytes_conserved_between_producer_and_consumer_regions(wse):
    """Each producer's output crosses once to every other region that consumes it (fabric on
    one wafer, wafer link across), plus the sampled token back to the embedding."""
    spec = spec_of(wse)
    group_of, regions = place_regions(wse.graph, spec)
    ops = {op.name: op for op in wse.graph.ops}
    expected: dict[tuple[str, str], float] = {}
    for op in wse.graph.ops:
        for p in wse.graph.predecessors(op.name):
            if group_of[p] != group_of[op.name]:
                expected[(p, group_of[op.name])] = float(ops[p].act_out_bytes)
    sent: dict[tuple[str, str], float] = {}
    by_kind = {FABRIC: 0.0, WAFER_LINK: 0.0}
    for t in wse.schedule.tasks:
        if t.component in (FABRIC, WAFER_LINK):
            src, dst = t.name.split("->")
            nbytes = t.bytes_by_level[t.component]
            by_kind[t.component] += nbytes
            if src == "token":
                assert nbytes == TOKEN_ID_BYTES * wse.graph.info.batch
                continue
            assert (src, dst) not in sent
            sent[(src, dst)] = nbytes
            same_wafer = regions[group_of[src]].wafer == regions[dst].wafer
            assert t.component == (FABRIC if same_wafer else WAFER_LINK), t.name
    assert sent == expected
    assert by_kind[FABRIC] + by_kind[WAFER_LINK] == pytest.approx(sum(expected.values()) + TOKEN_ID_BYTES)
    assert wse.metrics.bytes.get(FABRIC, 0) == round(by_kind[FABRIC])
    # crossings of the wafer link: one hand-off per wafer boundary (the residual stream and the
    # normalised input may both cross) plus the token back; none on one wafer
    crossings = sum(1 for t in wse.schedule.tasks if t.component == WAFER_LINK)
    assert (crossings == 0) if spec.wafers == 1 else (spec.wafers <= crossings <= 2 * spec.wafers)


def test_batch1_token_latency_is_the_chain_and_its_terms_add_up(wse):
    """At batch 1 every task waits for the one before: the iteration is the sum of the tasks'
    standalone times, which `token_latency_terms` splits without loss."""
    chain = sum(wse.schedule.standalone_ns(t) for t in wse.schedule.tasks)
    assert wse.trace.makespan_ns == pytest.approx(chain, rel=1e-9)
    terms = token_latency_terms(wse.schedule)
    assert set(terms) == set(BOUNDS) and all(v >= 0 for v in terms.values())
    assert sum(terms.values()) == pytest.approx(wse.trace.makespan_ns, rel=1e-9)


def test_sram_bandwidth_is_not_what_binds(wse):
    terms = token_latency_terms(wse.schedule)
    assert binding_bound(wse.schedule) == "fabric_hops"
    assert terms["sram"] < terms["fabric_hops"]
    spec = spec_of(wse)
    # streaming every SRAM byte at the wafers' aggregate bandwidth would allow far more tokens/s
    sram_only = spec.wafers * spec.sram_bw_pb_per_s * 1e15 / wse.metrics.bytes["wafer_sram"]
    assert sram_only > 20 * wse.metrics.throughput_tokens_per_s


# ---- closed forms on a tiny model and a tiny wafer -----------------------------------------------

# Round numbers so that every per-core figure is exact: 10,000 cores (a 100 x 100 mesh), 50 KB of
# SRAM, 25 B/ns of SRAM bandwidth and 100 FLOP/ns per core, links of 128e6 / 8 / 4e4 = 400... bytes/ns.
TINY_WAFER = dict(component="wafer", cores=10_000, sram_gb=0.5, sram_bw_pb_per_s=0.25,
                  fabric_pbit_per_s=1.28, peak_pflops=1.0, clock_ghz=1.0, hop_cycles=2.0,
                  process_nm=5, die_area_mm2=100.0, power_w=1000.0, wafers=1,
                  wafer_link_gb_per_s=10.0, wafer_link_latency_ns=500.0)
TINY_MODEL = dict(name="tiny", source="test", n_layers=2, d_model=64, n_heads=4, n_kv_heads=2,
                  d_ff=128, vocab=256, max_seq_len=128, norm="rmsnorm", ffn="swiglu",
                  positions="rope", bias=False, tied_embeddings=False)


def tiny(tmp_path, wafers: int = 1, hop_cycles: float = 2.0):
    cfg = {"name": "tiny-wafer",
           "workload": {"model": TINY_MODEL, "phase": "decode", "batch": 1,
                        "requests": {"distribution": "fixed", "context_len": 32}, "dtype": "bf16"},
           "hardware": {"wafer": {**{k: v for k, v in TINY_WAFER.items() if k != "component"},
                                  "wafers": wafers, "hop_cycles": hop_cycles}},
           "mapper": {"name": "wafer_pipeline"}}
    path = tmp_path / f"tiny-{wafers}-{hop_cycles}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return evaluate(load_config(path)).main


def test_per_core_figures_of_the_tiny_wafer():
    s = WaferSpec(**{k: v for k, v in TINY_WAFER.items() if k != "component"})
    assert s.mesh_side == 100
    assert s.sram_bytes_per_core == 50_000
    assert s.sram_bw_per_core == 25.0                  # 0.25e15 B/s / 1e4 cores = 25 B/ns
    assert s.flops_per_core_per_ns == 100.0
    assert s.link_bw == 4.0                            # 1.28e15 b/s / 8 / (4 x 1e4) = 4 B/ns
    assert s.hop_ns == 2.0


def test_region_op_time_closed_form():
    s = WaferSpec(**{k: v for k, v in TINY_WAFER.items() if k != "component"})
    from hwsim.workloads.ops import MatMul, Op
    op = Op(name="gemv", kind=OpKind.MATMUL, layer=0, flops=2 * 64 * 96, weight_bytes=64 * 96 * 2,
            act_in_bytes=128, act_out_bytes=192, dtype="bf16",
            matmul=MatMul(m=1, n=96, k=64))
    t = region_op_time(s, 30, op)                      # a 6 x 6 block (30 cores, side 6)
    assert t.compute_ns == pytest.approx(12288 / (30 * 100.0))
    assert t.sram_ns == pytest.approx((12288 + 128 + 192) / (30 * 25.0))
    assert t.hop_ns == 2 * (6 - 1) * 2.0
    assert t.stream_ns == pytest.approx((128 + 192) / 6 / 4.0)
    ew = Op(name="add", kind=OpKind.ELEMENTWISE, layer=0, flops=64, act_in_bytes=256,
            act_out_bytes=128, dtype="bf16")
    assert region_op_time(s, 30, ew).latency_ns == 0.0


def test_tiny_pipeline_latency_closed_form(tmp_path):
    """One wafer: the token's latency is, op by op on its region of floor(cores x bytes / total)
    cores, max(FLOPs / (c x 100), bytes / (c x 25)) + hops x 2 ns + stream; plus each hand-off
    between regions, ceil((s_a + s_b) / 2) hops + bytes / (min side x 4 B/ns); plus the token's
    way back: the head's arg-max (s_head - 1 hops) and a wafer side (100 hops)."""
    r = tiny(tmp_path)
    g = r.graph
    group_of, resident = op_groups(g)
    total = sum(resident.values())
    cores = {k: max(1, int(10_000 * b / total)) for k, b in resident.items()}
    side = {k: math.ceil(math.sqrt(c)) for k, c in cores.items()}
    reducing = {OpKind.MATMUL, OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT, OpKind.NORM, OpKind.SOFTMAX}
    expected = 0.0
    crossed = set()
    ops = {op.name: op for op in g.ops}
    for op in g.ops:
        grp = group_of[op.name]
        c, s = cores[grp], side[grp]
        nbytes = op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes + op.act_in_bytes + op.act_out_bytes
        expected += max(op.flops / (c * 100.0), nbytes / (c * 25.0))
        if op.kind in reducing:
            expected += 2 * (s - 1) * 2.0 + (op.act_in_bytes + op.act_out_bytes) / s / 4.0
        for p in g.predecessors(op.name):
            if group_of[p] != grp and (p, grp) not in crossed:
                crossed.add((p, grp))
                a, b = side[group_of[p]], s
                expected += math.ceil((a + b) / 2) * 2.0 + ops[p].act_out_bytes / (min(a, b) * 4.0)
    head, embed = side["head"], side["embed"]
    expected += (head - 1 + 100) * 2.0 + TOKEN_ID_BYTES / (min(head, embed) * 4.0)
    assert r.metrics.iteration_latency_s * 1e9 == pytest.approx(expected, rel=1e-9)
    assert r.metrics.throughput_tokens_per_s == pytest.approx(1e9 / expected, rel=1e-9)


def test_latency_is_affine_in_the_hop_latency(tmp_path):
    """Only the hop terms depend on hop_cycles: the latency grows by the same amount per cycle,
    and that amount is the token's hop count x 1 ns (a 1 GHz clock)."""
    m = {h: tiny(tmp_path, hop_cycles=h) for h in (2.0, 4.0, 6.0)}
    span = {h: r.trace.makespan_ns for h, r in m.items()}
    step = span[4.0] - span[2.0]
    assert span[6.0] - span[4.0] == pytest.approx(step, rel=1e-9)
    r = m[2.0]
    group_of, regions = place_regions(r.graph, spec_of(r))
    reducing = {OpKind.MATMUL, OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT, OpKind.NORM, OpKind.SOFTMAX}
    hops = sum(2 * (regions[group_of[op.name]].side - 1) for op in r.graph.ops if op.kind in reducing)
    hops += sum(t.latency_ns / 2.0 for t in r.schedule.tasks if t.component in (FABRIC, WAFER_LINK))
    assert step == pytest.approx(2.0 * hops, rel=1e-9)


def test_two_wafers_cross_the_wafer_link_closed_form(tmp_path):
    r = tiny(tmp_path, wafers=2)
    spec = spec_of(r)
    group_of, regions = place_regions(r.graph, spec)
    links = [t for t in r.schedule.tasks if t.component == WAFER_LINK]
    assert links and links[-1].name == "token->embed"
    for t in links:
        src, dst = t.name.split("->")
        a = regions["head" if src == "token" else group_of[src]]
        b = regions[dst]
        assert a.wafer != b.wafer
        nbytes = t.bytes_by_level[WAFER_LINK]
        hops = math.ceil(a.side / 2) + math.ceil(b.side / 2) + ((a.side - 1) if src == "token" else 0)
        assert r.schedule.standalone_ns(t) == pytest.approx(hops * 2.0 + 500.0 + nbytes / 10.0)
    assert token_latency_terms(r.schedule)["wafer_links"] > 0
    # the split balances: the largest wafer holds no more than needed by a contiguous split
    _, resident = op_groups(r.graph)
    sizes = list(resident.values())
    wafer_of = split_over_wafers(sizes, 2)
    loads = [sum(s for s, w in zip(sizes, wafer_of) if w == k) for k in range(2)]
    best = min(max(sum(sizes[:i]), sum(sizes[i:])) for i in range(1, len(sizes)))
    assert max(loads) == pytest.approx(best)


def test_split_over_wafers_minimises_the_largest_run():
    rng = np.random.default_rng(0)
    for _ in range(50):
        sizes = list(rng.uniform(1, 10, size=rng.integers(3, 9)))
        for k in range(1, 4):
            wafer_of = split_over_wafers(sizes, k)
            assert wafer_of == sorted(wafer_of) and max(wafer_of) <= k - 1
            loads = [sum(s for s, w in zip(sizes, wafer_of) if w == j) for j in range(k)]
            # brute force over all contiguous cuts
            import itertools
            best = min(max(sum(sizes[a:b]) for a, b in zip((0, *cuts), (*cuts, len(sizes))))
                       for cuts in itertools.combinations(range(1, len(sizes)), k - 1))
            assert max(loads) == pytest.approx(best, rel=1e-6)


def test_too_few_wafers_is_one_line_naming_how_many(tmp_path):
    """Three wafers hold less SRAM than the 70B's weights (the generic fit check); 20 wafers hold
    the 405B's 812 GB in total, but whole 6.4 GB layers need 21 (the mapper's check)."""
    with pytest.raises(ConfigError, match="does not fit"):
        evaluate(load_config(CONFIG_DIR / "wse3-llama3-70b.yaml", ["hardware.wafer.wafers=3"]))
    with pytest.raises(ConfigError, match="at least 21 wafers"):
        evaluate(load_config(CONFIG_DIR / "wse3-llama3.1-405b.yaml", ["hardware.wafer.wafers=20"]))


def test_wse2_and_wse3_presets_per_core():
    for name, cores, kb in (("wse-2", 850_000, 47.0), ("wse-3", 900_000, 48.9)):
        data = yaml.safe_load((CONFIG_DIR / "presets" / f"{name}.yaml").read_text())
        data.pop("component")
        s = WaferSpec(**data)
        assert s.cores == cores and s.sram_bytes_per_core / 1e3 == pytest.approx(kb, abs=0.1)
        assert region_side(s.cores) == s.mesh_side


def test_report_shows_which_bound_binds():
    from hwsim.report import format_table
    result = evaluate(load_config(CONFIG_DIR / "wse3-llama3-8b.yaml"))
    text = format_table(result)
    row = next(line for line in text.splitlines() if line.startswith("main") and line.endswith("fabric_hops"))
    assert row.count("%") == 4            # the four terms with their shares
    # systems not on wafers get no such section
    assert "wafer_links" not in format_table(evaluate(load_config(CONFIG_DIR / "pim-gpt.yaml")))


def test_sweeps_simulate_every_layer_on_wafers():
    """Region sizes depend on how many layers share the wafer: no layer extrapolation."""
    from hwsim.extrapolate import can_extrapolate
    cfg = load_config(CONFIG_DIR / "wse3-llama3-70b.yaml")
    assert not can_extrapolate(cfg.main)
    r = evaluate(cfg, extrapolate_layers=True).main
    assert r.extrapolation_period is None
    assert r.metrics.throughput_tokens_per_s == pytest.approx(
        evaluate(cfg).main.metrics.throughput_tokens_per_s, rel=1e-12)
