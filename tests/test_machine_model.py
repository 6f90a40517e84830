"""The machine model (issue 10): the component registry, memory levels and placement, weights in
metal, static power and area that move with the hardware, and "Adding hardware" done from a test."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, Field

from hwsim.configs import CONFIG_DIR


# --------------------------------------------------------------------------- the registry

def test_an_op_a_component_cannot_run_is_an_error_naming_both():
    from hwsim.hw.registry import NoCostError, op_cost
    from hwsim.workloads.ops import OpKind
    with pytest.raises(NoCostError, match=r"'pim' cannot run op kind 'matmul'"):
        op_cost("pim", OpKind.MATMUL)
    with pytest.raises(NoCostError, match=r"'npu' cannot run op kind 'all_reduce'"):
        op_cost("npu", OpKind.ALL_REDUCE)


def test_unknown_hardware_key_names_the_registered_kinds(tmp_path):
    from hwsim.config.loader import load_config_text
    from hwsim.errors import ConfigError
    text = (CONFIG_DIR / "gpt3-7b-npu.yaml").read_text().replace("  link: nvlink3\nmapper",
                                                                  "  link: nvlink3\n  pimm: {}\nmapper")
    with pytest.raises(ConfigError, match="hardware.pimm: unknown key 'pimm' .did you mean 'pim'"):
        load_config_text(text, file=str(CONFIG_DIR / "x.yaml"))


# --------------------------------------------------------------------------- memory levels

@pytest.fixture(scope="module")
def sn40l():
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / "sn40l-llama2-70b.yaml"))


def test_weights_spill_from_hbm_to_ddr_and_each_tier_is_charged_its_bytes_and_time(sn40l):
    m = sn40l.main.metrics
    hbm, ddr = m.memory_levels["hbm"], m.memory_levels["ddr"]
    info = sn40l.main.graph.info
    # everything the device holds is on some tier, and no tier holds more than its capacity
    assert hbm["resident_bytes"] + ddr["resident_bytes"] == pytest.approx(
        info.weight_bytes_per_device + info.kv_bytes_per_device)
    assert hbm["resident_bytes"] <= hbm["capacity_bytes"] and ddr["resident_bytes"] > 0
    # one decode pass reads every weight once: DDR moves exactly the weights it holds
    assert ddr["bytes"] == pytest.approx(ddr["resident_bytes"], rel=1e-9)
    # a tier can move its bytes no faster than its bandwidth; DDR (100 GB/s) sets the pace
    ddr_level = sn40l.main.system.hardware.device(("npu", "memory")).level("ddr")
    assert m.iteration_latency_s >= ddr["bytes"] / (ddr_level.peak_bw_gbps * 1e9) * (1 - 1e-9)
    assert ddr["busy"] * m.iteration_latency_s == pytest.approx(ddr["bytes"] / 100e9, rel=1e-6)
    assert m.bytes["ddr"] == round(ddr["bytes"]) and m.bytes["hbm"] == round(hbm["bytes"])


def test_the_first_layers_stay_in_hbm_and_the_last_ones_spill(sn40l):
    level_of = {}
    for t in sn40l.main.schedule.tasks:
        if t.level:
            level_of.setdefault(t.layer, t.level)
    layers = sorted(lv for lv in level_of if lv >= 0)
    spilled = [lv for lv in layers if level_of[lv] == "ddr"]
    assert spilled and spilled == layers[layers.index(spilled[0]):]   # a suffix of the layers


def test_a_kv_cache_larger_than_the_fastest_level_is_one_line_naming_the_level(tmp_path):
    from hwsim.cli import main
    text = (CONFIG_DIR / "sn40l-llama2-70b.yaml").read_text().replace("batch: 8", "batch: 160")
    cfg = tmp_path / "big.yaml"
    cfg.write_text(text)
    result = CliRunner().invoke(main, ["run", str(cfg), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "hardware.memory" in line and "'hbm'" in line and "GB" in line


# --------------------------------------------------------------------------- static power and area

def _space_point(macs: int, channels: int):
    from hwsim.config.loader import load_config
    from hwsim.pipeline import run_system
    cfg = load_config(CONFIG_DIR / "neupims.yaml",
                      [f"hardware.pim.macs_per_bank={macs}", f"hardware.memory.channels={channels}",
                       f"hardware.memory.capacity_gib={channels}"])
    return run_system(cfg.main, extrapolate_layers=True).metrics


def test_energy_and_area_move_with_channels_and_pim_macs_in_the_neupims_space():
    """configs/sweeps/neupims-space.yaml at batch 512: before static power and HBM stacks were
    modelled, energy per token tied to 12 digits across these points and doubling channels added
    2.7 mm² of PIM buffers. Now more channels add HBM stacks (area) and background power (energy), and more PIM
    MACs add logic area and leakage."""
    points = {(macs, ch): _space_point(macs, ch) for macs in (8, 32) for ch in (32, 64)}
    energies = sorted(m.energy_per_token_j for m in points.values())
    assert all(b / a - 1 > 1e-4 for a, b in zip(energies, energies[1:]))
    for macs in (8, 32):
        small, big = points[(macs, 32)], points[(macs, 64)]
        assert big.area_mm2 - small.area_mm2 >= 4 * 7.75 * 11.87 * (1 - 1e-9)   # four more HBM2 stacks
        static_w = lambda m: m.energy_breakdown_j["static"] / m.iteration_latency_s   # noqa: E731
        assert static_w(big) > static_w(small)                                 # more channels idling
    for ch in (32, 64):
        few, many = points[(8, ch)], points[(32, ch)]
        assert many.area_breakdown_mm2["pim_macs"] == pytest.approx(4 * few.area_breakdown_mm2["pim_macs"])
        assert many.area_mm2 > few.area_mm2


def test_static_energy_is_static_power_times_makespan_per_device():
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    r = evaluate(load_config(CONFIG_DIR / "gpt3-7b-npu.yaml")).main
    m = r.metrics
    device = r.system.hardware.device(("npu", "memory"))
    watts = device.static_power_w("fp16")
    assert set(watts) == {"npu", "memory"} and all(w > 0 for w in watts.values())
    assert m.energy_breakdown_j["static"] == pytest.approx(sum(watts.values()) * m.iteration_latency_s
                                                           * m.devices)


# --------------------------------------------------------------------------- adding hardware

class HardwiredSpec(BaseModel):
    """A test-only chip with its weights in metal: MAC lanes at a clock, nothing else."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    macs: int = Field(gt=0)
    freq_ghz: float = Field(gt=0)
    mac_pj: float = Field(gt=0)
    leakage_w: float = Field(ge=0)
    mm2_per_gb_of_weights: float = Field(gt=0)


