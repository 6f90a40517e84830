"""Every device of a replica on a topology (issue 10, "Done when" (b) and (c)): collectives
lowered to flows on the links, link bytes equal to the closed forms, a pipeline bubble, the
slowest expert group setting the pace, identical devices simulated once and exactly."""
import math
import subprocess
import sys

import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.hw.gpu import GPUSpec
from hwsim.hw.interconnect import SwitchSpec
from hwsim.hw.link import LinkSpec
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.partition import partition, schedule_replica
from hwsim.mappers.registry import MAPPERS
from hwsim.pipeline import evaluate
from hwsim.sim.engine import simulate
from hwsim.workloads.models import MoESpec
from hwsim.workloads.ops import OpKind
from hwsim.workloads.routing import RoutingSpec

from test_partition import gpu_hardware, tiny_model, workload


@pytest.fixture(scope="module")
def llama70b():
    return evaluate(load_config(CONFIG_DIR / "llama2-70b-tp8-hgx.yaml"))


def test_tp8_link_bytes_are_the_ring_all_reduce_closed_form(llama70b):
    """80 layers x 2 all-reduces of the batch's hidden states, B = 64 x 8192 x 2 bytes; a ring
    over p = 8 sends 2(p-1)/p x B per device (Patarasuk & Yuan 2009)."""
    B, p = 64 * 8192 * 2, 8
    assert llama70b.main.metrics.bytes["link"] == pytest.approx(160 * 2 * (p - 1) / p * B, rel=1e-9)
    # every flow is a task on the NVSwitch ports, none on a device-local link
    # every byte crosses two links of 5 pJ/bit (configs/presets/hgx-h100.yaml), on 8 devices
    energy = llama70b.main.metrics.energy_breakdown_j["link"]
    assert energy == pytest.approx(8 * llama70b.main.metrics.bytes["link"] * 8 * 10e-12, rel=1e-9)
    links = {r for t in llama70b.main.schedule.tasks for r in t.demands if r.startswith("link")}
    assert links == {f"link:dev{i}->sw0" for i in range(8)} | {f"link:sw0->dev{i}" for i in range(8)}


def test_pp2_tp4_link_bytes_are_the_closed_forms(llama70b):
    """Two micro-batches of 32 requests (buffer B/2): per stage 40 layers x 2 all-reduces x 2
    micro-batches over p = 4 (2(p-1)/p x B/2 each), and the hand-off: 4 ranks x 2 micro-batches
    x B/2 sent by stage 0, over the 8 devices."""
    B, p = 64 * 8192 * 2, 4
    all_reduce = 40 * 2 * 2 * 2 * (p - 1) / p * B / 2
    hand_off = 4 * 2 * (B / 2) / 8
    pp = llama70b.baselines["pp2-tp4"].metrics
    assert pp.bytes["link"] == pytest.approx(all_reduce + hand_off, rel=1e-9)


def test_a_bubble_appears_under_pipeline_parallelism(llama70b):
    """GPipe with p = 2 stages and m = 2 micro-batches idles each stage (p-1)/(m+p-1) = 1/3 of
    the pass at least (Huang et al. 2019): stage 1 waits for the first micro-batch, stage 0
    for the last one to drain. Under TP 8 the one device kind is busy far longer."""
    pp = llama70b.baselines["pp2-tp4"]
    busy = pp.metrics.busy
    assert busy["d0.gpu"] <= 2 / 3 + 1e-9 and busy["d1.gpu"] <= 2 / 3 + 1e-9
    trace, tasks = pp.trace, pp.schedule.tasks
    first_on_stage1 = min(trace.start_ns[t.id] for t in tasks if t.unit == "d1.gpu")
    last_on_stage0 = max(trace.end_ns[t.id] for t in tasks if t.unit == "d0.gpu")
    assert first_on_stage1 > 0.25 * trace.makespan_ns
    assert last_on_stage0 < 0.75 * trace.makespan_ns
    assert pp.metrics.iteration_latency_s > llama70b.main.metrics.iteration_latency_s


def switch(n: int) -> SwitchSpec:
    return SwitchSpec(kind="switch", devices=n, port_bw_gbps=450, link_latency_ns=1700,
                      energy_pj_per_bit=5.0)


def run_on(w, topology, dedupe=True):
    hw = HardwareSpec(gpu=gpu_hardware().gpu, link=LinkSpec(bw_gbps=450))
    options = MAPPERS["gpu"].options()
    part, replica = schedule_replica(w, lambda g: MAPPERS["gpu"].build(g, hw, options), dedupe,
                                     topology.build())
    return part, replica, simulate(replica.schedule)


