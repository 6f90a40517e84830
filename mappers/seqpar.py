"""Sequence-parallel attention as a schedule: Ring-Attention against TokenRing (issue 13 item 7).

One attention layer over a sequence of `seq_len` tokens cut into `degree` blocks, one per device
on a topology (a fully connected mesh is TokenRing's setting). Every step of every device is a
compute task on its GPU (exclusive: one kernel at a time) and every block that moves is a
point-to-point flow on the topology's links (hw/interconnect: `lower_transfers`, `add_collective`:
each link a shared resource, its latency unoverlapped), so how much communication hides behind
compute comes from the engine, not from a formula. What each step computes and sends, and the
two schemes, are in hw/interconnect/seqpar.py.

Ring-Attention (as ring-flash-attention runs it): at the start of step s device i issues the send
of the K/V block it holds to i + 1 and computes with it; step s + 1 starts when both the compute
(and its merge into the running output) and the block from i - 1 are done.
TokenRing: at the start of step s device i sends the query block it holds, Q_{i-s}, to i + 1 and
computes attn(Q_{i-s}, KV_i); once computed, the block output goes straight to the owner i - s,
where a merge task folds it in; step s + 1 starts when the compute is done and Q_{i-s-1} has come.
The pass ends when every device has merged every block.

`exposed_ns` = makespan - compute-only time (the busiest GPU's work): the communication that did
not hide behind compute (zero with infinite, latency-free links: tests/test_seqpar.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from hwsim.hw.interconnect import add_collective, lower_transfers
from hwsim.hw.interconnect.seqpar import (LSE_BYTES, block_attention_flops, block_attention_ns, merge_ns,
                                          ring_kv_bytes, tokenring_out_bytes, tokenring_q_bytes)
from hwsim.sim.schedule import Resource, Schedule
from hwsim.seqpar.spec import SequenceParallelSpec
from hwsim.workloads.ops import DTYPE_BYTES

SCHEMES = ("ring_attention", "tokenring")


@dataclass(frozen=True)
class SeqParResult:
    makespan_ns: float
    compute_ns: float                 # the busiest GPU's compute and merges, back to back
    exposed_ns: float                 # makespan - compute_ns
    link_bytes: float                 # bytes sent over the links, all devices
    schedule: Schedule
    trace: object


def seqpar_schedule(scheme: str, degree: int, seq_len: int, heads: int, kv_heads: int,
                    head_dim: int, dtype: str, causal: bool, gpu, network) -> Schedule:
    """The schedule of one sequence-parallel attention layer (module docstring) on devices
    0 .. degree-1 of `network` (a built hw.interconnect topology)."""
    if seq_len % degree:
        raise ValueError(f"degree {degree} must divide seq_len {seq_len}")
    if network.num_devices < degree:
        raise ValueError(f"degree {degree} needs {degree} devices; the topology has {network.num_devices}")
    n, b = degree, seq_len // degree
    db = DTYPE_BYTES[dtype]
    step_ns = block_attention_ns(gpu, dtype, b, heads, head_dim, causal)
    step_flops = block_attention_flops(b, heads, head_dim, causal)
    merge = merge_ns(gpu, b, heads, head_dim, db)
    routing = network.spec.routing
    s = Schedule(resources={}, static_power_w={f"d{i}.gpu": gpu.static_w for i in range(n)},
                 power_limit_w={f"d{i}.gpu": gpu.tdp_w for i in range(n)})
    for i in range(n):
        s.add_resource(Resource(f"d{i}.gpu", "compute", 1.0, 1.0, exclusive=True, unit=f"d{i}.gpu",
                                peak_flops_per_ns=gpu.peak(dtype) / 1e9))
        s.add_resource(Resource(f"d{i}.hbm", "memory", gpu.sustained_bw / 1e9, gpu.hbm_bw_gbps,
                                exclusive=False, unit=f"d{i}.hbm"))

    block = b * heads * head_dim * db               # one Q or output block
    kv_block = 2 * b * kv_heads * head_dim * db
    hbm = {"attn": 2 * block + kv_block, "merge": 3 * (block + b * heads * LSE_BYTES)}

    def compute(i, step, deps, what="attn", ns=step_ns, flops=step_flops):
        """One kernel on device i's GPU: its roofline, HBM bytes and energy from the GPU spec."""
        name = f"d{i}.{what}{step}"
        peak = gpu.peak(dtype) if what == "attn" else gpu.vector_tflops * 1e12
        energy = flops * gpu.pj_per_flop(dtype) * 1e-12 + hbm[what] * 8 * gpu.dram_pj_per_bit * 1e-12
        return s.add(name, name, f"d{i}.gpu", {f"d{i}.gpu": ns, f"d{i}.hbm": hbm[what]},
                     deps=deps, flops=flops,
                     roofline_ns=max(flops / peak * 1e9, hbm[what] / gpu.hbm_bw_gbps),
                     bytes_by_level={"hbm": hbm[what]}, energy_j=energy,
                     energy_by_component_j={"compute": flops * gpu.pj_per_flop(dtype) * 1e-12,
                                            "dram": hbm[what] * 8 * gpu.dram_pj_per_bit * 1e-12},
                     device=i, component="gpu", datapath="tensor" if what == "attn" else "vector",
                     layer=0)

    def send(src, dst, nbytes, label, deps, step):
        lowered = lower_transfers(network, [(src, dst, nbytes)], routing)
        sent.append((label, src, dst, nbytes))
        return add_collective(s, lowered, label, deps, label, layer=0, device=src).done

    sent: list[tuple[str, int, int, float]] = []
    s.sent = sent                                   # every P2P send: (label, src, dst, bytes)

    if scheme == "ring_attention":
        kv = ring_kv_bytes(b, kv_heads, head_dim, db)
        ready = [[] for _ in range(n)]           # what step s of device i waits for
        arrived = [None] * n                     # block for the next step, per receiver
        for step in range(n):
            ends = []
            for i in range(n):
                c = compute(i, step, ready[i])
                if step:
                    c = compute(i, step, [c], "merge", merge, 0.0)
                ends.append(c)
            sends = [send(i, (i + 1) % n, kv, f"kv.s{step}:d{i}", ready[i], step)
                     for i in range(n)] if step < n - 1 else []
            for i in range(n):
                arrived[(i + 1) % n] = sends[i] if sends else None
            ready = [[ends[i]] + ([arrived[i]] if arrived[i] is not None else []) for i in range(n)]
        return s
    if scheme != "tokenring":
        raise ValueError(f"unknown scheme {scheme!r}; one of {', '.join(SCHEMES)}")
    q = tokenring_q_bytes(b, heads, head_dim, db)
    out = tokenring_out_bytes(b, heads, head_dim, db)
    ready = [[] for _ in range(n)]
    last_merge: list[int | None] = [None] * n
    for step in range(n):
        ends = [compute(i, step, ready[i]) for i in range(n)]
        sends = [send(i, (i + 1) % n, q, f"q.s{step}:d{i}", ready[i], step)
                 for i in range(n)] if step < n - 1 else []
        if step:
            for i in range(n):                   # block output of Q_{i-step} back to its owner
                owner = (i - step) % n
                got = send(i, owner, out, f"out.s{step}:d{i}", [ends[i]], step)
                deps = [got, ends[owner]] + ([last_merge[owner]] if last_merge[owner] is not None else [])
                last_merge[owner] = compute(owner, step, deps, "merge", merge, 0.0)
        ready = [[ends[i]] + ([sends[(i - 1) % n]] if sends else []) for i in range(n)]
    return s


def run_seqpar(spec: SequenceParallelSpec, model, dtype: str, gpu, network) -> SeqParResult:
    """Build and simulate the schedule; `model` a workloads.models.ModelSpec (heads, KV heads,
    head dim)."""
    from hwsim.sim.engine import simulate
    sched = seqpar_schedule(spec.scheme, spec.degree, spec.seq_len, model.n_heads, model.kv_heads,
                            model.hd, dtype, spec.causal, gpu, network)
    trace = simulate(sched)
    busy = {}
    for t in sched.tasks:
        for r, w in t.demands.items():
            if r.endswith(".gpu"):
                busy[r] = busy.get(r, 0.0) + w
    compute = max(busy.values())
    # a flow's bytes once: on its route's first link, the sender's own
    link = sum(w for t in sched.tasks for r, w in t.demands.items()
               if r.startswith(f"link:dev{t.device}->"))
    return SeqParResult(trace.makespan_ns, compute, trace.makespan_ns - compute, link, sched, trace)

