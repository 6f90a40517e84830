"""The typed run config: what `hwsim run CONFIG` reads once presets and overrides are resolved."""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from hwsim.hw.registry import COMPONENTS
from hwsim.hw.system import HardwareSpec
from hwsim.mappers import MAPPERS
from hwsim.outputs import plain_name_problem
from hwsim.serving.spec import PassSpec, Scenario
from hwsim.spec import Spec
from hwsim.workloads.registry import load_workloads

# `workload.kind` picks the workload model; a workload without `kind:` is a Transformer.
WORKLOAD_KINDS: dict[str, type[BaseModel]] = {name: k.spec for name, k in load_workloads().items()}


def _workload_kind(value: Any) -> str:
    kind = value.get("kind", "transformer") if isinstance(value, dict) else getattr(value, "kind", "transformer")
    return str(kind)


Workload = Annotated[Union[tuple(Annotated[spec, Tag(name)] for name, spec in WORKLOAD_KINDS.items())],
                     Discriminator(_workload_kind)]


class MapperChoice(Spec):
    """`mapper: {name: ..., <options of that mapper>}`."""
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str

    @model_validator(mode="after")
    def _known(self):
        if self.name not in MAPPERS:
            raise ValueError(f"unknown mapper '{self.name}'")
        MAPPERS[self.name].options(**(self.model_extra or {}))
        return self

    @property
    def options(self) -> BaseModel:
        return MAPPERS[self.name].options(**(self.model_extra or {}))


def missing_hardware(mapper: str, present: set[str], tp: int, ep: int) -> tuple[str, str] | None:
    """(component, message) for the first component the system lacks, or None. One rule for
    the schema (Python API) and the loader (which names the key in the file)."""
    missing = [c for c in MAPPERS[mapper].needs if c not in present]
    if missing:
        return missing[0], f"mapper '{mapper}' needs hardware.{', hardware.'.join(missing)}"
    if tp * ep == 1 or any(name in COMPONENTS and COMPONENTS[name].role == "link" for name in present):
        return None
    links = [name for name, kind in COMPONENTS.items() if kind.role == "link"]
    if links:
        return links[0], f"tp={tp}, ep={ep} needs a {' or '.join(links)} for the collectives"
    return None


def check_system(workload: Workload, hardware: HardwareSpec, mapper: MapperChoice):
    present = set(hardware.present())
    problem = missing_hardware(mapper.name, present, workload.tp, workload.ep)
    if problem:
        raise ValueError(problem[1])


class SystemUnderTest(Spec):
    """A workload on a machine placed by a mapper: what one column of the report shows."""

    workload: Workload
    hardware: HardwareSpec
    mapper: MapperChoice
    scenario: Scenario = Field(default_factory=PassSpec)

    @model_validator(mode="after")
    def _mapper_has_its_hardware(self):
        check_system(self.workload, self.hardware, self.mapper)
        return self


class OutputSpec(Spec):
    dir: str | None = Field(default=None, description="results folder; default results/<name>")


class RunConfig(Spec):
    name: str = Field(description="names the results folder, results/<name>/")
    workload: Workload
    hardware: HardwareSpec
    mapper: MapperChoice
    scenario: Scenario = Field(default_factory=PassSpec, description="what is simulated over time: "
                               "one pass of the batch (`pass`, default) or a request stream (`serving`)")
    baselines: dict[str, SystemUnderTest] = Field(default_factory=dict)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        problem = plain_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name

    @model_validator(mode="after")
    def _mapper_has_its_hardware(self):
        check_system(self.workload, self.hardware, self.mapper)
        return self

    @property
    def main(self) -> SystemUnderTest:
        return SystemUnderTest(workload=self.workload, hardware=self.hardware, mapper=self.mapper,
                               scenario=self.scenario)
