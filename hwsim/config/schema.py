"""The typed run config: what `hwsim run CONFIG` reads once presets and overrides are resolved."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hwsim.hw.system import HardwareSpec
from hwsim.mappers import MAPPERS
from hwsim.workloads.transformer import TransformerWorkload


class MapperChoice(BaseModel):
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


def check_system(workload: TransformerWorkload, hardware: HardwareSpec, mapper: MapperChoice):
    missing = [c for c in MAPPERS[mapper.name].needs if getattr(hardware, c) is None]
    if missing:
        raise ValueError(f"mapper '{mapper.name}' needs hardware.{', hardware.'.join(missing)}")
    if workload.tp * workload.ep > 1 and hardware.link is None:
        raise ValueError("tp or ep > 1 needs hardware.link for the collectives")


class SystemUnderTest(BaseModel):
    """A workload on a machine placed by a mapper: what one column of the report shows."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: TransformerWorkload
    hardware: HardwareSpec
    mapper: MapperChoice

    @model_validator(mode="after")
    def _mapper_has_its_hardware(self):
        check_system(self.workload, self.hardware, self.mapper)
        return self


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str | None = Field(default=None, description="results folder; default results/<name>")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    workload: TransformerWorkload
    hardware: HardwareSpec
    mapper: MapperChoice
    baselines: dict[str, SystemUnderTest] = Field(default_factory=dict)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @model_validator(mode="after")
    def _mapper_has_its_hardware(self):
        check_system(self.workload, self.hardware, self.mapper)
        return self

    @property
    def main(self) -> SystemUnderTest:
        return SystemUnderTest(workload=self.workload, hardware=self.hardware, mapper=self.mapper)
