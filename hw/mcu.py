"""Microcontroller (Cortex-M class): one core running int8 kernels out of SRAM, weights in flash.

An MCU brings two memory levels with hard capacities: `sram` (activations: the layer-by-layer
or patch-based plan of mappers/mcu.py must fit it) and `flash` (weights, read in place). Both
are on the die, but both are schedule resources (bytes charged, busy time) so that every weight
and activation byte is accounted for.

Time of an op: its MACs / (int8 MACs per cycle x clock) for conv, depthwise conv and FC
(the rate a kernel library reaches on the core, loads, im2col and requantization included),
and elements / (vector ops per cycle x clock) for pooling and residual adds. The roofline is
the core's architectural peak: the ARMv7E-M DSP extension's SMLAD does two 16x16-bit MACs per
cycle (Arm ARMv7-M Architecture Reference Manual, DDI0403E, SMLAD; CMSIS-NN widens int8 to
int16 and issues SMLAD: Lai, Suda, Chandra, "CMSIS-NN: Efficient Neural Network Kernels for Arm
Cortex-M CPUs", arXiv 1801.06601, section 3), so `macs_per_cycle <= 2`.

The reached MAC rate of a preset is a named calibration (never a target): see
`TINYENGINE_H743_FIT` below, fitted on TinyEngine's measured STM32H743 latencies of models
that are *not* the validation targets.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hwsim.hw.cost import OpCost
from hwsim.spec import Spec
from hwsim.workloads.ops import Op

# SMLAD: two 16-bit MACs per cycle (module docstring) — the core's int8 peak through CMSIS-NN-style
# kernels (int8 operands widened to int16).
PEAK_MACS_PER_CYCLE = {"cortex-m4": 2.0, "cortex-m7": 2.0}

# Named calibration (DESIGN: "a calibration, where used, is a named, documented fit with its data
# source"). TinyEngine @0363956 on STM32H743 at 480 MHz (mit-han-lab/tinyengine README, "Measured
# Results", latency table) for the models that are NOT hwsim's validation targets, with their MACs
# from the mcunet README model list (mit-han-lab/mcunet README.md):
#   mcunet-in1 12.8 M / 56 ms, mcunet-in2 67.3 M / 280 ms, mcunet-in3 81.8 M / 336 ms,
#   mcunet-in4 125.9 M / 463 ms, mcunet-vww1 11.6 M / 51 ms, mcunet-vww2 55.8 M / 234 ms,
#   proxyless-w0.3 38.3 M / 176 ms.
# Fit: total MACs / (480 MHz x total time) = 393.5 M / (480e6 x 1.596 s) = 0.514 MAC/cycle.
TINYENGINE_H743_FIT_MACS = (12.8, 67.3, 81.8, 125.9, 11.6, 55.8, 38.3)
TINYENGINE_H743_FIT_MS = (56, 280, 336, 463, 51, 234, 176)


def tinyengine_h743_macs_per_cycle(freq_mhz: float = 480.0) -> float:
    """The calibration above, recomputed from its data (tests check the presets use it)."""
    return sum(TINYENGINE_H743_FIT_MACS) * 1e6 / (freq_mhz * 1e6 * sum(TINYENGINE_H743_FIT_MS) * 1e-3)


class MCUSpec(Spec):
    """`hardware.mcu:` one Cortex-M core with its SRAM and flash (presets: stm32f412, stm32f746,
    stm32h743; each constant's source is in the preset)."""
    core: Literal["cortex-m4", "cortex-m7"]
    freq_mhz: float = Field(gt=0, le=2000, description="core clock")
    sram_kib: float = Field(gt=0, description="SRAM usable for activations (hard limit)")
    flash_kib: float = Field(gt=0, description="flash holding the weights (hard limit)")
    macs_per_cycle: float = Field(gt=0, description="int8 MACs per cycle the kernel library reaches "
                                  "on conv, depthwise and FC layers (a calibration or 'assumed')")
    vector_ops_per_cycle: float = Field(default=1.0, gt=0, description="pooling / residual-add "
                                        "elements per cycle (assumed: one per cycle)")
    sram_bytes_per_cycle: float = Field(default=4.0, gt=0, description="SRAM bandwidth, bytes per "
                                        "core cycle (assumed: one 32-bit word per cycle)")
    flash_bytes_per_cycle: float = Field(default=4.0, gt=0, description="flash read bandwidth through "
                                         "the cache/ART accelerator, bytes per core cycle (assumed)")
    run_power_mw: float = Field(gt=0, description="core + SRAM power while running (energy = power x "
                                "time; rough, see the preset)")
    flash_pj_per_bit: float = Field(default=10.0, gt=0, description="flash read energy (assumed)")
    sram_pj_per_bit: float = Field(default=1.0, gt=0, description="SRAM access energy (assumed)")
    die_area_mm2: float = Field(gt=0, description="the whole MCU die (core, SRAM, flash, peripherals)")

    @model_validator(mode="after")
    def _below_peak(self):
        peak = PEAK_MACS_PER_CYCLE[self.core]
        if self.macs_per_cycle > peak:
            raise ValueError(f"macs_per_cycle {self.macs_per_cycle} exceeds the {self.core}'s peak of "
                             f"{peak} int8 MACs per cycle (SMLAD)")
        return self

    @property
    def sram_bytes(self) -> float:
        return self.sram_kib * 1024.0

    @property
    def flash_bytes(self) -> float:
        return self.flash_kib * 1024.0

    @property
    def cycle_ns(self) -> float:
        return 1e3 / self.freq_mhz

    @property
    def peak_macs_per_ns(self) -> float:
        return PEAK_MACS_PER_CYCLE[self.core] / self.cycle_ns


def op_macs(op: Op) -> float:
    """MACs of a conv / depthwise / FC op (FLOPs / 2); 0 for the vector ops."""
    return op.flops / 2.0 if (op.conv is not None or op.matmul is not None) else 0.0


def mcu_op_cost(spec: MCUSpec, op: Op, sram_level, flash_level) -> OpCost:
    """Time, bytes per level and energy of `op` on the core (module docstring). Weights are read
    from flash once, activations in and out of SRAM once."""
    macs = op_macs(op)
    if macs:
        compute = macs / spec.macs_per_cycle * spec.cycle_ns
        roof = macs / spec.peak_macs_per_ns
        engine = "mac"
    else:
        compute = op.flops / spec.vector_ops_per_cycle * spec.cycle_ns
        roof = op.flops / (spec.vector_ops_per_cycle / spec.cycle_ns)
        engine = "vector"
    act = float(op.act_in_bytes + op.act_out_bytes)
    w = float(op.weight_bytes)
    roof = max(roof, act / sram_level.peak_bw_gbps, w / flash_level.peak_bw_gbps)
    parts = {"compute": spec.run_power_mw * 1e-3 * compute * 1e-9,
             "sram": sram_level.energy_j(act), "flash": flash_level.energy_j(w)}
    return OpCost(compute_ns=compute, bytes_by_level={sram_level.name: act, flash_level.name: w},
                  energy_j=sum(parts.values()), roofline_ns=roof, engine=engine,
                  energy_by_component_j=parts)


# ---- registration ------------------------------------------------------------------------------

def _mcu_levels(spec: MCUSpec):
    from hwsim.hw.memory import MemoryLevel
    gbps = lambda per_cycle: per_cycle * spec.freq_mhz * 1e-3   # noqa: E731 (bytes/ns = GB/s)
    return [MemoryLevel("sram", spec.sram_bytes, gbps(spec.sram_bytes_per_cycle),
                        gbps(spec.sram_bytes_per_cycle), spec.sram_pj_per_bit),
            MemoryLevel("flash", spec.flash_bytes, gbps(spec.flash_bytes_per_cycle),
                        gbps(spec.flash_bytes_per_cycle), spec.flash_pj_per_bit)]


def _mcu_cost(device, op: Op, where=None) -> OpCost:
    return mcu_op_cost(device.spec("mcu"), op, device.level("sram"), device.level("flash"))


def _mcu_check_case(datapath: str, device, op: Op, ctx):
    """`--check` of a conv / depthwise conv on the MCU: the layer, scaled down (at most 16 x 16
    pixels, 16 channels), computed patch by patch on a 2 x 2 grid with its halos by the int8
    kernel of hw/kernels/patch.py, against the float64 definition (hw/kernels/conv.py), both
    requantized the same way: exact for a correct patch schedule."""
    c = op.conv
    if c is None or op.dtype != "int8":
        return None
    import numpy as np

    from hwsim.hw.kernels import conv, patch
    from hwsim.hw.kernels.cases import KernelCase
    kh, kw, s, p = int(c.kernel_h), int(c.kernel_w), int(c.stride), int(c.padding)
    in_h, in_w = max(kh, min(int(c.in_h), 16)), max(kw, min(int(c.in_w), 16))
    if c.is_depthwise:
        in_c = min(int(c.in_c), 16)
        groups, cg, out_c = in_c, 1, in_c
    else:
        groups, cg, out_c = 1, min(int(c.in_c) // int(c.groups), 16), min(int(c.out_c), 16)
        in_c = cg
    grid = min(2, patch.out_size(in_h, kh, s, p), patch.out_size(in_w, kw, s, p))

    def run(rng):
        x = rng.integers(-128, 128, size=(in_h, in_w, in_c), dtype=np.int8)
        w = rng.integers(-128, 128, size=(kh, kw, cg, out_c), dtype=np.int8)
        ours, _ = patch.chain_patches(x, [(w, s, p, groups)], grid)
        ref = conv.conv2d_reference(x[None], w, s, p, groups)[0]
        return ours.astype(np.float64), patch.requantize(ref.astype(np.int64), 7).astype(np.float64)
    return KernelCase(str(op.kind.value), "mcu", f"patch-based direct conv, {grid}x{grid} patches with halos",
                      "int8 x int8 -> int32 -> int8", "int32",
                      f"{in_h}x{in_w}x{in_c} * {kh}x{kw}/{s} -> {out_c} (groups {groups})", run)


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402
from hwsim.workloads.ops import OpKind  # noqa: E402

MCU_OPS = (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.MATMUL, OpKind.POOL, OpKind.ELEMENTWISE)

register_component(ComponentKind(
    name="mcu", spec=MCUSpec, role="compute",
    summary="Cortex-M microcontroller: int8 kernels at a reached MAC rate, SRAM and flash as hard-capacity levels",
    op_costs={k.value: _mcu_cost for k in MCU_OPS},
    area_mm2=lambda spec, device, dtype: {"mcu_die": spec.die_area_mm2},
    static_power_w=lambda spec, device, dtype: 0.0,
    energy_buckets=("compute", "sram", "flash"), memory_levels=_mcu_levels,
    check_cases=_mcu_check_case, check_unit=lambda datapath: "mcu"))
