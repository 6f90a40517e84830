"""`tpi`: TPI-LLM's sliding-window memory scheduler on a CPU edge device (hardware.edge).

TPI-LLM (Li, Feng, Guizani, Yu, arXiv 2410.00531; code: github.com/Lizonghang/TPI-LLM,
src/tpi_llm/memory/mem_manager.py) keeps a device's slice of the weights on disk, one file per
*block* — the input embedding, each layer's attention block (norm, Q/K/V/O), each layer's MLP
block (norm, gate/up/down), the output norm + head — and holds at most `window` blocks in RAM
(`--memory_window`, default 2, "at least 2"). A background thread loads the blocks ahead of the
one being computed and releases those behind it, so disk reads overlap compute and the
all-reduces.

As engine tasks (the overlap comes from the engine, not from a formula):
- block k's read is one task on the device's `disk` resource, its bytes the block's weight
  bytes; reads run one after another (one loader thread: each depends on the previous read)
  and block k's read may start only once block k - window has been computed (its RAM slot is
  free): `deps = (read k-1, last op of block k-window)`;
- every op of block k depends on its graph predecessors and on read k; it runs on the `edge` CPU with its
  RAM bytes on `ram` (hw/edge.py);
- collectives (the TP all-reduces) are link tasks (on a `hardware.topology` the partition step
  lowers them onto its links with its `all_reduce` algorithm: ring, star, ...).

`overlap: false` is a blocking offload (Accelerate-like: a block is read only after the previous
block's compute has finished, window 1 in effect); `memory_schedule: false` keeps every weight
resident in RAM (no disk reads in the pass; the weights must fit RAM).

Peak RAM (`memory_plan`): the largest sum of `window` consecutive blocks' weights (all weights
without the scheduler), plus the device's KV cache, plus the largest op's input + output. It is
checked against the `ram` level; the device's weights against `disk`: a plan that does not fit
exits 2 naming the level.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from hwsim.hw.registry import op_cost
from hwsim.hw.system import HardwareSpec
from hwsim.input_error import ConfigError
from hwsim.mappers.common import add_collective_task, add_task, link_resource, memory_resources
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import OpGraph, OpKind

NEEDS = ("edge",)


class TPIOptions(Spec):
    window: int = Field(default=2, ge=1, le=1000, description="blocks resident in RAM (TPI-LLM's "
                        "--memory_window; a block is one layer's attention or MLP, or the input / "
                        "output block)")
    overlap: bool = Field(default=True, description="read ahead in the background (TPI-LLM); false: "
                          "blocking reads, each after the previous block's compute (Accelerate-like)")
    memory_schedule: bool = Field(default=True, description="false: every weight resident in RAM, "
                                  "no disk reads")


@dataclass(frozen=True)
class Block:
    name: str                  # "input", "L3.attn", "L3.mlp", "output"
    ops: tuple[str, ...]
    weight_bytes: float


@dataclass(frozen=True)
class MemoryPlan:
    blocks: tuple[Block, ...]
    window: int
    window_bytes: float        # the largest `window` consecutive blocks (all of them without the scheduler)
    kv_bytes: float
    activation_bytes: float    # the largest op's input + output
    weight_bytes: float        # the device's whole slice (what lives on disk)

    @property
    def peak_bytes(self) -> float:
        return self.window_bytes + self.kv_bytes + self.activation_bytes


def blocks_of(graph: OpGraph) -> tuple[Block, ...]:
    """The graph cut into TPI-LLM's blocks, in execution order: ops outside the layers before the
    first layer form "input", after it "output"; a layer's ops up to and including its first
    all-reduce form its attention block, the rest its MLP block."""
    out: list[tuple[str, list]] = []
    seen_layer, reduced = False, set()
    for op in graph.ops:
        if op.layer < 0:
            name = "output" if seen_layer else "input"
        else:
            seen_layer = True
            name = f"L{op.layer}.{'mlp' if op.layer in reduced else 'attn'}"
            if op.kind == OpKind.ALL_REDUCE:
                reduced.add(op.layer)
        if not out or out[-1][0] != name:
            out.append((name, []))
        out[-1][1].append(op)
    return tuple(Block(n, tuple(o.name for o in ops), float(sum(o.weight_bytes for o in ops)))
                 for n, ops in out)


def memory_plan(graph: OpGraph, window: int, memory_schedule: bool = True) -> MemoryPlan:
    blocks = blocks_of(graph)
    sizes = [b.weight_bytes for b in blocks]
    total = float(sum(sizes))
    if memory_schedule and window < len(sizes):
        win = max(sum(sizes[k:k + window]) for k in range(len(sizes) - window + 1))
    else:
        win = total
    acts = max((float(op.act_in_bytes + op.act_out_bytes) for op in graph.ops), default=0.0)
    return MemoryPlan(blocks, window, float(win), float(graph.info.kv_bytes_per_device), acts, total)


def check_capacities(plan: MemoryPlan, ram_bytes: float, disk_bytes: float, model: str) -> None:
    """Exit 2 (ConfigError) naming the level, the need and the capacity when the plan does not fit."""
    if plan.weight_bytes > disk_bytes:
        raise ConfigError(f"{model}'s weight slice ({plan.weight_bytes / 1e9:.2f} GB) does not fit "
                          f"memory level 'disk' ({disk_bytes / 1e9:.2f} GB)", key="hardware.edge.disk_gib")
    if plan.peak_bytes > ram_bytes:
        what = f"a window of {plan.window} blocks" if plan.window_bytes < plan.weight_bytes else "all weights"
        raise ConfigError(f"{model} does not fit memory level 'ram': peak {plan.peak_bytes / 1e9:.2f} GB "
                          f"({what} {plan.window_bytes / 1e9:.2f} GB + KV {plan.kv_bytes / 1e9:.3f} GB + "
                          f"activations {plan.activation_bytes / 1e6:.1f} MB) > capacity "
                          f"{ram_bytes / 1e9:.2f} GB (use the memory scheduler, a smaller window, more "
                          "devices or more RAM)", key="hardware.edge.ram_gib")


@register("tpi", "TPI-LLM on CPU edge devices: weights streamed from disk through a sliding window "
          "of blocks in RAM, reads overlapped with compute and all-reduces", needs=NEEDS,
          options=TPIOptions, checks_fit=True)
def map_tpi(graph: OpGraph, hw: HardwareSpec, options: TPIOptions) -> Schedule:
    device = hw.device(NEEDS)
    spec = device.spec("edge")
    plan = memory_plan(graph, options.window, options.memory_schedule)
    check_capacities(plan, spec.ram_bytes, spec.disk_bytes, graph.info.model)
    schedule = Schedule(resources={})
    schedule.add_resource(Resource("edge", "compute", 1.0, 1.0, exclusive=True, unit="edge",
                                   peak_flops_per_ns=spec.peak_flops_per_ns))
    memory_resources(schedule, device)
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)
    schedule.resident_bytes = {"ram": plan.peak_bytes, "disk": plan.weight_bytes}
    schedule.window_plan = plan

    ops = {op.name: op for op in graph.ops}
    task_of: dict[str, int] = {}
    last_of_block: list[int] = []
    prev_read: int | None = None
    for k, block in enumerate(plan.blocks):
        read = None
        if options.memory_schedule and block.weight_bytes > 0:
            deps = [prev_read] if prev_read is not None else []
            free = k - (options.window if options.overlap else 1)
            if 0 <= free < len(last_of_block):
                deps.append(last_of_block[free])
            nbytes = block.weight_bytes
            disk = device.level("disk")
            read = schedule.add(f"read {block.name}", "", "disk", {"disk": nbytes}, deps=deps,
                                bytes_by_level={"disk": nbytes}, energy_j=disk.energy_j(nbytes),
                                energy_by_component_j={"disk": disk.energy_j(nbytes)},
                                roofline_ns=nbytes / disk.peak_bw_gbps, component="edge",
                                datapath="disk", level="disk",
                                layer=ops[block.ops[0]].layer)
            prev_read = read
        for name in block.ops:
            op = ops[name]
            deps = sorted(task_of[p] for p in graph.predecessors(name))
            if read is not None:
                deps.append(read)
            if op.kind.is_collective:
                task_of[name] = add_collective_task(schedule, name, op, hw.link, deps)
            else:
                c = op_cost("edge", op.kind)(device, op)
                demands = {"edge": c.compute_ns, "ram": c.bytes_by_level.get("ram", 0.0)}
                task_of[name] = add_task(schedule, name, op, c, "edge", demands, deps, component="edge",
                                         level="ram" if op.weight_bytes else "")
        last_of_block.append(task_of[block.ops[-1]])
    return schedule
