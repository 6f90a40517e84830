"""The partition step: every device of a replica in the schedule (issue 10, item 4)."""
import math

import numpy as np
import pytest

from hwsim.hw.gpu import GPUSpec
from hwsim.hw.link import LinkSpec
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.partition import partition, schedule_replica
from hwsim.mappers.registry import MAPPERS
from hwsim.sim.engine import simulate
from hwsim.workloads.models import ModelSpec, MoESpec
from hwsim.workloads.ops import OpKind
from hwsim.workloads.routing import RoutingSpec
from hwsim.workloads.transformer import DeviceCoord, TransformerWorkload, build_transformer


def tiny_model(moe: MoESpec | None = None, layers: int = 4) -> ModelSpec:
    return ModelSpec(name="tiny", source="test", n_layers=layers, d_model=512, n_heads=8,
                     n_kv_heads=8, d_ff=2048, vocab=1000, max_seq_len=4096, norm="rmsnorm",
                     ffn="swiglu", positions="rope", bias=False, moe=moe)


def workload(model, **kw) -> TransformerWorkload:
    base = dict(model=model, phase="decode", batch=8, requests={"distribution": "fixed", "context_len": 256})
    return TransformerWorkload(**{**base, **kw})


def gpu_hardware() -> HardwareSpec:
    import yaml
    from hwsim.configs import PRESETS_DIR
    spec = yaml.safe_load((PRESETS_DIR / "h100-sxm.yaml").read_text())
    spec.pop("component")
    return HardwareSpec(gpu=GPUSpec(**spec), link=LinkSpec(bw_gbps=450, latency_us=1.0))


def run(w, dedupe=True, network=None):
    hw, options = gpu_hardware(), MAPPERS["gpu"].options()
    part, replica = schedule_replica(w, lambda g: MAPPERS["gpu"].build(g, hw, options), dedupe, network)
    return part, replica.schedule, simulate(replica.schedule)


def costs(graph):
    return [(op.kind, op.flops, op.weight_bytes, op.kv_read_bytes, op.matmul, op.collective)
            for op in graph.ops]


def test_the_pace_setting_device_is_the_single_device_graph():
    """The single-device model's graph (last stage, busiest expert group) is one of the
    partition's devices, op for op."""
    moe = MoESpec(n_experts=8, top_k=2, d_ff_expert=1024)
    w = workload(tiny_model(moe), ep=4, pp=2, batch=16, routing=RoutingSpec(distribution="zipf", skew=1.2))
    legacy = build_transformer(w)
    part = partition(w, dedupe=False)
    assert any(costs(d.graph) == costs(legacy) for d in part.devices if d.coord.stage == w.pp - 1)


def test_stages_hold_every_weight_once():
    m = tiny_model(layers=6)
    w = workload(m, pp=3, tp=2, batch=12)
    part = partition(w)
    per_stage = [build_transformer(w, DeviceCoord(s, 0)).info.weight_bytes_per_device for s in range(3)]
    assert math.isclose(sum(per_stage) * w.tp, m.param_count() * 2, rel_tol=1e-3)
    assert [d.count for d in part.devices] == [2, 2, 2]
    assert part.physical_devices == w.tp * w.pp


def test_expert_groups_receive_every_routed_token():
    moe = MoESpec(n_experts=8, top_k=2, d_ff_expert=1024)
    w = workload(tiny_model(moe), ep=4, batch=16)
    part = partition(w, dedupe=False)
    for layer in range(w.model.n_layers):
        up = [op for d in part.devices for op in d.graph.ops
              if op.layer == layer and op.expert is not None and op.expert >= 0 and op.matmul and op.name.endswith(".up")]
        assert sum(op.matmul.m for op in up) == w.batch * moe.top_k


def test_pipeline_fill_and_drain_show_as_idle_time():
    """With pp stages each device idles while the pipeline fills or drains: no stage is busy the
    whole pass, and the pass takes longer than any stage's own work."""
    w = workload(tiny_model(layers=4), pp=2, batch=8)
    part, schedule, trace = run(w)
    busy = {k: trace.busy_fraction(f"d{k}.gpu") for k in range(len(part.devices))}
    assert all(b < 0.95 for b in busy.values()), busy
    first_recv = min(trace.start_ns[t.id] for t in schedule.tasks if t.op == "M0.recv" and t.unit.startswith("d1."))
    assert first_recv > 0                  # stage 1 waits for stage 0's first micro-batch
    stage1 = [t.id for t in schedule.tasks if t.unit.startswith("d1.")]
    assert trace.start_ns[stage1].min() > 0


def test_slowest_expert_group_sets_the_pace():
    moe = MoESpec(n_experts=8, top_k=2, d_ff_expert=4096)
    w = workload(tiny_model(moe), ep=4, batch=8, phase="prefill",
                 requests={"distribution": "fixed", "context_len": 2048},
                 routing=RoutingSpec(distribution="zipf", skew=1.5))
    part, schedule, trace = run(w)

    def is_expert(t):                # typed provenance: the task's op in its device's graph
        graph = part.devices[t.device].graph
        return t.op in graph and (graph.op(t.op).expert or -1) >= 0

    expert_time = {k: sum(trace.end_ns[t.id] - trace.start_ns[t.id] for t in schedule.tasks
                          if t.device == k and t.component == "gpu" and is_expert(t))
                   for k in range(len(part.devices))}
    assert max(expert_time.values()) > 1.05 * min(expert_time.values())    # real imbalance
    # every group's combine of the last layer ends no earlier than the slowest group's experts
    last = w.model.n_layers - 1
    combine_ends = [trace.end_ns[t.id] for t in schedule.tasks if t.op == f"L{last}.combine"]
    expert_ends = [trace.end_ns[t.id] for t in schedule.tasks if t.layer == last and is_expert(t)]
    assert len(combine_ends) == len(part.devices)
    assert min(combine_ends) >= max(expert_ends)


def test_identical_devices_simulated_once_agree_with_the_full_expansion():
    """top_k = n_experts sends every token to every expert: the expert groups are identical, so
    dedupe simulates one of them; the timeline and energy equal those of every group simulated."""
    moe = MoESpec(n_experts=4, top_k=4, d_ff_expert=1024)
    w = workload(tiny_model(moe), ep=4, batch=16)
    p1, s1, t1 = run(w, dedupe=True)
    p4, s4, t4 = run(w, dedupe=False)
    assert len(p1.devices) == 1 and len(p4.devices) == 4
    assert p1.physical_devices == p4.physical_devices == 4
    assert t1.makespan_ns == pytest.approx(t4.makespan_ns, rel=1e-12)
    e1 = sum(t.energy_j for t in s1.tasks)
    e4 = sum(t.energy_j for t in s4.tasks)
    assert e1 == pytest.approx(e4, rel=1e-12)
    assert sum(s1.static_power_w.values()) == pytest.approx(sum(s4.static_power_w.values()))


def test_dense_single_stage_is_one_device_for_all_tp_ranks():
    w = workload(tiny_model(), tp=4)
    part = partition(w)
    assert len(part.devices) == 1 and part.devices[0].count == 4 and not part.edges


def test_cost_grows_with_distinct_devices_not_tp():
    w1 = workload(tiny_model(), tp=1)
    w8 = workload(tiny_model(), tp=8)
    assert len(run(w1)[1].tasks) <= len(run(w8)[1].tasks) <= 2 * len(run(w1)[1].tasks)
    assert all(t.op != "" for t in run(w8)[1].tasks)
    assert np.isfinite(run(w8)[2].makespan_ns)
