"""Microcontrollers (issue 16, items 1-2): the mcu component and its presets, the peak-SRAM plan
(layer by layer and MCUNetV2's patch stage), hard capacities (exit 2 naming the layer, the peak
and the capacity), and the patch-based int8 convolution kernel (exactly the whole-tensor one)."""
from __future__ import annotations

import numpy as np
import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR, PRESETS_DIR
from hwsim.errors import ConfigError
from hwsim.hw.kernels import conv, patch
from hwsim.hw.mcu import PEAK_MACS_PER_CYCLE, MCUSpec, op_macs, tinyengine_h743_macs_per_cycle
from hwsim.mappers.mcu import INPUT, PatchOptions, memory_plan, patch_stage
from hwsim.pipeline import evaluate
from hwsim.workloads.cnn import CNNBuilder, build_model
from hwsim.workloads.ops import OpKind
from conftest import assert_refused_in_one_line, hwsim_run

MCUNETV2 = CONFIG_DIR / "mcunetv2-mbv2.yaml"
TINYENGINE = CONFIG_DIR / "tinyengine-h743.yaml"
KB = 1024


@pytest.fixture(scope="module")
def mbv2():
    return build_model("mobilenet_v2", dtype="int8")


run = hwsim_run


# --------------------------------------------------------------------------- presets

@pytest.mark.parametrize("name, core, mhz, sram, flash", [
    ("stm32f412", "cortex-m4", 100, 256, 1024), ("stm32f746", "cortex-m7", 216, 320, 1024),
    ("stm32h743", "cortex-m7", 480, 512, 2048)])
def test_presets_carry_the_datasheet_figures(name, core, mhz, sram, flash):
    import yaml
    data = yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text())
    assert data.pop("component") == "mcu"
    spec = MCUSpec(**data)
    assert (spec.core, spec.freq_mhz, spec.sram_kib, spec.flash_kib) == (core, mhz, sram, flash)
    assert 0 < spec.macs_per_cycle <= PEAK_MACS_PER_CYCLE[core]


def test_the_cortex_m7_rate_is_the_named_calibration():
    import yaml
    h743 = yaml.safe_load((PRESETS_DIR / "stm32h743.yaml").read_text())
    assert h743["macs_per_cycle"] == pytest.approx(tinyengine_h743_macs_per_cycle(), abs=1e-4)


def test_a_rate_above_the_smlad_peak_is_refused():
    with pytest.raises(ValueError, match="exceeds"):
        MCUSpec(core="cortex-m7", freq_mhz=480, sram_kib=512, flash_kib=2048, macs_per_cycle=2.5,
                run_power_mw=1, die_area_mm2=1)


# --------------------------------------------------------------------------- the memory plan

def test_mobilenet_v2_layer_by_layer_peak_is_the_first_expansion_closed_form(mbv2):
    plan = memory_plan(mbv2)
    assert plan.peak_op == "block1.expand"
    assert plan.peak_bytes == 112 * 112 * (16 + 96)          # input + output of block1.expand
    # without TinyEngine's in-place depthwise, block1's stride-2 depthwise holds in + out
    off = memory_plan(mbv2, inplace_depthwise=False)
    assert off.peak_op == "block1.dw" and off.peak_bytes == 112 * 112 * 96 + 56 * 56 * 96


@pytest.mark.parametrize("model", ["mobilenet_v2", "mbv2-w0.35", "mcunet-in0", "resnet18"])
@pytest.mark.parametrize("inplace", [True, False])
def test_peak_is_at_least_every_layers_own_buffers(model, inplace):
    g = build_model(model, dtype="int8")
    plan = memory_plan(g, inplace_depthwise=inplace)
    for op in g.ops:
        own = op.act_in_bytes + op.act_out_bytes
        if inplace and op.kind == OpKind.DEPTHWISE_CONV:
            own = max(op.act_in_bytes, op.act_out_bytes)
        if op.kind == OpKind.ELEMENTWISE:
            own = op.act_in_bytes          # both inputs; the sum overwrites one of them
        if op.conv is not None and op.conv.kernel_h == 1 and any(
                g.op(s).kind == OpKind.ELEMENTWISE for s in g.successors(op.name)):
            own = op.act_in_bytes          # fused projection: accumulates into the residual
        assert plan.peak_bytes >= own, op.name
    steps = {s.op: s for s in plan.steps}
    assert max(s.live_bytes for s in plan.steps) == plan.peak_bytes
    assert all(s.live_bytes == pytest.approx(sum(s.buffers.values())) for s in steps.values())


def test_residual_inputs_stay_live_across_their_block(mbv2):
    steps = {s.op: s for s in memory_plan(mbv2).steps}
    # block2 (24 -> 24, stride 1) keeps its input (block1.project) live until block2.add
    for name in ("block2.expand", "block2.dw", "block2.project"):
        assert "block1.project" in steps[name].buffers, name
    assert "block1.project" not in steps["block3.expand"].buffers


