"""The `sequence_parallel` scenario (issue 13 item 7): one attention layer's prefill over a long
sequence cut across the devices of `hardware.topology`, as Ring-Attention or TokenRing
(mappers/seqpar.py builds the schedule: per-step compute tasks on every GPU and P2P flows on the
topology's links; hw/interconnect/seqpar.py says what each step computes and sends).

The result's graph holds one op per task of every device (attention blocks, merges, and one P2P
op per send), so the physics checks of a pass hold; throughput counts the sequence's tokens
through the layer. `metrics.seqpar`: the compute-only time (the busiest GPU's kernels back to
back), the exposed communication (makespan minus it) and the bytes per link per step.
"""
from __future__ import annotations

import dataclasses

from hwsim.errors import ConfigError


def _check(system, key_prefix: str):
    w, hw, spec = system.workload, system.hardware, system.scenario
    if w.kind != "transformer":
        raise ConfigError("the sequence_parallel scenario runs a Transformer's attention",
                          key=f"{key_prefix}workload.kind")
    if hw.present().get("gpu") is None:
        raise ConfigError("the sequence_parallel scenario runs on GPUs (hardware.gpu)",
                          key=f"{key_prefix}hardware")
    if hw.topology is None:
        raise ConfigError("the sequence_parallel scenario needs hardware.topology (the devices "
                          "the sequence is cut over)", key=f"{key_prefix}hardware.topology")
    if hw.link is not None:
        raise ConfigError("give a topology, not a link, for the sequence_parallel scenario",
                          key=f"{key_prefix}hardware.link")
    topology = hw.topology.root
    if spec.degree > topology.num_devices:
        raise ConfigError(f"degree {spec.degree} needs {spec.degree} devices; the {topology.kind} "
                          f"has {topology.num_devices}", key=f"{key_prefix}scenario.degree")
    if spec.seq_len % spec.degree:
        raise ConfigError(f"degree {spec.degree} must divide seq_len {spec.seq_len}",
                          key=f"{key_prefix}scenario.seq_len")
    if w.model.mla is not None:
        raise ConfigError("sequence-parallel attention is modelled for multi-head and grouped-query "
                          "attention, not latent attention", key=f"{key_prefix}workload.model")
    return topology


def link_bytes_per_step(spec, model, dtype_bytes: float) -> dict[str, float]:
    """The closed forms of the scheme's sends, bytes per link per step."""
    from hwsim.hw.interconnect.seqpar import ring_kv_bytes, tokenring_out_bytes, tokenring_q_bytes
    b = spec.seq_len // spec.degree
    if spec.scheme == "ring_attention":
        return {"kv": ring_kv_bytes(b, model.kv_heads, model.hd, dtype_bytes)}
    return {"q": tokenring_q_bytes(b, model.n_heads, model.hd, dtype_bytes),
            "out": tokenring_out_bytes(b, model.n_heads, model.hd, dtype_bytes)}


@dataclasses.dataclass(frozen=True)
class SequenceParallelScenario:
    name: str = "sequence_parallel"

    def run(self, system, key_prefix: str = ""):
        from hwsim.mappers.partition import ReplicaSchedule
        from hwsim.mappers.seqpar import seqpar_schedule
        from hwsim.metrics import compute_metrics
        from hwsim.pipeline import SystemResult, device_area_mm2, device_of
        from hwsim.sim.engine import simulate
        from hwsim.workloads.ops import DTYPE_BYTES, Collective, Op, OpGraph, OpKind, WorkloadInfo
        topology = _check(system, key_prefix)
        spec, w, gpu = system.scenario, system.workload, system.hardware.gpu
        m, dtype = w.model, w.attention_dtype or w.dtype
        n = spec.degree
        sched = seqpar_schedule(spec.scheme, n, spec.seq_len, m.n_heads, m.kv_heads, m.hd, dtype,
                                spec.causal, gpu, topology.build())
        trace = simulate(sched)
        info = WorkloadInfo(model=m.name, phase="prefill", batch=1, tokens=spec.seq_len,
                            n_layers=1, tp=n)
        graph = OpGraph(info)
        sends = {label: nbytes for label, _, _, nbytes in sched.sent}
        for t in sched.tasks:
            if t.op in graph:
                continue
            if t.op in sends:
                graph.add(Op(name=t.op, kind=OpKind.P2P, layer=0, dtype=dtype, flops=0.0,
                             act_in_bytes=sends[t.op], act_out_bytes=sends[t.op],
                             collective=Collective(group=2, bytes=sends[t.op])))
            else:
                attn = ".attn" in t.op
                graph.add(Op(name=t.op, kind=OpKind.ATTENTION_SCORE if attn else OpKind.ELEMENTWISE,
                             layer=0, dtype=dtype, flops=t.flops,
                             act_in_bytes=t.bytes_by_level["hbm"], act_out_bytes=0))
        busy: dict[str, float] = {}
        for t in sched.tasks:
            for r, work in t.demands.items():
                if r.endswith(".gpu"):
                    busy[r] = busy.get(r, 0.0) + work
        compute_ns = max(busy.values())
        replica = ReplicaSchedule(sched, [1.0] * len(sched.tasks), n, (1,) * n,
                                  {f"d{i}.{u}": (i, u) for i in range(n) for u in ("gpu", "hbm")})
        device = device_of(system)
        metrics = compute_metrics(graph, sched, trace, device_area_mm2(system, graph), device.levels,
                                  replica=replica)
        doc = {"scheme": spec.scheme, "degree": n, "seq_len": spec.seq_len,
               "block_tokens": spec.seq_len // n, "compute_only_s": compute_ns * 1e-9,
               "exposed_comm_s": max(trace.makespan_ns - compute_ns, 0.0) * 1e-9,
               "link_bytes_per_step": link_bytes_per_step(spec, m, DTYPE_BYTES[dtype])}
        metrics = dataclasses.replace(metrics, seqpar=doc)
        return SystemResult(system, graph, sched, trace, metrics, every_device_scheduled=True)


def seqpar_header(result) -> str:
    """The scenario's lines above the tables of `hwsim run`."""
    lines = ["Sequence-parallel attention (hwsim.seqpar): one causal attention layer; the tables "
             "count its tokens (layer ms = the layer)"]
    for name, r in [("main", result.main)] + list(result.baselines.items()):
        d = r.metrics.seqpar
        if d is None:
            continue
        per_step = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in d["link_bytes_per_step"].items())
        lines.append(f"  {name}: {d['scheme']} over {d['degree']} devices, {d['block_tokens']:,} "
                     f"tokens per block; compute only {d['compute_only_s'] * 1e3:.3f} ms, exposed "
                     f"communication {d['exposed_comm_s'] * 1e3:.3f} ms; per link per step: {per_step}")
    return "\n".join(lines)