@pytest.fixture
def hardwired():
    """Register a component kind and a mapper from this file, as a new hardware module would,
    and remove them afterwards."""
    from hwsim.hw.cost import OpCost
    from hwsim.hw.kernels.cases import KernelCase
    from hwsim.hw.registry import ComponentKind, op_cost, register_component, unregister_component
    from hwsim.mappers.common import link_resource, memory_resources, one_task_per_op
    from hwsim.mappers.placement import place_data
    from hwsim.mappers.registry import MAPPERS, register
    from hwsim.sim.schedule import Resource, Schedule
    from hwsim.workloads.ops import OpKind

    def cost(device, op, where):
        spec = device.spec("hardwired")
        assert where.weights is None                       # in metal: the mapper placed them nowhere
        kv = op.kv_read_bytes + op.kv_write_bytes
        parts = {"compute": op.flops / 2 * spec.mac_pj * 1e-12, "dram": where.kv.energy_j(kv)}
        parts = {k: v for k, v in parts.items() if v}
        return OpCost(compute_ns=op.flops / 2 / spec.macs / spec.freq_ghz,
                      bytes_by_level={where.kv.name: float(kv)}, energy_j=sum(parts.values()),
                      roofline_ns=max(op.flops / 2 / spec.macs / spec.freq_ghz,
                                      kv / where.kv.peak_bw_gbps),
                      engine="lanes", energy_by_component_j=parts)

    def gemm_case(datapath, device, op, ctx):
        if op.matmul is None:
            return None
        m, n, k = min(op.matmul.m, 8), min(op.matmul.n, 16), min(op.matmul.k, 32)

        def run(rng):
            a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
            return a @ b, a.astype(np.float64) @ b.astype(np.float64)
        return KernelCase(str(op.kind.value), "hardwired", "fp32 lanes GEMM", "fp32 x fp32 -> fp32",
                          "fp32", f"[{m}x{k}] @ [{k}x{n}]", run)

    def area(spec, device, dtype):
        graph_weights_gb = 13.5                            # llama2-7b in fp16 [test value]
        return {"hardwired_lanes": spec.macs * 1e-4, "hardwired_weights": graph_weights_gb * spec.mm2_per_gb_of_weights}

    register_component(ComponentKind(
        name="hardwired", spec=HardwiredSpec, role="compute", summary="test-only: weights in metal",
        op_costs={k.value: cost for k in OpKind if not k.is_collective}, area_mm2=area,
        static_power_w=lambda spec, device, dtype: spec.leakage_w, energy_buckets=("compute",),
        check_cases=gemm_case, check_unit=lambda datapath: "hardwired"))

    @register("hardwired_only", "test-only: every op on the hardwired lanes", needs=("hardwired", "memory"))
    def map_hardwired(graph, hw, options):
        device = hw.device(("hardwired", "memory"))
        placement = place_data(graph, device, weights_in_metal=True)
        schedule = Schedule(resources={})
        schedule.add_resource(Resource("hardwired", "compute", 1.0, 1.0, exclusive=True, unit="hardwired",
                                       peak_flops_per_ns=2.0 * device.spec("hardwired").macs
                                       * device.spec("hardwired").freq_ghz))
        levels = memory_resources(schedule, device)
        link = link_resource(hw.link)
        if link:
            schedule.add_resource(link)
        schedule.resident_bytes = dict(placement.resident_bytes)
        return one_task_per_op(graph, schedule,
                               lambda op: op_cost("hardwired", op.kind)(device, op, placement.levels_for(op)),
                               compute="hardwired", memory="hbm", unit="hardwired", link=hw.link,
                               level_resources=levels)
    yield
    unregister_component("hardwired")
    MAPPERS.pop("hardwired_only", None)


