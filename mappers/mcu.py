"""`mcu`: a CNN on a microcontroller, layer by layer or with MCUNetV2's patch-based first stage,
with a peak-SRAM plan checked against the hard capacities of SRAM and flash.

Memory plan (pure functions, `memory_plan`):
- weights live in flash (read in place, never copied to SRAM);
- layer by layer, op i runs with the buffers live at step i: every tensor produced before i
  (the input image included) whose last consumer is i or later — its inputs and the residual
  inputs held across a block — plus its own output. Sizes in bytes of the op's dtype.
- in-place depthwise convolution (TinyEngine, mit-han-lab/tinyengine README: "overwrites input
  data by intermediate/output data to reduce peak SRAM"; MCUNet, NeurIPS'20, section 3.2): when
  its input dies at the op, it needs max(input, output) plus a one-channel temporary buffer
  (out_h x out_w) instead of input + output (`inplace_depthwise`, default on);
- an elementwise op (the residual add) writes over an input of the same size that dies there
  (each output element depends on that element only), so it adds no buffer;
- a 1x1 projection followed by a residual add is fused (`fuse_residual_add`, default on): the
  sum is accumulated pixel by pixel into the residual buffer (a 1x1 conv's output pixel depends
  on that input pixel only), so the projection needs no output buffer of its own. TinyEngine
  lists operator fusion among its optimizations (tinyengine README); accumulating into the
  residual buffer is hwsim's reading of it, and the setting under which MobileNetV2's later
  stage peaks at 28x28x(32 + 192) B = 171.5 kB, the 172 kB MCUNetV2 reports (with it off: the
  projection's own buffer, 196 kB).

Patch-based inference (MCUNetV2: Lin, Chen, Cai, Gan, Han, "Memory-efficient Patch-based
Inference for Tiny Deep Learning", NeurIPS 2021, section 3.1 and Figure 3): the ops up to and
including `patch.split_after` (a prefix of the graph) run once per spatial patch of an n x n
grid over the split op's output; each patch back-propagates its region through the stage (conv
with kernel k, stride s, padding p needs input rows [r0 s - p, (r1 - 1) s - p + k), clipped to
the tensor), so neighbouring patches overlap by the receptive-field halo and that overlap is
recomputed. During the patch stage SRAM holds the whole output of the stage (each patch's last
op writes its part into it) plus one patch's live buffers; the input image is decoded per patch
("the first input is the image, which can be partially decoded from a compressed format like
JPEG", MCUNetV2 Figure 3 caption), so only its patch region counts. The rest of the network then
runs layer by layer. Recompute = sum over patches of the patch MACs - the stage's MACs.

Costs come from the MCU component (hw/mcu.py); this module only decides what runs when and
what is live.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pydantic import Field

from hwsim.hw.registry import op_cost
from hwsim.hw.system import HardwareSpec
from hwsim.input_error import ConfigError
from hwsim.mappers.common import add_task, memory_resources
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import DTYPE_BYTES, Op, OpGraph, OpKind

NEEDS = ("mcu",)
INPUT = "<input>"
PATCH_OPS = (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.ELEMENTWISE)


class PatchOptions(Spec):
    """`mapper.patch:` MCUNetV2's patch-based stage."""
    grid: int = Field(ge=1, le=64, description="n: the stage's output is cut into n x n patches")
    split_after: str = Field(description="the op whose output ends the patch stage (the ops up to "
                             "and including it run per patch)")


class MCUOptions(Spec):
    inplace_depthwise: bool = Field(default=True, description="TinyEngine's in-place depthwise "
                                    "convolution (module docstring)")
    fuse_residual_add: bool = Field(default=True, description="a 1x1 projection accumulates into "
                                    "the residual buffer of the add that follows it (module docstring)")
    patch: PatchOptions | None = Field(default=None, description="patch-based first stage "
                                       "(MCUNetV2); none: layer by layer throughout")


# --------------------------------------------------------------------------- shapes and regions

@dataclass(frozen=True)
class Region:
    """Rows [r0, r1) x columns [c0, c1) of a tensor."""
    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def h(self) -> int:
        return self.r1 - self.r0

    @property
    def w(self) -> int:
        return self.c1 - self.c0

    def union(self, other: "Region | None") -> "Region":
        if other is None:
            return self
        return Region(min(self.r0, other.r0), max(self.r1, other.r1),
                      min(self.c0, other.c0), max(self.c1, other.c1))