def test_mobilenet_v2_patch_peak_closed_forms(mbv2):
    """4x4 patches: the later blocks decide; with the projection fused into the residual buffer
    block4's in-place depthwise holds 28x28x192 + the 28x28x32 residual + one channel; without,
    block4's projection holds its input, its output and the residual."""
    opt = PatchOptions(grid=4, split_after="block3.project")
    fused = memory_plan(mbv2, patch=opt)
    assert fused.peak_op == "block4.dw" and fused.peak_bytes == 28 * 28 * (192 + 32) + 28 * 28
    plain = memory_plan(mbv2, patch=opt, fuse_residual_add=False)
    assert plain.peak_op == "block4.project" and plain.peak_bytes == 28 * 28 * (192 + 32 + 32)


@pytest.mark.parametrize("grid", [2, 3, 4, 5, 7])
def test_patches_never_need_more_sram_than_whole_tensors(mbv2, grid):
    whole = memory_plan(mbv2)
    p = memory_plan(mbv2, patch=PatchOptions(grid=grid, split_after="block3.project"))
    assert p.peak_bytes <= whole.peak_bytes
    assert p.patch.peak_bytes >= p.patch.output_bytes        # the stage's output is held throughout


def test_stage_peak_falls_and_recompute_grows_with_the_patch_count(mbv2):
    stages = [patch_stage(mbv2, PatchOptions(grid=n, split_after="block3.project"), True)
              for n in range(1, 8)]
    assert stages[0].recompute_macs == 0                    # one patch: nothing overlaps
    recompute = [s.recompute_macs for s in stages]
    assert all(r >= 0 for r in recompute)
    assert all(b > a for a, b in zip(recompute, recompute[1:]))
    peaks = [s.peak_bytes for s in stages[1:]]
    assert all(b <= a for a, b in zip(peaks, peaks[1:]))
    assert all(s.macs == stages[0].macs for s in stages)


def test_patch_regions_tile_the_stage_output_exactly(mbv2):
    st = patch_stage(mbv2, PatchOptions(grid=4, split_after="block3.project"), True)
    covered = np.zeros((28, 28), dtype=int)
    for regions in st.regions:
        r = regions["block3.project"]
        covered[r.r0:r.r1, r.c0:r.c1] += 1
    assert (covered == 1).all()
    # interior patches read a halo beyond their share of the image (receptive field overlap)
    inputs = sorted(st.input_regions, key=lambda r: r.h * r.w)
    assert inputs[-1].h > 224 // 4 and inputs[-1].w > 224 // 4


def test_patch_stage_macs_equal_the_kernels_count():
    """The planner's halo arithmetic against the kernel's (written independently)."""
    layers, b = _chain(np.random.default_rng(0))
    g = CNNBuilder("chain", 1, "int8")
    x = g.input(29, 29, 3)
    for i, (w, s, p, grp) in enumerate(layers):
        x = g.conv(x, w.shape[3], w.shape[0], s, p, groups=grp, name=f"c{i}")
    graph = g.finish()
    for grid in (1, 2, 3, 4):
        st = patch_stage(graph, PatchOptions(grid=grid, split_after=f"c{len(layers) - 1}"), True)
        _, kernel_macs = patch.chain_patches(b, layers, grid)
        assert st.patch_macs == kernel_macs


def test_bad_split_and_grid_are_one_line_errors(mbv2):
    with pytest.raises(ConfigError, match="no op 'nope'"):
        memory_plan(mbv2, patch=PatchOptions(grid=2, split_after="nope"))
    with pytest.raises(ConfigError, match="feeds"):
        memory_plan(mbv2, patch=PatchOptions(grid=2, split_after="block2.project"))
    with pytest.raises(ConfigError, match="without a pixel"):
        memory_plan(mbv2, patch=PatchOptions(grid=29, split_after="block3.project"))
    with pytest.raises(ConfigError, match="cannot run per patch"):
        memory_plan(mbv2, patch=PatchOptions(grid=2, split_after="fc"))


# --------------------------------------------------------------------------- runs and capacities

@pytest.fixture(scope="module")
def tinyengine():
    return evaluate(load_config(TINYENGINE))


def test_capacities_hold_in_every_shipped_mcu_run(tinyengine):
    r = evaluate(load_config(MCUNETV2))
    for s in (r.main, tinyengine.main, *tinyengine.baselines.values()):
        spec = s.system.hardware.mcu
        assert s.schedule.resident_bytes["sram"] <= spec.sram_kib * KB
        assert s.schedule.resident_bytes["flash"] <= spec.flash_kib * KB
        assert s.schedule.resident_bytes["flash"] == s.graph.info.weight_bytes_per_device


def test_latency_is_macs_over_the_reached_rate(tinyengine):
    s = tinyengine.main
    spec = s.system.hardware.mcu
    macs = sum(op_macs(op) for op in s.graph.ops)
    vector = sum(op.flops for op in s.graph.ops if not op_macs(op))
    closed = (macs / spec.macs_per_cycle + vector / spec.vector_ops_per_cycle) / spec.freq_mhz * 1e-6
    assert s.metrics.iteration_latency_s == pytest.approx(closed, rel=1e-9)


