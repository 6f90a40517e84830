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
from hwsim.metrics import Metrics, compute_metrics
from hwsim.sim.engine import simulate
from hwsim.sim.schedule import Schedule
from hwsim.sim.trace import Trace
from hwsim.workloads.ops import OpGraph, WorkloadInfo
from hwsim.workloads.transformer import build_transformer, transformer_info


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
                **({"check": self.check, "check_detail": self.check_detail}
                   if self.check is not None else {})}


def throughput_unit(graph: OpGraph) -> str:
    """What the throughput counts, per second: "tokens/s", or "inferences/s" for a CNN pass."""
    return f"{graph.info.work_unit}s/s"


def check_fits(system: SystemUnderTest, info: WorkloadInfo, key_prefix: str = "") -> None:
    """Weights plus the KV cache of the batch must fit the device memory."""
    w = system.workload
    longest = w.requests.longest(w.batch) + (1 if w.phase == "decode" else 0)
    if longest > w.model.max_seq_len:
        raise ConfigError(f"a request holds {longest} tokens but {w.model.name} supports "
                          f"max_seq_len={w.model.max_seq_len}", key=f"{key_prefix}workload.requests")
    capacity = system.hardware.memory_capacity_bytes()
    need = info.weight_bytes_per_device + info.kv_bytes_per_device
    if capacity is not None and need > capacity:
        raise ConfigError(
            f"{w.model.name} does not fit one device: weights {info.weight_bytes_per_device / 1e9:.2f} GB"
            f" + KV cache {info.kv_bytes_per_device / 1e9:.2f} GB > memory {capacity / 1e9:.2f} GB"
            f" (raise tp, lower the batch or context, or add memory)", key=f"{key_prefix}workload.batch")


def device_area_mm2(system: SystemUnderTest, graph: OpGraph) -> dict[str, float]:
    """Area per component of one device: the hardware the system's mapper uses, with datapaths
    sized for the workload's dtype (hwsim.hw.area)."""
    dtype = graph.ops[0].dtype if len(graph) else "fp16"
    return device_area_breakdown_mm2(system.hardware, MAPPERS[system.mapper.name].needs, dtype)


# Mappers whose cost models know conv ops (hw/npu.py via hw/systolic.py).
CNN_MAPPERS = ("npu_only",)


def check_fits_cnn(system: SystemUnderTest, graph: OpGraph, key_prefix: str = "") -> None:
    """A CNN's weights plus its largest layer's input and output activations must fit the
    device memory, and its mapper must know conv ops."""
    if system.mapper.name not in CNN_MAPPERS:
        raise ConfigError(f"mapper '{system.mapper.name}' cannot run CNN workloads; use one of: "
                          f"{', '.join(CNN_MAPPERS)}", key=f"{key_prefix}mapper.name")
    capacity = system.hardware.memory_capacity_bytes()
    acts = max((op.act_in_bytes + op.act_out_bytes for op in graph.ops), default=0)
    need = graph.info.weight_bytes_per_device + acts
    if capacity is not None and need > capacity:
        raise ConfigError(
            f"{graph.info.model} does not fit one device: weights {graph.info.weight_bytes_per_device / 1e9:.3f} GB"
            f" + activations {acts / 1e9:.3f} GB > memory {capacity / 1e9:.3f} GB"
            " (lower the batch or add memory)", key=f"{key_prefix}workload.batch")


def run_system(system: SystemUnderTest, key_prefix: str = "",
               extrapolate_layers: bool = False) -> SystemResult:
    """Simulate one system. `extrapolate_layers`: for sweeps, a dense decoder's stage is
    simulated with 1, 2, 3, ... layers until the increments show a steady period, and extended
    over whole periods to all its layers (hwsim.extrapolate: when it is exact, when it falls back
    to simulating every layer); the result's graph, schedule and trace are then those of the
    short run it was extended from."""
    if extrapolate_layers:
        from hwsim.extrapolate import can_extrapolate, extrapolate
        if can_extrapolate(system):
            check_fits(system, transformer_info(system.workload), key_prefix)
            found = extrapolate(system, lambda short: run_system(short, key_prefix))
            if found is not None:
                return dataclasses.replace(found.run, system=system, metrics=found.metrics,
                                           extrapolation_period=found.period)
    if system.workload.kind == "cnn":
        from hwsim.workloads.cnn import build_cnn
        graph = build_cnn(system.workload)
        check_fits_cnn(system, graph, key_prefix)
    else:
        graph = build_transformer(system.workload)
        check_fits(system, graph.info, key_prefix)
    entry = MAPPERS[system.mapper.name]
    schedule = entry.build(graph, system.hardware, system.mapper.options)
    trace = simulate(schedule)
    return SystemResult(system, graph, schedule, trace,
                        compute_metrics(graph, schedule, trace, device_area_mm2(system, graph)))


def evaluate(config: RunConfig, extrapolate_layers: bool = False) -> RunResult:
    """The main system and every baseline (see run_system for `extrapolate_layers`)."""
    result = RunResult(config, run_system(config.main, extrapolate_layers=extrapolate_layers))
    for name, system in config.baselines.items():
        result.baselines[name] = run_system(system, key_prefix=f"baselines.{name}.",
                                            extrapolate_layers=extrapolate_layers)
    return result
