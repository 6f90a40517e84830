"""The whole pipeline for one config: workload -> op graph -> mapper -> schedule -> engine ->
trace -> metrics, for the main system and each baseline."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import hwsim
from hwsim.config.schema import RunConfig, SystemUnderTest
from hwsim.errors import ConfigError
from hwsim.hw.area import device_area_breakdown_mm2
from hwsim.mappers import MAPPERS
from hwsim.metrics import Metrics
from hwsim.sim.schedule import Schedule
from hwsim.sim.trace import Trace
from hwsim.workloads.ops import OpGraph, WorkloadInfo
from hwsim.workloads.transformer import transformer_info


@dataclass
class SystemResult:
    system: SystemUnderTest
    graph: OpGraph
    schedule: Schedule
    trace: Trace
    metrics: Metrics
    # Sweeps only (hwsim.extrapolate): the metrics were extended over whole periods of this many
    # decoder layers from a shorter run (graph, schedule and trace are that run's); None: every
    # layer was simulated.
    extrapolation_period: int | None = None

    @property
    def extrapolated(self) -> bool:
        return self.extrapolation_period is not None
    machine: object = None        # the hwsim.hw.system.System simulated (devices, interconnect)
    # Runs on a topology: (mappers.partition.Partition, ReplicaSchedule); None: one device.
    replica: object = None
    # Serving runs: the hwsim.serving.loop.ServingRun (per request and per iteration records);
    # graph, schedule and trace are then those of its largest iteration.
    serving: object = None
    # True when the schedule holds the tasks of every device (sequence-parallel runs); runs on a
    # topology (`replica`) do too; otherwise one simulated device stands for `metrics.devices`.
    every_device_scheduled: bool = False

    @property
    def schedules_every_device(self) -> bool:
        return self.replica is not None or self.every_device_scheduled


@dataclass
class RunResult:
    config: RunConfig
    main: SystemResult
    baselines: dict[str, SystemResult] = field(default_factory=dict)
    check: dict[str, float] | None = None         # `--check`: {op kind: max rel error} (hwsim.check)
    check_detail: dict | None = None              # `--check`: seed, per-kernel rows, tolerances

    def speedup(self) -> dict[str, float]:
        """Main's throughput / each baseline's (how many times faster main is, as papers report)."""
        mine = self.main.metrics.throughput_per_s
        return {name: mine / b.metrics.throughput_per_s for name, b in self.baselines.items()}

    def to_json(self) -> dict:
        return {"name": self.config.name, "hwsim_version": hwsim.__version__,
                "metrics": self.main.metrics.to_json(),
                "mapper": self.main.system.mapper.name,
                "mapper_options": self.main.system.mapper.options.model_dump(),
                "baselines": {n: {"metrics": b.metrics.to_json(), "mapper": b.system.mapper.name,
                                  "mapper_options": b.system.mapper.options.model_dump()}
                              for n, b in self.baselines.items()},
                "speedup": self.speedup(),
                "throughput_unit": throughput_unit(self.main.graph),
                **({"placement": self.main.schedule.placement}        # Op/B mappers (duplex)
                   if getattr(self.main.schedule, "placement", None) else {}),
                **({"check": self.check, "check_detail": self.check_detail}
                   if self.check is not None else {})}


def throughput_unit(graph: OpGraph) -> str:
    """What the throughput counts, per second: "tokens/s", or "inferences/s" for a CNN pass."""
    return f"{graph.info.work_unit}s/s"


def check_fits(system: SystemUnderTest, info: WorkloadInfo, key_prefix: str = "",
               activation_bytes: float = 0) -> None:
    """Weights plus the KV cache of the batch (plus `activation_bytes`, the largest layer's
    inputs and outputs, for workloads checked after their graph is built) must fit the memory
    of the device the mapper uses; requests must fit the model's context."""
    w = system.workload
    requests = getattr(w, "requests", None)          # workloads with a context (Transformers)
    if requests is not None:
        longest = (int((requests.context_lens(w.batch) + requests.query_lens(w.batch)).max())
                   if w.phase == "mixed" else requests.longest(w.batch) + (1 if w.phase == "decode" else 0))
        if longest > w.model.max_seq_len:
            raise ConfigError(f"a request holds {longest} tokens but {w.model.name} supports "
                              f"max_seq_len={w.model.max_seq_len}", key=f"{key_prefix}workload.requests")
    needs = MAPPERS[system.mapper.name].needs
    capacity = system.hardware.memory_capacity_bytes(needs)
    from hwsim.hw.registry import component
    in_metal = any(component(k).weights_in_metal for k in (needs or ()) if k in system.hardware.present())
    need = (0 if in_metal else info.weight_bytes_per_device) + info.kv_bytes_per_device + activation_bytes
    if capacity is not None and need > capacity:
        parts = [] if in_metal else [f"weights {info.weight_bytes_per_device / 1e9:.3f} GB"]
        if info.kv_bytes_per_device:
            parts.append(f"KV cache {info.kv_bytes_per_device / 1e9:.3f} GB")
        if activation_bytes:
            parts.append(f"activations {activation_bytes / 1e9:.3f} GB")
        hint = ("raise tp, lower the batch or context, or add memory" if info.kv_bytes_per_device
                else "lower the batch or add memory")
        raise ConfigError(f"{info.model} does not fit one device: {' + '.join(parts)} > memory "
                          f"{capacity / 1e9:.3f} GB ({hint})", key=f"{key_prefix}workload.batch")


def device_area_mm2(system: SystemUnderTest, graph: OpGraph) -> dict[str, float]:
    """Area per component of one device: the hardware the system's mapper uses, with datapaths
    sized for the workload's dtype (each kind's registered area function)."""
    dtype = graph.ops[0].dtype if len(graph) else "fp16"
    return device_area_breakdown_mm2(system.hardware, MAPPERS[system.mapper.name].needs, dtype)


def device_of(system: SystemUnderTest):
    """The device the system's mapper uses (hwsim.hw.system.Device)."""
    return system.hardware.device(MAPPERS[system.mapper.name].needs)


def run_system(system: SystemUnderTest, key_prefix: str = "",
               extrapolate_layers: bool = False) -> SystemResult:
    """Simulate one system. `extrapolate_layers`: for sweeps, a dense decoder's stage is
    simulated with 1, 2, 3, ... layers until the increments show a steady period, and extended
    over whole periods to all its layers (hwsim.extrapolate: when it is exact, when it falls back
    to simulating every layer); the result's graph, schedule and trace are then those of the
    short run it was extended from."""
    from hwsim.scenarios import SCENARIOS
    if system.scenario.kind != "pass":
        return SCENARIOS[system.scenario.kind].run(system, key_prefix)
    if extrapolate_layers:
        from hwsim.extrapolate import can_extrapolate, extrapolate
        if can_extrapolate(system):
            check_fits(system, transformer_info(system.workload), key_prefix)
            found = extrapolate(system, lambda short: run_system(short, key_prefix))
            if found is not None:
                return dataclasses.replace(found.run, system=system, metrics=found.metrics,
                                           extrapolation_period=found.period)
    return SCENARIOS["pass"].run(system, key_prefix)


def evaluate(config: RunConfig, extrapolate_layers: bool = False) -> RunResult:
    """The main system and every baseline (see run_system for `extrapolate_layers`)."""
    result = RunResult(config, run_system(config.main, extrapolate_layers=extrapolate_layers))
    for name, system in config.baselines.items():
        result.baselines[name] = run_system(system, key_prefix=f"baselines.{name}.",
                                            extrapolate_layers=extrapolate_layers)
    return result