def tensor_shapes(graph: OpGraph) -> dict[str, tuple[int, int, int]]:
    """(h, w, c) of every op's output and of the graph input (INPUT), for the spatial ops."""
    shapes: dict[str, tuple[int, int, int]] = {}
    for op in graph.ops:
        if op.conv is not None:
            cv = op.conv
            shapes.setdefault(INPUT, (cv.in_h, cv.in_w, cv.in_c))
            shapes[op.name] = (cv.out_h, cv.out_w, cv.out_c)
        elif op.kind == OpKind.ELEMENTWISE:
            preds = graph.predecessors(op.name)
            if preds and preds[0] in shapes:
                shapes[op.name] = shapes[preds[0]]
    return shapes


def input_region(op: Op, out: Region, in_hw: tuple[int, int]) -> Region:
    """The input rows/columns an op needs for output region `out` (halo included, clipped)."""
    if op.conv is None:
        return out
    cv = op.conv
    s, p = cv.stride, cv.padding
    return Region(max(0, out.r0 * s - p), min(in_hw[0], (out.r1 - 1) * s - p + cv.kernel_h),
                  max(0, out.c0 * s - p), min(in_hw[1], (out.c1 - 1) * s - p + cv.kernel_w))


def region_macs(op: Op, out: Region) -> float:
    """MACs of a conv / depthwise conv computing output region `out`."""
    cv = op.conv
    return float(out.h * out.w * cv.batch * cv.out_c * cv.kernel_h * cv.kernel_w * (cv.in_c // cv.groups))


# --------------------------------------------------------------------------- live buffers

@dataclass(frozen=True)
class Step:
    """One op's SRAM use: `live_bytes` in total, and the buffers it counts {tensor: bytes}."""
    op: str
    live_bytes: float
    buffers: dict[str, float]


def _inputs(graph: OpGraph, op: Op) -> list[str]:
    return graph.predecessors(op.name) or [INPUT]


def _fused_projections(graph: OpGraph, ops: list[Op], last: dict[str, int], index, size) -> set[str]:
    """1x1 stride-1 convs whose only consumer is a residual add in `ops` whose other input (at
    least as large) dies there: they accumulate into that input's buffer."""
    out = set()
    for op in ops:
        cv = op.conv
        if cv is None or (cv.kernel_h, cv.kernel_w, cv.stride, cv.groups) != (1, 1, 1, 1):
            continue
        succ = graph.successors(op.name)
        if len(succ) != 1 or succ[0] not in index or graph.op(succ[0]).kind != OpKind.ELEMENTWISE:
            continue
        others = [t for t in graph.predecessors(succ[0]) if t != op.name]
        if others and last.get(others[0]) == index[succ[0]] and size[others[0]] >= size[op.name]:
            out.add(op.name)
    return out


def live_steps(graph: OpGraph, ops: list[Op], size: dict[str, float], inplace_depthwise: bool,
               held: float = 0.0, held_name: str = "", no_output: str = "",
               fuse_residual_add: bool = True) -> list[Step]:
    """Per op of `ops` (in order), the bytes live while it runs (module docstring). `size`:
    bytes of each tensor (op output names and INPUT); `held`: a buffer live throughout (the
    patch stage's output); `no_output`: an op whose output goes into that held buffer."""
    index = {op.name: i for i, op in enumerate(ops)}
    last: dict[str, int] = {}
    for i, op in enumerate(ops):
        for t in _inputs(graph, op):
            last[t] = i
    if fuse_residual_add:
        size = dict(size)
        for name in _fused_projections(graph, ops, last, index, size):
            size[name] = 0.0
    for op in ops:                                # outputs consumed after `ops` stay to the end
        if any(s not in index for s in graph.successors(op.name)):
            last[op.name] = len(ops) - 1
    steps = []
    for i, op in enumerate(ops):
        ins = _inputs(graph, op)
        live = {t: size[t] for t, end in last.items()
                if end >= i and (t == INPUT or index.get(t, len(ops)) < i)}
        out = 0.0 if op.name == no_output else size[op.name]
        dying = [t for t in ins if last.get(t) == i]
        if inplace_depthwise and op.kind == OpKind.DEPTHWISE_CONV and dying and op.conv is not None:
            t = dying[0]
            temp = out / op.conv.out_c            # one output channel (of the patch, per patch)
            live[t] = max(live[t], out) + temp
        elif op.kind == OpKind.ELEMENTWISE and any(size[t] >= out for t in dying):
            pass                                  # written over a dying input of its size
        else:
            live[op.name] = out
        if held:
            live[held_name] = held
        steps.append(Step(op.name, float(sum(live.values())), live))
    return steps


# --------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class PatchStage:
    grid: int
    split_after: str
    ops: tuple[str, ...]                      # the stage's ops, in order
    regions: tuple[dict[str, Region], ...]    # per patch: each stage op's output region
    input_regions: tuple[Region, ...]         # per patch: the image region it reads
    peak_bytes: float                         # SRAM peak of the stage (output buffer included)
    peak_op: str
    output_bytes: float                       # the stage's whole output, held in SRAM
    macs: float                               # the stage's MACs, whole tensors
    patch_macs: float                         # summed over patches (halos recomputed)

    @property
    def recompute_macs(self) -> float:
        return self.patch_macs - self.macs


@dataclass(frozen=True)
class MemoryPlan:
    steps: tuple[Step, ...]                   # layer-by-layer steps that run (after the patch stage)
    peak_bytes: float
    peak_op: str
    weight_bytes: float
    patch: PatchStage | None = None


def _check_stage(graph: OpGraph, patch: PatchOptions) -> int:
    names = [op.name for op in graph.ops]
    key = "mapper.patch.split_after"
    if patch.split_after not in names:
        raise ConfigError(f"no op '{patch.split_after}' in {graph.info.model} (ops: "
                          f"{', '.join(names[:6])}, ...)", key=key)
    k = names.index(patch.split_after)
    stage = graph.ops[:k + 1]
    for op in stage:
        if op.kind not in PATCH_OPS:
            raise ConfigError(f"op '{op.name}' ({op.kind}) cannot run per patch; patches cover "
                              f"convolutions and residual adds only", key=key)
        for s in graph.successors(op.name):
            if op.name != patch.split_after and names.index(s) > k:
                raise ConfigError(f"op '{op.name}' feeds '{s}' after the split: cut the stage "
                                  f"where only '{patch.split_after}' leaves it", key=key)
    return k


def patch_stage(graph: OpGraph, patch: PatchOptions, inplace_depthwise: bool,
                fuse_residual_add: bool = True) -> PatchStage:
    """The patch-based stage's regions, MACs and SRAM peak (module docstring)."""
    k = _check_stage(graph, patch)
    stage = graph.ops[:k + 1]
    shapes = tensor_shapes(graph)
    b = graph.ops[0].dtype_bytes
    H, W, C = shapes[patch.split_after]
    n = patch.grid
    if n > min(H, W):
        raise ConfigError(f"a {n} x {n} grid over the {H} x {W} output of '{patch.split_after}' "
                          f"leaves patches without a pixel", key="mapper.patch.grid")
    cut = lambda i, size: (i * size) // n  # noqa: E731
    regions, inputs, peak, peak_op, patch_macs = [], [], 0.0, "", 0.0
    for pi in range(n):
        for pj in range(n):
            need: dict[str, Region] = {patch.split_after: Region(cut(pi, H), cut(pi + 1, H),
                                                                cut(pj, W), cut(pj + 1, W))}
            for op in reversed(stage):
                out = need[op.name]
                for t in _inputs(graph, op):
                    h, w, _ = shapes[t]
                    need[t] = input_region(op, out, (h, w)).union(need.get(t))
            size = {t: float(r.h * r.w * shapes[t][2] * b) for t, r in need.items()}
            steps = live_steps(graph, stage, size, inplace_depthwise, held=float(H * W * C * b),
                               held_name="<stage output>", no_output=patch.split_after,
                               fuse_residual_add=fuse_residual_add)
            top = max(steps, key=lambda s: s.live_bytes)
            if top.live_bytes > peak:
                peak, peak_op = top.live_bytes, top.op
            patch_macs += sum(_region_work(op, need[op.name], shapes) for op in stage)
            regions.append({op.name: need[op.name] for op in stage})
            inputs.append(need[INPUT])
    whole = sum(_region_work(op, Region(0, shapes[op.name][0], 0, shapes[op.name][1]), shapes)
                for op in stage)
    return PatchStage(n, patch.split_after, tuple(op.name for op in stage), tuple(regions),
                      tuple(inputs), peak, peak_op, float(H * W * C * b), whole, patch_macs)


def _region_work(op: Op, out: Region, shapes) -> float:
    """MACs of a conv over `out`; 0 for the elementwise ops (not MACs)."""
    return region_macs(op, out) if op.conv is not None else 0.0


def memory_plan(graph: OpGraph, inplace_depthwise: bool = True,
                patch: PatchOptions | None = None, fuse_residual_add: bool = True) -> MemoryPlan:
    """Peak SRAM of `graph` run layer by layer, or with a patch-based first stage."""
    size = {op.name: float(op.act_out_bytes) for op in graph.ops}
    size[INPUT] = float(graph.ops[0].act_in_bytes)
    steps = live_steps(graph, list(graph.ops), size, inplace_depthwise,
                       fuse_residual_add=fuse_residual_add)
    weights = float(sum(op.weight_bytes for op in graph.ops))
    stage = None
    if patch is not None:
        stage = patch_stage(graph, patch, inplace_depthwise, fuse_residual_add)
        steps = steps[len(stage.ops):]
    top = max(steps, key=lambda s: s.live_bytes)
    peak, peak_op = top.live_bytes, top.op
    if stage is not None and stage.peak_bytes > peak:
        peak, peak_op = stage.peak_bytes, f"{stage.peak_op} (patch stage)"
    return MemoryPlan(tuple(steps), peak, peak_op, weights, stage)


def check_capacities(plan: MemoryPlan, sram_bytes: float, flash_bytes: float, model: str) -> None:
    """Exit 2 (ConfigError) naming the layer, the peak and the capacity when the plan does not fit."""
    if plan.weight_bytes > flash_bytes:
        raise ConfigError(f"{model}'s weights ({plan.weight_bytes / 1024:.1f} kB) do not fit memory "
                          f"level 'flash' ({flash_bytes / 1024:.0f} kB)", key="hardware.mcu.flash_kib")
    if plan.peak_bytes > sram_bytes:
        raise ConfigError(f"{model} does not fit memory level 'sram': peak {plan.peak_bytes / 1024:.1f} kB "
                          f"at layer '{plan.peak_op}' > capacity {sram_bytes / 1024:.0f} kB (add patches "
                          f"with mapper.patch, or a larger SRAM)", key="hardware.mcu.sram_kib")


# --------------------------------------------------------------------------- the mapper

def _patch_op(op: Op, out: Region, inp: list[Region], shapes, graph: OpGraph) -> Op:
    """`op` restricted to one patch (same name: the task's label names the patch): its MACs (or
    elements) and activation bytes over the regions; its weights are read again for every patch."""
    b = op.dtype_bytes
    c_out = shapes[op.name][2]
    act_in = sum(r.h * r.w * shapes[t][2] * b for t, r in zip(_inputs(graph, op), inp))
    act_out = out.h * out.w * c_out * b
    if op.conv is not None:
        flops = 2.0 * region_macs(op, out)
    else:
        flops = float(op.flops) * (out.h * out.w) / (shapes[op.name][0] * shapes[op.name][1])
    return dataclasses.replace(op, flops=flops, act_in_bytes=int(act_in), act_out_bytes=int(act_out))


@register("mcu", "a CNN on a microcontroller: layer by layer (or MCUNetV2 patches on the first "
          "stage) with a peak-SRAM plan; weights in flash", needs=NEEDS, options=MCUOptions,
          workloads=("cnn",), checks_fit=True)
def map_mcu(graph: OpGraph, hw: HardwareSpec, options: MCUOptions) -> Schedule:
    device = hw.device(NEEDS)
    spec = device.spec("mcu")
    if graph.ops and graph.ops[0].dtype != "int8":
        raise ConfigError(f"the MCU kernels run int8; got dtype {graph.ops[0].dtype}",
                          key="workload.dtype")
    if graph.info.batch != 1:
        raise ConfigError(f"an MCU runs one image at a time; got batch {graph.info.batch}",
                          key="workload.batch")
    plan = memory_plan(graph, options.inplace_depthwise, options.patch, options.fuse_residual_add)
    check_capacities(plan, spec.sram_bytes, spec.flash_bytes, graph.info.model)
    schedule = Schedule(resources={})
    schedule.add_resource(Resource("mcu", "compute", 1.0, 1.0, exclusive=True, unit="mcu",
                                   peak_flops_per_ns=2 * spec.peak_macs_per_ns))
    memory_resources(schedule, device)
    schedule.resident_bytes = {"sram": plan.peak_bytes, "flash": plan.weight_bytes}

    prev: list[int] = []

    def run(op: Op, label: str) -> None:
        c = op_cost("mcu", op.kind)(device, op)
        demands = {"mcu": c.compute_ns, **{lv: c.bytes_by_level.get(lv, 0.0) for lv in ("sram", "flash")}}
        prev[:] = [add_task(schedule, label, op, c, "mcu", demands, prev,
                            level="flash" if op.weight_bytes else "")]
    stage = plan.patch
    done = set()
    if stage is not None:
        shapes = tensor_shapes(graph)
        ops = {op.name: op for op in graph.ops}
        for p, regions in enumerate(stage.regions):
            need = dict(regions)
            need[INPUT] = stage.input_regions[p]
            for name in stage.ops:
                op = ops[name]
                inp = [need[t] for t in _inputs(graph, op)]
                run(_patch_op(op, need[name], inp, shapes, graph), f"{name}@patch{p}")
        done = set(stage.ops)
    for op in graph.ops:
        if op.name not in done:
            run(op, op.name)
    schedule.memory_plan = plan
    return schedule