def test_patches_cost_their_recompute_in_time():
    r = evaluate(load_config(MCUNETV2)).main
    plan = r.schedule.memory_plan
    spec = r.system.hardware.mcu
    done = sum(t.flops for t in r.schedule.tasks if "@patch" in t.name and t.unit == "mcu") / 2
    assert done >= plan.patch.patch_macs                     # every patch's MACs, halos included
    layer = evaluate(load_config(MCUNETV2, ["mapper.patch=null", "hardware.mcu.sram_kib=2048"])).main
    extra = r.metrics.iteration_latency_s - layer.metrics.iteration_latency_s
    # the residual adds inside the stage are recomputed on the overlaps too (vector elements)
    adds = {op.name: op.flops for op in r.graph.ops
            if op.kind == OpKind.ELEMENTWISE and op.name in plan.patch.ops}
    add_extra = sum(t.flops for t in r.schedule.tasks if t.op.split("@")[0] in adds) - sum(adds.values())
    assert add_extra > 0
    cycles = plan.patch.recompute_macs / spec.macs_per_cycle + add_extra / spec.vector_ops_per_cycle
    assert extra == pytest.approx(cycles / spec.freq_mhz * 1e-6, rel=1e-6)


@pytest.mark.parametrize("override, words", [
    (["mapper.patch=null"], ["sram", "block1.expand", "1372.0 kB", "512 kB", "hardware.mcu.sram_kib"]),
    (["hardware.mcu.flash_kib=2048"], ["flash", "3406.1 kB", "2048 kB", "hardware.mcu.flash_kib"]),
    (["mapper.patch.grid=2", "hardware.mcu.sram_kib=256"],
     ["sram", "block1.expand (patch stage)", "431.5 kB", "256 kB"]),
    (["workload.dtype=fp16"], ["int8", "workload.dtype"]),
    (["workload.batch=2"], ["one image", "workload.batch"]),
    (["hardware.mcu.macs_per_cycle=3"], ["exceeds", "macs_per_cycle"]),
])
def test_what_does_not_fit_exits_2_naming_the_layer_peak_and_capacity(override, words):
    assert_refused_in_one_line(MCUNETV2, override, words, "/tmp/hwsim-test-mcu")


# --------------------------------------------------------------------------- the kernel

def _chain(rng):
    """A MobileNetV2-like stem on a 29 x 29 image (odd, so patches split unevenly): conv 3x3 s2,
    depthwise 3x3, 1x1 projection, 1x1 expansion, depthwise 5x5 s2, 1x1 projection."""
    x = rng.integers(-128, 128, size=(29, 29, 3), dtype=np.int8)
    w = lambda *shape: rng.integers(-128, 128, size=shape, dtype=np.int8)  # noqa: E731
    layers = [(w(3, 3, 3, 8), 2, 1, 1), (w(3, 3, 1, 8), 1, 1, 8), (w(1, 1, 8, 4), 1, 0, 1),
              (w(1, 1, 4, 12), 1, 0, 1), (w(5, 5, 1, 12), 2, 2, 12), (w(1, 1, 12, 6), 1, 0, 1)]
    return layers, x


@pytest.mark.parametrize("grid", [1, 2, 3, 4, 5])
def test_patch_based_int8_conv_equals_whole_tensor_exactly(grid):
    layers, x = _chain(np.random.default_rng(grid))
    whole = patch.chain_whole(x, layers)
    patched, macs = patch.chain_patches(x, layers, grid)
    assert patched.dtype == np.int8 and np.array_equal(patched, whole)
    whole_macs = 0
    h = x.shape[0]
    for w, s, p, g in layers:
        h = patch.out_size(h, w.shape[0], s, p)
        whole_macs += h * h * w.shape[3] * w.shape[0] * w.shape[1] * w.shape[2]
    assert macs >= whole_macs and (macs == whole_macs) == (grid == 1)


def test_a_wrong_halo_breaks_the_equality():
    """The check can fail: patches that read no halo differ from the whole tensor."""
    layers, x = _chain(np.random.default_rng(7))
    h = x.shape[0] // 2
    halves = [patch.chain_whole(np.ascontiguousarray(x[:h]), layers[:1]),
              patch.chain_whole(np.ascontiguousarray(x[h:]), layers[:1])]
    assert not np.array_equal(np.concatenate(halves), patch.chain_whole(x, layers[:1]))


def test_the_int8_kernel_equals_the_float64_definition():
    layers, x = _chain(np.random.default_rng(3))
    for w, s, p, g in layers[:2]:
        ours = patch.conv_layer(x, w, s, p, g)
        ref = conv.conv2d_reference(x[None], w, s, p, g)[0]
        assert np.array_equal(ours, ref.astype(np.int64))
        x = patch.requantize(ours, 7)


def test_input_is_a_named_tensor_of_the_plan(mbv2):
    steps = memory_plan(mbv2).steps
    assert INPUT in steps[0].buffers and INPUT not in steps[1].buffers