def test_identical_devices_simulated_once_equal_every_device_simulated():
    """Balanced routing makes the expert groups identical: simulated once and counted, the pass
    takes the same time and energy as with every (stage, group) simulated, to 1e-9."""
    moe = MoESpec(n_experts=8, top_k=2, d_ff_expert=1024)
    w = workload(tiny_model(moe), tp=2, ep=4, pp=2, batch=16, routing=RoutingSpec(distribution="balanced"))
    once, r1, t1 = run_on(w, switch(16))
    every, r2, t2 = run_on(w, switch(16), dedupe=False)
    assert (len(once.devices), len(every.devices)) == (2, 8)
    assert len(r1.schedule.tasks) < len(r2.schedule.tasks)
    assert t1.makespan_ns == pytest.approx(t2.makespan_ns, rel=1e-9)
    energy = [math.fsum(t.energy_j for t in r.schedule.tasks) for r in (r1, r2)]
    assert energy[0] == pytest.approx(energy[1], rel=1e-9)


def test_the_slowest_expert_group_sets_the_pace():
    """Skewed routing: no group goes past a layer's combine before every group's experts of
    that layer are done, so the groups with light experts idle; balanced routing is faster."""
    moe = MoESpec(n_experts=8, top_k=2, d_ff_expert=4096)
    skewed = workload(tiny_model(moe), ep=4, phase="prefill", batch=4,
                      routing=RoutingSpec(distribution="zipf", skew=1.5))
    part, replica, trace = run_on(skewed, switch(4))
    tasks = replica.schedule.tasks
    assert len(part.devices) == 4
    def op_of(t):
        graph = part.devices[t.device].graph
        return graph.op(t.op) if t.op in graph else None

    for layer in range(4):
        mine = [(t, op_of(t)) for t in tasks if t.layer == layer]
        experts_end = max(trace.end_ns[t.id] for t, op in mine
                          if t.component == "gpu" and op.expert is not None and op.expert >= 0)
        combine_done = [max(trace.end_ns[t.id] for t, op in mine
                            if t.device == k and op is not None and op.kind == OpKind.ALL_TO_ALL)
                        for k in range(4)]        # the last all-to-all of the layer on each group
        assert min(combine_done) >= experts_end
    work = [sum(trace.end_ns[t.id] - trace.start_ns[t.id] for t in tasks
                if t.device == k and t.component == "gpu") for k in range(4)]
    assert max(work) / min(work) > 1.05
    balanced = skewed.model_copy(update={"routing": RoutingSpec(distribution="balanced")})
    assert run_on(balanced, switch(4))[2].makespan_ns < trace.makespan_ns


def test_shipped_mixtral_ep8_shows_the_imbalance_device_by_device():
    result = evaluate(load_config(CONFIG_DIR / "mixtral-8x7b-ep8-hgx.yaml"))
    util = [result.main.metrics.utilization[f"d{k}.gpu"] for k in range(8)]
    assert max(util) / min(util) > 1.2
    balanced = result.baselines["balanced"]
    assert len(balanced.replica[0].devices) == 1
    assert balanced.metrics.iteration_latency_s < result.main.metrics.iteration_latency_s


@pytest.mark.parametrize("change, key", [
    ("workload.tp=16", "hardware.topology"),
    ("hardware.link=nvlink3", "hardware.link"),
])
def test_a_replica_that_does_not_fit_the_topology_is_one_line_exit_2(tmp_path, change, key):
    run = subprocess.run([sys.executable, "-m", "hwsim.cli", "run", str(CONFIG_DIR / "llama2-70b-tp8-hgx.yaml"),
                          "--set", change, "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and key in run.stderr


def test_a_topology_chooses_its_all_reduce_algorithm():
    """`hardware.topology.all_reduce: auto` lowers each tensor-parallel all-reduce with the
    algorithm of least estimated time: for 70B decode's 1 MB all-reduces on 8 GPUs that is not
    the ring (latency-bound), and the iteration is faster than with the ring."""
    path = CONFIG_DIR / "llama2-70b-tp8-hgx.yaml"
    ring = evaluate(load_config(path, ["hardware.topology.all_reduce=ring"])).main
    auto = evaluate(load_config(path, ["hardware.topology.all_reduce=auto"])).main
    from hwsim.hw.interconnect import Algorithm
    from hwsim.hw.interconnect.collectives import lower_all_reduce
    cfg = load_config(path)
    message = 64 * 8192 * 2                    # batch x d_model x fp16 bytes, per all-reduce
    chosen = lower_all_reduce(cfg.hardware.topology.spec.build(), range(8), message, "auto")
    assert chosen.algorithm != Algorithm.RING
    flows = [len([t for t in r.schedule.tasks if t.component == "link" and t.demands])
             for r in (ring, auto)]
    assert flows[0] != flows[1]                # the lowering changed
    assert auto.metrics.iteration_latency_s < ring.metrics.iteration_latency_s
