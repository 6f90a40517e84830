"""The `hardware:` section: which components a machine has. Mappers say which they need."""
from __future__ import annotations

from hwsim.hw.gpu import GPUSpec
from hwsim.hw.link import LinkSpec
from hwsim.hw.memory import MemorySpec
from hwsim.hw.npu import NPUSpec
from hwsim.hw.pim import PIMSpec
from hwsim.spec import Spec


class HardwareSpec(Spec):
    npu: NPUSpec | None = None
    gpu: GPUSpec | None = None
    memory: MemorySpec | None = None
    link: LinkSpec | None = None
    pim: PIMSpec | None = None

    def memory_capacity_bytes(self) -> float | None:
        if self.gpu is not None and self.memory is None:
            return self.gpu.hbm_gib * 2**30
        return self.memory.capacity_bytes if self.memory else None