CONFIG = """
name: hardwired-llama
workload: {model: llama2-7b, phase: decode, batch: 4, requests: {distribution: fixed, context_len: 512}, dtype: fp16}
hardware:
  hardwired: {macs: 65536, freq_ghz: 1.0, mac_pj: 0.5, leakage_w: 3.0, mm2_per_gb_of_weights: 10.0}
  memory: hbm2-32ch
mapper: {name: hardwired_only}
"""


def test_a_component_registered_from_a_test_runs_end_to_end_with_area_energy_and_check(hardwired, tmp_path):
    from hwsim.cli import main
    cfg = tmp_path / "hardwired.yaml"
    cfg.write_text(CONFIG)
    out = CliRunner().invoke(main, ["run", str(cfg), "--out", str(tmp_path / "out"), "--json", "--check"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    m = doc["metrics"]
    assert m["area_breakdown_mm2"]["hardwired_weights"] == pytest.approx(135.0)
    assert m["area_breakdown_mm2"]["memory_hbm_stacks"] > 0
    assert m["energy_breakdown_j"]["compute"] > 0
    # static: the chip's 3 W of leakage plus the HBM's background power, over the makespan
    hbm_w = doc_hbm_background_w()
    assert m["energy_breakdown_j"]["static"] == pytest.approx((3.0 + hbm_w) * m["iteration_latency_s"])
    # weights in metal: the memory moves the KV cache (and spilled activations), no weight byte
    assert m["memory_levels"]["hbm"]["resident_bytes"] == pytest.approx(kv_bytes_llama2_7b())
    assert m["bytes"]["hbm"] < 13.5e9 * 0.1
    rows = doc["check_detail"]["rows"]
    assert any(r["unit"] == "hardwired" and r["op_kind"] == "matmul" and r["passed"] for r in rows)
    assert math.isfinite(m["throughput_tokens_per_s"])


def doc_hbm_background_w() -> float:
    from hwsim.config.loader import load_config_text
    hw = load_config_text((CONFIG_DIR / "gpt3-7b-npu.yaml").read_text(),
                          file=str(CONFIG_DIR / "gpt3-7b-npu.yaml")).hardware
    return hw.specs("memory")[0].background_power_w()


def kv_bytes_llama2_7b() -> float:
    # 32 layers x 2 (K, V) x 32 KV heads x 128 x 2 bytes x 4 requests x (512 + 1) tokens
    return 32 * 2 * 32 * 128 * 2 * 4 * 513


def test_npu_charges_each_operand_to_its_level_and_nothing_for_weights_in_metal():
    from hwsim.config.loader import load_config
    from hwsim.hw.npu import npu_op_cost
    from hwsim.workloads.transformer import build_transformer
    cfg = load_config(CONFIG_DIR / "sn40l-llama2-70b.yaml", ["workload.model.n_layers=1"])
    device = cfg.hardware.device(("npu", "memory"))
    hbm, ddr = device.level("hbm"), device.level("ddr")
    npu = device.spec("npu")
    op = next(o for o in build_transformer(cfg.workload).ops if o.weight_bytes and o.matmul is not None)
    same = npu_op_cost(npu, hbm, op)
    spilled = npu_op_cost(npu, hbm, op, weights_from=ddr)
    metal = npu_op_cost(npu, hbm, op, weights_from=None)
    assert spilled.bytes_by_level["ddr"] == op.weight_bytes
    assert spilled.bytes_by_level["hbm"] == same.bytes_by_level["hbm"] - op.weight_bytes
    assert "ddr" not in metal.bytes_by_level and metal.bytes_by_level["hbm"] == spilled.bytes_by_level["hbm"]
    # the roofline takes the slowest level: weights over DDR's 100 GB/s
    assert spilled.roofline_ns >= op.weight_bytes / ddr.peak_bw_gbps
    assert metal.energy_by_component_j.get("dram", 0.0) < same.energy_by_component_j["dram"]


def test_each_builtin_name_is_registered_by_the_module_the_registry_lists():
    """The registries import a built-in kind's (or mapper's) module only when its name is looked
    up, so their tables must say truly which module registers which name, and miss none."""
    import importlib

    from hwsim.hw.registry import BUILTIN_COMPONENT_MODULES, COMPONENTS
    from hwsim.mappers.registry import BUILTIN_MAPPER_MODULES, MAPPERS
    for table, registry, module_of in ((BUILTIN_COMPONENT_MODULES, COMPONENTS, lambda e: e.spec.__module__),
                                       (BUILTIN_MAPPER_MODULES, MAPPERS, lambda e: e.build.__module__)):
        for module in set(table.values()):
            importlib.import_module(module)
        registered = {name: entry for name, entry in dict.items(registry)}
        builtin = {name: entry for name, entry in registered.items() if module_of(entry).startswith("hwsim.")}
        assert set(builtin) <= set(table), f"registered but not listed: {set(builtin) - set(table)}"
        for name, module in table.items():
            assert name in registered, f"{module} does not register {name!r}"


def test_the_fixed_energy_buckets_are_those_the_builtin_kinds_charge_in_report_order():
    """`energy_buckets()` is fixed (a report lists the same buckets whichever kinds a run
    imported); it must equal what the built-in kinds register: compute kinds' buckets first,
    then memory, PIM and link kinds' (registration order within a role)."""
    from hwsim.hw.registry import BUILTIN_COMPONENT_MODULES, COMPONENTS, energy_buckets
    order = {"compute": 0, "memory": 1, "pim": 2, "link": 3}
    kinds = sorted((COMPONENTS[n] for n in BUILTIN_COMPONENT_MODULES), key=lambda k: order[k.role])
    assert energy_buckets() == tuple(dict.fromkeys(b for k in kinds for b in k.energy_buckets)) + ("static",)


def test_a_run_imports_only_the_kinds_and_mappers_its_config_names(tmp_path):
    """`hwsim run configs/neupims.yaml` (simulation, table and results folder) needs the NPU,
    GPU, memory, PIM and link kinds and three mappers; no wafer, MCU, flash or HNLPU module is
    imported, nor matplotlib or the network stack (issue 9: import only what a command needs)."""
    import subprocess
    import sys
    code = ("import sys; from hwsim.cli import main; "
            f"main(['run', {str(CONFIG_DIR / 'neupims.yaml')!r}, '--out', {str(tmp_path / 'r')!r}], "
            "standalone_mode=False); "
            "print(' '.join(sys.modules), file=sys.stderr)")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stderr.split())
    assert {"hwsim.hw.npu", "hwsim.hw.pim", "hwsim.mappers.neupims"} <= loaded
    assert not loaded & {"hwsim.hw.wafer", "hwsim.hw.mcu", "hwsim.hw.flash", "hwsim.hw.hnlpu",
                         "hwsim.mappers.wafer", "hwsim.mappers.mcu", "hwsim.mappers.tpi",
                         "matplotlib", "pandas", "urllib.request"}
