"""`scenario:` in a run config: what is simulated over time (hwsim.scenarios).

`{kind: pass}` (the default) is one pass of the workload's batch. `{kind: serving, ...}` serves a
request stream on one replica of the system (hwsim.serving.loop)."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from hwsim.mappers.batching import load_policies
from hwsim.spec import Spec
from hwsim.workloads.arrivals import ArrivalSpec


class PassSpec(Spec):
    """One pass of the workload's batch (hwsim.scenarios.PassScenario)."""
    kind: Literal["pass"] = "pass"


class PolicyChoice(Spec):
    """`policy: {name: ..., <options of that policy>}` (hwsim.mappers.batching)."""
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "continuous"

    @model_validator(mode="after")
    def _known(self):
        policies = load_policies()
        if self.name not in policies:
            raise ValueError(f"unknown batching policy '{self.name}'; available: {', '.join(sorted(policies))}")
        options = policies[self.name].options
        unknown = [k for k in (self.model_extra or {}) if k not in options.model_fields]
        if unknown:
            raise ValueError(f"unknown option '{unknown[0]}' of batching policy '{self.name}'; its "
                             f"options: {', '.join(options.model_fields)}")
        options(**(self.model_extra or {}))
        return self

    @property
    def options(self) -> BaseModel:
        return load_policies()[self.name].options(**(self.model_extra or {}))


class SLOSpec(Spec):
    """Latency targets a request must meet to count as served well (SLO attainment, goodput)."""
    ttft_s: float | None = Field(default=None, gt=0, description="time to first token")
    tpot_s: float | None = Field(default=None, gt=0, description="mean time per output token after the first")
    attainment: float = Field(default=0.9, gt=0, le=1, description="share of requests that must meet "
                              "both for a rate to count as goodput (DistServe's 90%)")


class GoodputSpec(Spec):
    """Goodput search: the highest Poisson/gamma arrival rate whose SLO attainment reaches
    `slo.attainment`, found by bisection on the rate (same requests and seed, gaps rescaled).
    A short stream is served as one burst at any rate; give enough requests for the queue to
    reach its steady state, or every rate meets the SLO (the search then says so)."""
    search: bool = Field(default=False, description="run the search (costs several serving runs)")
    max_rate_per_s: float | None = Field(default=None, gt=0, le=1e6, description="upper end of the "
                                         "search (default: 4 x the ceiling's request rate)")
    iterations: int = Field(default=8, gt=0, le=30, description="bisection steps")


class DisaggregationSpec(Spec):
    """Prefill and decode on separate replicas of the system, the KV cache sent over
    hardware.link (hwsim.serving.disagg); `scenario.policy` schedules the decode replica."""
    prefill_policy: PolicyChoice = Field(default_factory=PolicyChoice, description="batching of the "
                                         "prefill replica (default: continuous)")


class ServingSpec(Spec):
    """Serve a request stream on one replica (hwsim.serving)."""
    kind: Literal["serving"] = "serving"
    arrivals: ArrivalSpec
    policy: PolicyChoice = Field(default_factory=PolicyChoice)
    slo: SLOSpec = Field(default_factory=SLOSpec)
    goodput: GoodputSpec = Field(default_factory=GoodputSpec)
    replicas: int = Field(default=1, gt=0, le=4096, description="identical replicas serving the "
                          "stream, requests dispatched round-robin (colocated only)")
    disaggregated: DisaggregationSpec | None = Field(default=None, description="prefill and decode "
                                                     "on two replicas (Splitwise/DistServe); none: colocated")

    @model_validator(mode="after")
    def _replicas(self):
        return _check_replicas(self)
    kv_block_tokens: int = Field(default=16, gt=0, le=4096, description="tokens per KV-cache block "
                                 "(vLLM's default block size, 16; assumed)")
    kv_allocation: Literal["reserve", "on_demand"] = Field(
        default="reserve", description="reserve: blocks for prompt and all output at admission (no "
        "preemption); on_demand: blocks as tokens come, preempting by recompute when full (vLLM)")
    memory_utilization: float = Field(default=0.9, gt=0, le=1, description="share of device memory "
                                      "the engine may use for weights and KV (vLLM's "
                                      "gpu_memory_utilization default, 0.9)")


def _check_replicas(spec: "ServingSpec") -> "ServingSpec":
    if spec.replicas > 1 and spec.disaggregated is not None:
        raise ValueError("replicas > 1 is for colocated serving; disaggregated runs one prefill and "
                         "one decode replica")
    return spec


def _scenario_kind(value: Any) -> str:
    kind = value.get("kind", "pass") if isinstance(value, dict) else getattr(value, "kind", "pass")
    return str(kind)


from hwsim.coe.spec import CoESpec  # noqa: E402
from hwsim.seqpar.spec import SequenceParallelSpec  # noqa: E402
from hwsim.training.spec import TrainingSpec  # noqa: E402

SCENARIO_SPECS = {"pass": PassSpec, "serving": ServingSpec, "coe": CoESpec, "training": TrainingSpec,
                  "sequence_parallel": SequenceParallelSpec}
Scenario = Annotated[Union[tuple(Annotated[spec, Tag(name)] for name, spec in SCENARIO_SPECS.items())],
                     Discriminator(_scenario_kind)]
