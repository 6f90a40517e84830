"""`flash` / `flash-gpu`: "LLM in a flash" — a model twice the DRAM, its FFN streamed from flash.

Alizadeh et al., "LLM in a flash: Efficient Large Language Model Inference with Limited Memory"
(Apple, arXiv 2312.11514; ACL 2024). The weights live on a flash level (hw/flash.py: read
bandwidth set by the chunk size); DRAM (the CPU's `ram`, or the GPU's memory) holds about half
the model. Two ways to run a decode step (option `loading`):

- `naive` (the paper's baseline, Table 2 first row: 0 GB kept in DRAM, the whole model read
  from flash per token at the sequential peak): each block — a decoder layer, the input block,
  the output block — is read from flash *on demand*, when the forward pass reaches it: its read
  starts once the previous block has been computed (the paper's naive latency is I/O + compute,
  Table 3). Each tensor is one contiguous read (chunk = the tensor).
- `sparse` (the paper's "All": predictor + windowing + row-column bundling, sections 3.1-3.3):
  the attention weights, norms, biases, embeddings and head stay in DRAM ("selective
  persistence"); per layer, a low-rank predictor (rank `predictor_rank`) reads the attention
  output and predicts the FFN neurons ReLU will keep; a sliding window keeps the neurons active
  for the last `window` tokens in DRAM (`window_resident` of the FFN on average), so only the
  neurons new to the window are read (`window_new` of the FFN per token: the window's misses).
  With `bundling`, neuron i's up-projection column and down-projection row are stored together
  and read as one chunk of 2 x d_model x bytes (else two reads of d_model x bytes).
  Per layer the tasks run: attention ops -> predictor -> flash read of the misses -> memory
  management (section 3.3: the rows of the evicted neurons are overwritten by the last rows and
  the new rows appended: DRAM traffic of 3 x the new bytes — write the new rows, read and write
  as many moved rows) -> the FFN over the window's rows (section 3.3, "Inference Process": the
  first `num_rows` rows of the preallocated matrix).

On `flash-gpu` every byte read from flash also crosses the host link (`host_link_gbps`, PCIe)
into GPU memory: the read task streams through both (its time is the slower of the two).

The window statistics are measurements of the paper (OPT 6.7B, section 4: "Using active neurons
of predictor would require about 10% ... with our method, it drops to 2.4%", "increases the DRAM
requirement for the FFN to 24%"), inputs here, not results. They must be consistent:
0 < window_new <= predicted_active <= window_resident <= min(1, window x predicted_active).

Capacity (exit 2 naming the level): the model's weights must fit the flash level; what DRAM
holds — resident weights (sparse: everything but the FFN, plus the predictor and the window's
neuron rows; naive: the largest block being computed), the KV cache and the largest op's
input + output — must fit the DRAM level.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from hwsim.hw.system import HardwareSpec
from hwsim.input_error import ConfigError
from hwsim.mappers.common import add_task, memory_resources
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import MatMul, Op, OpGraph, OpKind


class FlashOptions(Spec):
    """How the model is loaded from flash (module docstring); defaults: the paper's OPT 6.7B setup."""
    loading: Literal["sparse", "naive"] = Field(default="sparse", description="sparse: predictor + "
                                                "sliding window (+ bundling); naive: every block read "
                                                "from flash when the pass reaches it")
    predicted_active: float = Field(default=0.10, gt=0, le=1, description="FFN neurons the predictor "
                                    "marks active per token (paper section 4, OPT 6.7B: about 10%)")
    window: int = Field(default=5, ge=1, le=1000, description="tokens whose active neurons stay in "
                        "DRAM (paper: k = 5, Figure 4b)")
    window_resident: float = Field(default=0.24, gt=0, le=1, description="share of the FFN neurons "
                                   "the window keeps in DRAM on average (paper section 4: 24%)")
    window_new: float = Field(default=0.024, gt=0, le=1, description="share of the FFN neurons new to "
                              "the window per token, read from flash (paper section 4: 2.4%)")
    bundling: bool = Field(default=True, description="row-column bundling: a neuron's up column and "
                           "down row are one chunk (paper section 3.2)")
    predictor_rank: int = Field(default=128, ge=1, description="rank of the low-rank predictor (assumed: "
                                "rank 128 gives the paper's 'Predictor accounts for 1.25% of the model "
                                "size' for OPT 6.7B)")
    host_link_gbps: float = Field(default=25.0, gt=0, description="flash-gpu only: host-to-GPU link "
                                  "(assumed: ~80% of PCIe 4.0 x16's 31.5 GB/s)")

    @model_validator(mode="after")
    def _window_consistent(self):
        if self.window_new > self.predicted_active:
            raise ValueError(f"window_new ({self.window_new}) cannot exceed predicted_active "
                             f"({self.predicted_active}): a token reads at most its own active neurons")
        if self.predicted_active > self.window_resident:
            raise ValueError(f"window_resident ({self.window_resident}) must hold at least one token's "
                             f"active neurons (predicted_active {self.predicted_active})")
        if self.window_resident > min(1.0, self.window * self.predicted_active) + 1e-12:
            raise ValueError(f"window_resident ({self.window_resident}) cannot exceed the union of "
                             f"{self.window} tokens' active neurons (window x predicted_active = "
                             f"{self.window * self.predicted_active:g})")
        return self


