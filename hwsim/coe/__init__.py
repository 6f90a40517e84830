"""The `coe` scenario: Composition of Experts with model switching (issue 15, SN40L).

Prabhakar et al., "SambaNova SN40L: Scaling the AI Memory Wall with Dataflow and Composition of
Experts" (arXiv 2405.07518): a CoE is many small expert models and a router; "executing a CoE
involves a sequence of model switching and model execution" (section I, Fig. 1). Here:

- every expert is the workload's model (its architecture, tp, dtype) with its own weights; all
  `experts` are held in the memory level `store` (SN40L: each socket's DDR; a DGX: the host's
  DRAM, `hardware.host`), checked against its capacity per device (exit 2 naming the level);
- HBM keeps `resident_experts` of them (default: as many as fit in `hbm_utilization` of HBM
  beside the router and one request's KV), least recently used evicted; the stream starts warm
  (HBM full of the first experts);
- each request: the router (the same model, always resident) reads the prompt (one prefill
  pass), picks an expert (seeded draw: `uniform` or `zipf`), the expert is copied into HBM if it
  is not there (hwsim.coe.switch: engine tasks on the store's path, the time is the engine's),
  then the expert reads the prompt (prefill, which emits the first token) and decodes the other
  `output_tokens - 1` (a decode pass at the middle context, times the tokens); requests run one
  after another on the whole replica (batch 1, as Fig. 1's latency breakdown).

Passes are costed by the pass machinery (hwsim.scenarios.PassScenario): prefill and decode of
the expert once each, on the device without the store level (the expert runs resident in HBM). The result's graph, schedule, trace and top-level metrics are the decode
pass's (so every physics check of a pass holds); the scenario's figures are `metrics.coe`.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError


def _check_system(system, key_prefix: str) -> None:
    w = system.workload
    if w.kind != "transformer":
        raise ConfigError("the coe scenario composes Transformer experts", key=f"{key_prefix}workload.kind")
    if w.pp > 1 or w.ep > 1:
        raise ConfigError("the coe scenario runs each expert with tensor parallelism only (pp = ep = 1)",
                          key=f"{key_prefix}workload.{'pp' if w.pp > 1 else 'ep'}")
    if system.hardware.topology is not None:
        raise ConfigError("the coe scenario costs passes on one device (with hardware.link for tp > 1); "
                          "drop hardware.topology", key=f"{key_prefix}hardware.topology")


def levels_of(system, key_prefix: str = ""):
    """(store level, HBM level) of the system: the store is looked up among every level the
    hardware brings (a host beside a GPU included), HBM is the mapper's device's fastest
    off-chip level."""
    from hwsim.pipeline import device_of
    spec = system.scenario
    every = {lv.name: lv for lv in system.hardware.memory_levels() if not lv.on_chip}
    device = device_of(system)
    if not device.off_chip_levels:
        raise ConfigError("the coe scenario needs a device with off-chip memory (HBM) to hold the active "
                          "expert", key=f"{key_prefix}hardware")
    hbm = device.off_chip_levels[0]
    if spec.store not in every or spec.store == hbm.name:
        have = ", ".join(n for n in every if n != hbm.name) or "none"
        raise ConfigError(f"'{spec.store}' is not a memory level below HBM of this system (levels that "
                          f"can store experts: {have})", key=f"{key_prefix}scenario.store")
    return every[spec.store], hbm


@dataclass(frozen=True)
class Plan:
    """What the tiers hold, per device (one tensor rank)."""
    expert_bytes: float            # one expert's slice
    store_capacity: float
    hbm_capacity: float
    router_bytes: float
    kv_bytes: float                # one request's KV (prompt + output)
    slots: int                     # experts resident in HBM


def plan_tiers(system, store, hbm, key_prefix: str = "") -> Plan:
    """Capacities per tier, checked (exit 2 naming the level that overflows)."""
    from hwsim.workloads.transformer import transformer_info
    from hwsim.workloads.ops import DTYPE_BYTES
    spec, w = system.scenario, system.workload
    m = w.model
    info = transformer_info(w.model_copy(update={"phase": "decode", "batch": 1}))
    expert = float(info.weight_bytes_per_device)
    kv = float(m.kv_cache_elements(w.tp) * DTYPE_BYTES[w.dtype] * m.n_layers
               * (spec.prompt_tokens + spec.output_tokens))
    if spec.prompt_tokens + spec.output_tokens > m.max_seq_len:
        raise ConfigError(f"a request of {spec.prompt_tokens} + {spec.output_tokens} tokens exceeds "
                          f"{m.name}'s max_seq_len={m.max_seq_len}", key=f"{key_prefix}scenario.prompt_tokens")
    need = spec.experts * expert
    if need > store.capacity_bytes:
        raise ConfigError(f"{spec.experts} experts x {expert / 1e9:.2f} GB per device = {need / 1e9:.1f} GB do "
                          f"not fit memory level '{store.name}' ({store.capacity_bytes / 1e9:.1f} GB per "
                          "device): fewer experts, more devices (tp) or more memory",
                          key=f"{key_prefix}scenario.experts")
    router = expert if spec.router else 0.0
    room = hbm.capacity_bytes * spec.hbm_utilization - router - kv
    fit = int(room // expert) if room > 0 else 0
    if fit < 1:
        raise ConfigError(f"no expert fits memory level '{hbm.name}': {hbm.capacity_bytes / 1e9:.1f} GB x "
                          f"{spec.hbm_utilization:g} per device holds the router {router / 1e9:.2f} GB + "
                          f"KV {kv / 1e9:.3f} GB but not one more expert of {expert / 1e9:.2f} GB",
                          key=f"{key_prefix}scenario.experts")
    if spec.resident_experts is not None and spec.resident_experts > fit:
        raise ConfigError(f"{spec.resident_experts} resident experts do not fit memory level "
                          f"'{hbm.name}' (at most {fit} of {expert / 1e9:.2f} GB per device)",
                          key=f"{key_prefix}scenario.resident_experts")
    slots = min(fit, spec.experts) if spec.resident_experts is None else min(spec.resident_experts, spec.experts)
    return Plan(expert, store.capacity_bytes, hbm.capacity_bytes, router, kv, slots)


def routes(spec) -> np.ndarray:
    """The expert each request goes to (seeded)."""
    rng = np.random.default_rng(spec.seed)
    if spec.routing == "uniform":
        return rng.integers(0, spec.experts, size=spec.requests)
    p = 1.0 / np.arange(1, spec.experts + 1) ** spec.zipf_a
    return rng.choice(spec.experts, size=spec.requests, p=p / p.sum())


def layer_chunks(graph, expert_bytes: float | None = None) -> list[float]:
    """One device's weight bytes per layer, in execution order (outside layers: their own chunk).
    A pass reads only the embedding rows of its tokens; the copy moves the whole table:
    `expert_bytes` (the device's whole slice) puts what the ops do not read in a first chunk."""
    out: dict[int, float] = {}
    for op in graph.ops:
        out[op.layer] = out.get(op.layer, 0.0) + float(op.weight_bytes)
    chunks = [b for _, b in sorted(out.items())]
    rest = (expert_bytes or 0.0) - sum(chunks)
    return ([rest] if rest > 0 else []) + chunks


def serve_stream(spec, slots: int, router_s: float, switch_s: float, prefill_s: float,
                 decode_s: float) -> dict:
    """The request loop (module docstring): LRU over `slots`, warm start."""
    experts = routes(spec)
    cache: OrderedDict[int, None] = OrderedDict((e, None) for e in range(slots))
    switches = 0
    for e in experts.tolist():
        if e in cache:
            cache.move_to_end(e)
        else:
            switches += 1
            cache[e] = None
            if len(cache) > slots:
                cache.popitem(last=False)
    n = spec.requests
    execute_s = prefill_s + (spec.output_tokens - 1) * decode_s
    total = n * (router_s + execute_s) + switches * switch_s
    return {"requests": n, "switches": switches, "hit_rate": 1 - switches / n,
            "router_s": router_s, "switch_s": switch_s, "prefill_s": prefill_s,
            "decode_token_s": decode_s, "execute_s": execute_s,
            "total_s": total, "mean_latency_s": total / n,
            "switching_share": switches * switch_s / total,
            "requests_per_s": n / total, "output_tokens_per_s": n * spec.output_tokens / total}


def without_level(hw, name: str):
    """The hardware without the memory section named `name`: an expert runs resident in HBM, so
    its passes neither read nor place anything in the store (a `hardware.memory` level; a
    `hardware.host` is not part of a GPU's device anyway)."""
    from hwsim.hw.system import HardwareSpec
    kept = [m for m in hw.specs("memory") if m.name != name]
    if len(kept) == len(hw.specs("memory")):
        return hw
    parts = {k: v for k, v in hw.present().items() if k != "memory"}
    if kept:
        parts["memory"] = kept if len(kept) > 1 else kept[0]
    return HardwareSpec(**parts)


@dataclass(frozen=True)
class CoEScenario:
    name: str = "coe"

    def run(self, system, key_prefix: str = ""):
        from hwsim.coe.switch import switch_cost
        from hwsim.scenarios import PassScenario
        _check_system(system, key_prefix)
        spec, w = system.scenario, system.workload
        store, hbm = levels_of(system, key_prefix)
        plan = plan_tiers(system, store, hbm, key_prefix)
        passes = PassScenario()
        resident = system.model_copy(update={"hardware": without_level(system.hardware, store.name)})

        def one(phase: str, context: int):
            wl = w.model_copy(update={"phase": phase, "batch": 1,
                                      "requests": type(w.requests)(distribution="fixed", context_len=context)})
            return passes.run(resident.model_copy(update={"workload": wl}), key_prefix)
        prefill = one("prefill", spec.prompt_tokens)
        decode = one("decode", spec.prompt_tokens + spec.output_tokens // 2)
        host = system.hardware.specs("host")
        shared = host[0].dram_bw_gbps if host and store.name == "host" else None
        per_link = host[0].devices_per_link if host and store.name == "host" else 1
        sw = switch_cost(layer_chunks(decode.graph, plan.expert_bytes), w.tp, store, hbm, per_link, shared)
        router_s = prefill.metrics.iteration_latency_s if spec.router else 0.0
        doc = serve_stream(spec, plan.slots, router_s, sw.time_s, prefill.metrics.iteration_latency_s,
                           decode.metrics.iteration_latency_s)
        doc.update({"experts": spec.experts, "resident_experts": plan.slots, "store": store.name,
                    "expert_bytes_per_device": plan.expert_bytes, "devices": w.tp,
                    "switch_bytes": plan.expert_bytes * w.tp,
                    "switch_bw_gbps": plan.expert_bytes * w.tp / sw.time_s / 1e9,
                    "switch_energy_j": sw.energy_j,
                    "store_capacity_bytes_per_device": plan.store_capacity,
                    "store_used_bytes_per_device": spec.experts * plan.expert_bytes,
                    "hbm_capacity_bytes_per_device": plan.hbm_capacity})
        return dataclasses.replace(decode, system=system, metrics=dataclasses.replace(decode.metrics, coe=doc))


def coe_header(result) -> str:
    """The scenario's lines above the tables of `hwsim run`."""
    rows = [("main", result.main)] + list(result.baselines.items())
    lines = ["Composition of Experts (hwsim.coe): per request the router's prefill, a switch when the "
             "expert is not in HBM, the expert's prefill and decode"]
    mine = result.main.metrics.coe
    for name, r in rows:
        d = r.metrics.coe
        if d is None:
            continue
        speed = "" if name == "main" or mine is None else \
            (f"; main is {d['mean_latency_s'] / mine['mean_latency_s']:.2f}x faster per request, "
             f"{d['switch_s'] / mine['switch_s']:.1f}x faster switching")
        lines.append(f"  {name}: {d['experts']} experts in '{d['store']}', {d['resident_experts']} in HBM; "
                     f"switch {d['switch_s'] * 1e3:.1f} ms ({d['switch_bytes'] / 1e9:.2f} GB at "
                     f"{d['switch_bw_gbps']:.0f} GB/s), hit rate {d['hit_rate']:.2f}; request "
                     f"{d['mean_latency_s'] * 1e3:.1f} ms (switching {d['switching_share']:.0%}), "
                     f"{d['output_tokens_per_s']:.0f} output tokens/s{speed}")
    lines.append("The tables are one decode pass of the expert (batch 1), the header above it.")
    return "\n".join(lines)


def footprint_nodes(expert_bytes: float, store_bytes_per_node: float, hbm_bytes_per_node: float
                    ) -> tuple[int, int]:
    """Machine footprint of a CoE (the paper's "up to 19x smaller", our reading): the most experts
    one node holds in its store tier, floor(store / expert), and how many nodes of a system that
    must keep every expert in HBM need for as many, ceil(experts x expert / HBM per node).
    Weights only: KV, activations and the router are left out on both sides."""
    import math
    most = int(store_bytes_per_node // expert_bytes)
    return most, math.ceil(most * expert_bytes / hbm_bytes_per_node)
