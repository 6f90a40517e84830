"""What the engine runs: tasks with dependencies on resources. Mappers build it; the engine
knows nothing of what a task means.

A resource serves work at a rate: a compute unit serves 1 ns of its own work per ns; a memory or
link serves bytes per ns (= GB/s). An *exclusive* resource (a compute unit, a PIM channel's
command stream) admits one task at a time, in schedule order; a *shared* one (a memory bus, a
link) is divided among the tasks using it at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hwsim.frozen import evolve


@dataclass(frozen=True)
class Resource:
    name: str
    kind: str                    # "compute" | "memory" | "link"
    capacity_per_ns: float       # sustainable rate used by the simulation (work units per ns)
    peak_per_ns: float           # datasheet peak, for utilization and rooflines
    exclusive: bool
    unit: str = ""               # the component it belongs to, for reports ("npu", "hbm", ...)
    peak_flops_per_ns: float = 0.0   # compute resources: datasheet FLOP/ns, for FLOP utilization


@dataclass(frozen=True)
class Task:
    """One unit of scheduled work.

    `demands` maps resource name -> work on it (ns of compute, or bytes). The task progresses on
    all its resources at once (the double-buffered steady state), so alone it takes
    `latency_ns + max(work / capacity)`; `latency_ns` is the part nothing overlaps (pipeline
    fill, kernel launch, link latency). It starts no earlier than `release_ns` (a request's
    arrival, a scenario's next step) and its dependencies' ends.

    The provenance fields say what the task is, for reports, plots and `--check`; the engine
    reads none of them: the op and its layer (-1 outside layers) and micro-batch, the device
    (index into the system's devices), the registered component kind and its datapath that ran
    it, and the memory level holding its weights ("" when none: activations only, or in metal).
    """
    id: int
    name: str
    op: str                      # op name in the OpGraph ("" for mapper-made tasks)
    unit: str                    # where it ran, for reports
    demands: dict[str, float]
    deps: tuple[int, ...] = ()
    latency_ns: float = 0.0
    flops: float = 0.0
    bytes_by_level: dict[str, float] = field(default_factory=dict)
    energy_j: float = 0.0
    roofline_ns: float = 0.0     # max(FLOPs / peak, bytes / peak bandwidth) on its unit
    energy_by_component_j: dict[str, float] = field(default_factory=dict)   # sums to energy_j
    release_ns: float = 0.0
    layer: int = -1
    micro_batch: int = 0
    device: int = 0
    component: str = ""          # registered component kind ("npu", "pim", "gpu", "link", ...)
    datapath: str = ""           # its datapath ("systolic", "vector", "tensor", "link", ...)
    level: str = ""              # memory level holding the op's weights

    def evolve(self, **changes) -> "Task":
        """A copy with `changes` (field name -> value), without `__init__` (hwsim.frozen)."""
        return evolve(self, **changes)

    @property
    def phase(self) -> str:
        """A display label of the layer and micro-batch ("L3", "L3.m1"; "" outside layers)."""
        if self.layer < 0:
            return ""
        return f"L{self.layer}" + (f".m{self.micro_batch}" if self.micro_batch else "")


@dataclass
class Schedule:
    resources: dict[str, Resource]
    tasks: list[Task] = field(default_factory=list)
    static_power_w: dict[str, float] = field(default_factory=dict)   # per unit, for energy
    power_limit_w: dict[str, float] = field(default_factory=dict)    # per unit: its board power
                                                                     # limit (sim.trace.power_capped)
    resident_bytes: dict[str, float] = field(default_factory=dict)   # per memory level: what the
                                                                     # mapper placed there (reports)

    def add_resource(self, r: Resource) -> None:
        self.resources[r.name] = r

    def add(self, name: str, op: str, unit: str, demands: dict[str, float], deps=(), **kw) -> int:
        for r in demands:
            if r not in self.resources:
                raise KeyError(f"task {name} uses unknown resource {r}")
        tid = len(self.tasks)
        self.tasks.append(Task(id=tid, name=name, op=op, unit=unit, demands=demands,
                               deps=tuple(deps), **kw))
        return tid

    def standalone_ns(self, task: Task) -> float:
        return task.latency_ns + max(
            (w / self.resources[r].capacity_per_ns for r, w in task.demands.items() if w > 0),
            default=0.0)