@dataclass(frozen=True)
class FlashPlan:
    """What one decode step reads from flash and keeps in DRAM (bytes)."""
    loading: str
    model_bytes: float           # every weight (lives on flash)
    dram_weight_bytes: float     # weights held in DRAM (sparse: resident + predictor + window rows)
    kv_bytes: float
    activation_bytes: float      # the largest op's input + output
    flash_read_bytes: float      # read per token
    chunk_bytes: float           # sparse: the read size of one neuron (bundle); naive: inf (per tensor)
    new_neurons_per_layer: int   # sparse: the window's misses per layer
    window_neurons_per_layer: int
    ffn_layers: int
    neuron_bytes: float          # one neuron's up column + down row

    @property
    def dram_peak_bytes(self) -> float:
        return self.dram_weight_bytes + self.kv_bytes + self.activation_bytes


def _layers(graph: OpGraph) -> list[tuple[str, list[Op]]]:
    """The graph cut into blocks in execution order: "input" (before the first layer), "L<i>",
    "output" (after the layers)."""
    out: list[tuple[str, list[Op]]] = []
    seen = False
    for op in graph.ops:
        if op.layer < 0:
            name = "output" if seen else "input"
        else:
            seen, name = True, f"L{op.layer}"
        if not out or out[-1][0] != name:
            out.append((name, []))
        out[-1][1].append(op)
    return out


def _ffn_ops(ops: list[Op]) -> tuple[Op, Op | None, Op] | None:
    """A layer's dense FFN (up, activation, down), or None (a layer without one)."""
    by = {op.name.split(".", 1)[1]: op for op in ops if "." in op.name}
    up, down = by.get("ffn.up"), by.get("ffn.down")
    return (up, by.get("ffn.act"), down) if up is not None and down is not None else None


def flash_plan(graph: OpGraph, options: FlashOptions) -> FlashPlan:
    ops = graph.ops
    if not ops:
        raise ConfigError("the workload has no ops to load from flash", key="workload")
    b = ops[0].dtype_bytes
    model = float(graph.info.weight_bytes_per_device or sum(op.weight_bytes for op in ops))
    acts = max((float(op.act_in_bytes + op.act_out_bytes) for op in ops), default=0.0)
    blocks = _layers(graph)
    ffns = [f for _, blk in blocks if (f := _ffn_ops(blk)) is not None]
    if options.loading == "naive":
        largest = max(float(sum(op.weight_bytes for op in blk)) for _, blk in blocks)
        return FlashPlan("naive", model, largest, float(graph.info.kv_bytes_per_device), acts,
                         float(sum(op.weight_bytes for op in ops)), math.inf, 0, 0, len(ffns), 0.0)
    if not ffns:
        raise ConfigError("sparse loading needs dense FFN layers (ffn.up / ffn.down ops); this model "
                          "has none", key="mapper.loading")
    up, _, down = ffns[0]
    if up.matmul is None or down.matmul is None or graph.info.batch != 1 or graph.info.tokens != 1:
        raise ConfigError("sparse flash loading models single-sequence decode (batch 1, one token per "
                          "step), as the paper does (section 8)",
                          key="workload.batch" if graph.info.batch != 1 else "workload.phase")
    d_model, d_ff = up.matmul.k, down.matmul.k
    # up column + down row (section 3.2); a gated FFN (SwiGLU) bundles the gate column too
    neuron = (up.matmul.n // d_ff + 1.0) * d_model * b
    new = math.ceil(options.window_new * d_ff)
    win = math.ceil(options.window_resident * d_ff)
    ffn_weights = sum(float(u.weight_bytes + d.weight_bytes) for u, _, d in ffns)
    ffn_matrix = len(ffns) * d_ff * neuron           # the part that lives on flash only
    if any(u.matmul is None or d.matmul is None or d.matmul.k != d_ff for u, _, d in ffns):
        raise ConfigError("sparse flash loading needs every FFN layer of one width", key="workload.model")
    predictor = len(ffns) * options.predictor_rank * (d_model + d_ff) * b
    resident = model - ffn_matrix + predictor + len(ffns) * win * neuron
    chunk = neuron if options.bundling else neuron / 2
    assert ffn_weights >= ffn_matrix
    return FlashPlan("sparse", model, resident, float(graph.info.kv_bytes_per_device), acts,
                     len(ffns) * new * neuron, chunk, new, win, len(ffns), neuron)


def check_capacities(plan: FlashPlan, dram_level, flash_level, dram_key: str, model: str) -> None:
    """Exit 2 (ConfigError) naming the level, the need and the capacity when the plan does not fit."""
    if plan.model_bytes > flash_level.capacity_bytes:
        raise ConfigError(f"{model}'s weights ({plan.model_bytes / 1e9:.2f} GB) do not fit memory level "
                          f"'{flash_level.name}' ({flash_level.capacity_bytes / 1e9:.2f} GB)",
                          key="hardware.flash.capacity_gib")
    if plan.dram_peak_bytes > dram_level.capacity_bytes:
        what = ("resident weights + predictor + window" if plan.loading == "sparse"
                else "the largest block")
        raise ConfigError(f"{model} does not fit memory level '{dram_level.name}': peak "
                          f"{plan.dram_peak_bytes / 1e9:.2f} GB ({what} {plan.dram_weight_bytes / 1e9:.2f} GB "
                          f"+ KV {plan.kv_bytes / 1e9:.3f} GB + activations {plan.activation_bytes / 1e6:.1f} MB)"
                          f" > capacity {dram_level.capacity_bytes / 1e9:.2f} GB (a smaller window, "
                          "more sparsity or more DRAM)", key=dram_key)


def _scaled(op: Op, rows: int, d_ff: int) -> Op:
    """`op` (an FFN up, activation or down op) over `rows` of the layer's `d_ff` neurons: the up
    projection keeps its input and shrinks its output, the down projection the reverse, the
    activation shrinks both."""
    f = rows / d_ff
    mm, act_in, act_out, weights = op.matmul, op.act_in_bytes, op.act_out_bytes, op.weight_bytes
    if mm is not None:
        b = op.dtype_bytes
        bias = op.weight_bytes - mm.count * mm.k * mm.n * b        # the up bias has d_ff entries
        if mm.n % d_ff == 0 and mm.k != d_ff:        # up (gate + up for SwiGLU): d_ff x g outputs
            g = mm.n // d_ff
            mm, act_out, bias = dataclasses.replace(mm, n=rows * g), int(act_out * f), bias * rows // d_ff
        else:
            mm, act_in = dataclasses.replace(mm, k=rows), int(act_in * f)
        weights = mm.count * mm.k * mm.n * b + bias
    else:
        act_in, act_out = int(act_in * f), int(act_out * f)
    return dataclasses.replace(op, flops=op.flops * f, weight_bytes=weights, matmul=mm,
                               elements=int(op.elements * f), act_in_bytes=act_in, act_out_bytes=act_out)


def _predictor(layer: int, d_model: int, d_ff: int, rank: int, dtype: str, b: int) -> Op:
    """The low-rank predictor of a layer (x -> rank -> d_ff), as one matmul op."""
    return Op(name=f"L{layer}.predictor", kind=OpKind.MATMUL, layer=layer, dtype=dtype,
              flops=2.0 * rank * (d_model + d_ff), weight_bytes=rank * (d_model + d_ff) * b,
              act_in_bytes=d_model * b, act_out_bytes=d_ff * b, matmul=MatMul(m=1, n=d_ff, k=rank))


class _Machine:
    """The compute side: an `edge` CPU (DRAM = its `ram`) or a `gpu` (DRAM = its memory)."""

    def __init__(self, hw: HardwareSpec, kind: str, schedule: Schedule, dtype: str):
        self.kind = kind
        self.device = hw.device((kind, "flash"))
        memory_resources(schedule, self.device)
        if kind == "edge":
            spec = self.device.spec("edge")
            schedule.add_resource(Resource("edge", "compute", 1.0, 1.0, exclusive=True, unit="edge",
                                           peak_flops_per_ns=spec.peak_flops_per_ns))
            self.dram, self.dram_key = self.device.level("ram"), "hardware.edge.ram_gib"
            self.coster = None
        else:
            from hwsim.hw.gpu import GPUCoster, ServingStack
            spec = self.device.spec("gpu")
            # the paper runs HuggingFace Transformers / PyTorch (section 4.1): eager kernels
            self.coster = GPUCoster(spec, ServingStack(launch="eager", fused_elementwise=False))
            self.dram, self.dram_key = self.device.level("hbm"), "hardware.gpu.hbm_gib"
            schedule.add_resource(Resource("gpu", "compute", 1.0, 1.0, exclusive=True, unit="gpu",
                                           peak_flops_per_ns=spec.peak(dtype) / 1e9))
        name = self.device.spec("flash").name
        if name in (self.dram.name, "pcie", kind) or sum(lv.name == name for lv in self.device.levels) != 1:
            raise ConfigError(f"the flash level's name '{name}' is taken by another level or unit of "
                              "this device", key="hardware.flash.name")
        self.flash = self.device.level(name)

    def cost(self, op: Op):
        if self.kind == "edge":
            from hwsim.hw.registry import op_cost
            c = op_cost("edge", op.kind)(self.device, op)
            return c, {"edge": c.compute_ns, "ram": c.bytes_by_level.get("ram", 0.0)}
        c = self.coster.op_cost(op, self.coster.kernel(op))
        return c, {"gpu": c.compute_ns, "hbm": c.bytes_by_level.get("hbm", 0.0)}


def _map(graph: OpGraph, hw: HardwareSpec, options: FlashOptions, kind: str) -> Schedule:
    schedule = Schedule(resources={})
    m = _Machine(hw, kind, schedule, graph.ops[0].dtype if graph.ops else "fp16")
    if kind == "gpu":
        schedule.add_resource(Resource("pcie", "link", options.host_link_gbps, options.host_link_gbps,
                                       exclusive=False, unit="pcie"))
    plan = flash_plan(graph, options)
    check_capacities(plan, m.dram, m.flash, m.dram_key, graph.info.model)
    schedule.resident_bytes = {m.dram.name: plan.dram_peak_bytes, m.flash.name: plan.model_bytes}
    schedule.flash_plan = plan
    # weights of the graph's FFN ops that the sparse step never touches (neurons outside the
    # window): the physics test's "every weight byte moved at least once" floor leaves them out
    schedule.skipped_weight_bytes = 0.0
    fspec = m.device.spec("flash")

    def read(label: str, nbytes: float, chunk: float, deps: list[int], layer: int) -> int:
        demands = {m.flash.name: fspec.effective_bytes(nbytes, chunk)}
        if kind == "gpu":
            demands["pcie"] = nbytes
        e = m.flash.energy_j(nbytes)
        return schedule.add(label, "", m.flash.name, demands, deps=deps,
                            bytes_by_level={m.flash.name: nbytes}, energy_j=e,
                            energy_by_component_j={"flash": e},
                            roofline_ns=nbytes / fspec.peak_read_gbps, component="flash",
                            datapath="flash", level=m.flash.name, layer=layer)

    def compute(op: Op, deps: list[int]) -> int:
        c, demands = m.cost(op)
        return add_task(schedule, op.name, op, c, kind, demands, deps, component=kind,
                        level=m.dram.name if op.weight_bytes else "")

    task_of: dict[str, int] = {}
    prev_read: int | None = None
    last_task: int | None = None
    for block, ops in _layers(graph):
        layer = ops[0].layer
        gate: int | None = None
        if plan.loading == "naive":
            deps = [t for t in (prev_read, last_task) if t is not None]
            weights = [op.weight_bytes for op in ops if op.weight_bytes]
            if weights:
                nbytes = float(sum(weights))
                t_ns = sum(fspec.read_time_ns(w, w) for w in weights)   # one read per tensor
                demands = {m.flash.name: t_ns * fspec.peak_read_gbps}
                if kind == "gpu":
                    demands["pcie"] = nbytes
                e = m.flash.energy_j(nbytes)
                gate = schedule.add(f"read {block}", "", m.flash.name, demands, deps=deps,
                                    bytes_by_level={m.flash.name: nbytes}, energy_j=e,
                                    energy_by_component_j={"flash": e},
                                    roofline_ns=nbytes / fspec.peak_read_gbps, component="flash",
                                    datapath="flash", level=m.flash.name, layer=layer)
                prev_read = gate
        ffn = _ffn_ops(ops) if plan.loading == "sparse" else None
        ffn_names = {o.name for o in ffn if o is not None} if ffn else set()
        for op in ops:
            deps = sorted(task_of[p] for p in graph.predecessors(op.name))
            if gate is not None:
                deps.append(gate)
            if ffn and op.name == ffn[0].name:
                up = ffn[0]
                d_model, d_ff = up.matmul.k, ffn[2].matmul.k
                pred = compute(_predictor(layer, d_model, d_ff, options.predictor_rank, op.dtype,
                                          op.dtype_bytes), deps)
                nbytes = plan.new_neurons_per_layer * plan.neuron_bytes
                r = read(f"read {block}.ffn misses", nbytes, plan.chunk_bytes,
                         [t for t in (pred, prev_read) if t is not None], layer)
                prev_read = r
                moved = 3.0 * nbytes                       # write new rows + read/write moved rows
                e = m.dram.energy_j(moved)
                mm = schedule.add(f"{block}.ffn window update", "", m.dram.name, {m.dram.name: moved},
                                  deps=[r], bytes_by_level={m.dram.name: moved}, energy_j=e,
                                  energy_by_component_j={"ram" if kind == "edge" else "dram": e},
                                  roofline_ns=moved / m.dram.peak_bw_gbps, component=kind,
                                  datapath="memory", level=m.dram.name, layer=layer)
                gate = mm
                deps = deps + [mm]
            if op.name in ffn_names:
                d_ff = ffn[2].matmul.k
                sparse = _scaled(op, plan.window_neurons_per_layer, d_ff)
                schedule.skipped_weight_bytes += op.weight_bytes - sparse.weight_bytes
                task_of[op.name] = compute(sparse, deps)
            elif op.kind.is_collective:
                raise ConfigError("flash loading runs on one device (no tensor parallelism)",
                                  key="workload.tp")
            else:
                task_of[op.name] = compute(op, deps)
            last_task = task_of[op.name]
    return schedule


@register("flash", "LLM in a flash on a CPU: FFN neurons streamed from flash through a sliding "
          "window in RAM (predictor, windowing, row-column bundling), or naive on-demand loading",
          needs=("edge", "flash"), options=FlashOptions, checks_fit=True)
def map_flash(graph: OpGraph, hw: HardwareSpec, options: FlashOptions) -> Schedule:
    return _map(graph, hw, options, "edge")


@register("flash-gpu", "LLM in a flash on a GPU: FFN neurons streamed from flash over the host link "
          "into a sliding window in GPU memory, or naive on-demand loading",
          needs=("gpu", "flash"), options=FlashOptions, checks_fit=True)
def map_flash_gpu(graph: OpGraph, hw: HardwareSpec, options: FlashOptions) -> Schedule:
    return _map(graph, hw, options, "gpu")
