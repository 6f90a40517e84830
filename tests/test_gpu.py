"""The GPU model (issue 11): datasheet mode against public A100 data and against the H100/H200
measurements it never saw; profile mode against the same card's held-out decoder steps; the
serving-stack knobs; `hwsim calibrate gpu` without a GPU."""
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.hw.gpu import GPUCoster, GPUSpec, ServingStack, matmul_compute_ns
from hwsim.validate.gpu_fidelity import fidelity_rows, predictions, preset, step_us
from hwsim.hw.gpu_profile import PROFILE_FILES, load_profile, profile_from_dir, profiles_dir, read_csv
from hwsim.workloads.ops import MatMul, Op, OpKind


def gemm_op(m, n=12288, k=12288, dtype="fp16"):
    return Op(name="g", kind=OpKind.MATMUL, layer=0, dtype=dtype, flops=2.0 * m * n * k,
              weight_bytes=n * k * 2, act_in_bytes=m * k * 2, act_out_bytes=m * n * 2,
              matmul=MatMul(m, n, k))


def kernel_ms(gpu, op, stack=ServingStack()):
    coster = GPUCoster(gpu, stack)
    k = coster.kernel(op)
    return (max(k.compute_ns, k.hbm_bytes / coster.hbm_rate * 1e9) + k.launch_ns) / 1e6


def by_kind(card):
    return {(r["kind"], r["mode"]): r for r in fidelity_rows(card)}


# ---------------------------------------------------------------- datasheet mode
def test_held_out_a100_point():
    """LLMCompass measured fp16 M=1024, N=K=12288 at 1.20 ms on an A100 80 GB (matmul_A100.csv);
    no A100 constant comes from that file's GEMM rates (compute: MAMF)."""
    assert kernel_ms(preset("a100-80gb"), gemm_op(1024)) == pytest.approx(1.20, rel=0.10)


def test_memory_bound_a100_point():
    """The M=64 point of the same file (0.19 ms) is where bw_efficiency comes from."""
    assert kernel_ms(preset("a100-80gb"), gemm_op(64)) == pytest.approx(0.19, rel=0.05)


def test_gemm_rate_grows_with_m_and_stays_below_peak():
    gpu = preset("h200-sxm")
    rates = [2 * m * 4096 * 4096 / (kernel_ms(gpu, gemm_op(m, 4096, 4096, "bf16")) * 1e-3)
             for m in (1, 16, 128, 1024, 8192)]
    assert all(a <= b * 1.02 for a, b in zip(rates, rates[1:]))
    assert max(rates) <= gpu.peak("bf16") * gpu.compute_efficiency


def test_wave_quantization_makes_one_more_tile_cost_a_wave():
    gpu = preset("a100-80gb")
    full = matmul_compute_ns(gpu, "fp16", 128 * 108, 128, 4096)       # exactly one wave
    plus = matmul_compute_ns(gpu, "fp16", 128 * 108 + 1, 128, 4096)   # one tile more
    assert plus == pytest.approx(2 * full)


def test_split_k_fills_the_sms_for_a_skinny_gemm():
    """32 output tiles on 132 SMs: split 4 ways along K, a quarter of the unsplit time."""
    gpu = preset("h200-sxm")
    split = matmul_compute_ns(gpu, "bf16", 1, 4096, 4096)
    unsplit = 2.0 * 128 * 128 * 4096 / (gpu.peak("bf16") / gpu.sms) / gpu.compute_efficiency * 1e9
    assert split == pytest.approx(unsplit / 4)


def test_a_split_k_gemm_launches_its_reduction_kernel():
    """Datasheet mode: a GEMM split along K is two kernels (the GEMM and the reduction of its fp32
    partials, CUTLASS GemmSplitKParallel / cuBLAS splitKreduce_kernel), so in a CUDA graph it
    pays two kernel gaps; a GEMM whose tiles fill the SMs is one kernel."""
    from hwsim.hw.gpu import datasheet_kernel, kernels_of, split_k
    gpu, stack = preset("h200-sxm"), ServingStack()
    skinny, wide = gemm_op(1, 4096, 4096, "bf16"), gemm_op(1, 22016, 4096, "bf16")
    assert int(split_k(gpu, 1, 4096, 4096)[1]) == 4 and int(split_k(gpu, 1, 22016, 4096)[1]) == 1
    assert kernels_of(skinny, stack, gpu) == 2 and kernels_of(wide, stack, gpu) == 1
    assert kernels_of(skinny, stack) == 1          # profile mode: measured with its reduction
    assert datasheet_kernel(gpu, skinny, stack).launch_ns == pytest.approx(2 * gpu.graph_kernel_us * 1e3)
    assert datasheet_kernel(gpu, wide, stack).launch_ns == pytest.approx(gpu.graph_kernel_us * 1e3)


def test_a_fused_stack_folds_the_residual_add_into_the_norm():
    """vLLM's fused_add_rms_norm: the residual add before an RMSNorm launches no kernel of its
    own (its bytes still move); unfused, it is its own kernel. Before a LayerNorm (OPT, GPT-2:
    a plain add, then nn.LayerNorm) it is a kernel in either stack, as is any add that is not a
    residual."""
    from dataclasses import replace

    from hwsim.hw.gpu import datasheet_kernel, kernels_of
    gpu = preset("h200-sxm")
    add = Op(name="L0.residual1", kind=OpKind.ELEMENTWISE, layer=0, dtype="bf16", flops=4096.0,
             act_in_bytes=2 * 4096 * 2, act_out_bytes=4096 * 2, elements=4096, function="add",
             residual_into="rmsnorm")
    fused, unfused = ServingStack(), ServingStack(fused_elementwise=False)
    assert kernels_of(add, fused) == 0 and kernels_of(add, unfused) == 1
    k = datasheet_kernel(gpu, add, fused)
    assert k.launch_ns == 0 and k.hbm_bytes == datasheet_kernel(gpu, add, unfused).hbm_bytes
    assert load_profile("h200-sxm").kernel(gpu, add, fused).compute_ns == 0
    for kept in (replace(add, residual_into="layernorm"), replace(add, residual_into="")):
        assert kernels_of(kept, fused) == 1 and datasheet_kernel(gpu, kept, fused).launch_ns > 0
        assert load_profile("h200-sxm").kernel(gpu, kept, fused).compute_ns > 0


def test_the_builder_marks_residual_adds_with_the_norm_they_feed():
    """Every residual add of a decoder feeds the model's norm: LLaMA's RMSNorm, GPT-3's LayerNorm
    (the next layer's first norm, or the final one); no other op is marked."""
    import yaml

    from hwsim.configs import MODELS_DIR
    from hwsim.workloads.models import ModelSpec
    from hwsim.workloads.transformer import TransformerWorkload, build_transformer
    for model, norm in (("llama2-7b", "rmsnorm"), ("gpt3-7b", "layernorm")):
        spec = ModelSpec(**{**yaml.safe_load((MODELS_DIR / f"{model}.yaml").read_text()), "n_layers": 2})
        w = TransformerWorkload(model=spec, phase="decode", batch=2,
                                requests={"distribution": "fixed", "context_len": 64})
        ops = build_transformer(w).ops
        marked = {op.name for op in ops if op.residual_into}
        assert marked == {f"L{i}.residual{j}" for i in range(2) for j in (1, 2)}
        assert {op.residual_into for op in ops if op.residual_into} == {norm} == {spec.norm}


def test_profile_folded_add_holds_no_hbm_time():
    """Profile mode: the residual add folded into the fused add+RMSNorm takes no time of its own
    in a prefill whose activations spill L2 (the measured fused kernel already moved its bytes);
    its bytes still count for energy. Datasheet mode keeps them as HBM time."""
    import yaml
    from hwsim.config.loader import load_config_text
    from hwsim.pipeline import run_system

    def residual_us(gpu):
        text = yaml.safe_dump({"name": "x", "workload": {
            "model": "llama2-7b", "phase": "prefill", "batch": 1, "dtype": "bf16", "lm_head": False,
            "requests": {"distribution": "fixed", "context_len": 2048}},
            "hardware": {"gpu": gpu}, "mapper": {"name": "gpu"}})
        r = run_system(load_config_text(text).main, extrapolate_layers=False)
        tasks = [t for t in r.schedule.tasks if t.name.endswith("residual1")]
        assert tasks and all(t.bytes_by_level["hbm"] > 0 for t in tasks)
        return sum(r.trace.end_ns[t.id] - r.trace.start_ns[t.id] for t in tasks)

    assert residual_us({"preset": "h200-sxm", "profile": "h200-sxm"}) == 0
    assert residual_us({"preset": "h200-sxm"}) > 0


def test_kernel_structure_matches_the_traced_h200_step():
    """The per-kernel trace of the measured H200 decode steps (configs/profiles/h200-sxm/
    step_trace/, held out of every fit) shows the kernels the datasheet model launches: a
    split-K reduction after exactly the GEMMs split_k splits (o and down at batch 1), the
    split-KV FlashAttention kernel plus its combine where FA2's heuristic (2 blocks per SM)
    splits (batch 1 and 4 of 32 heads) and one kernel where it does not (batch 16 and up)."""
    import benchmarks.bench_gpu_step_trace as trace
    from hwsim.hw.gpu import flash_attention_ns, split_k
    from hwsim.workloads.ops import Attention
    gpu = preset("h200-sxm")
    measured = trace.steps()
    for (phase, batch, ctx), replays in measured.items():
        if phase != "decode":
            continue
        s = trace.summary(replays[0])
        layers = 32
        reduces = s["count"].get("gemm split-K reduce", 0) // layers
        model = sum(int(split_k(gpu, batch, n, k)[1]) > 1
                    for n, k in [(12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008)])
        if batch <= 16:       # larger batches: cuBLAS picks other tiles than the 128x128 modelled
            assert reduces == model, (batch, ctx, reduces, model)
        attn = Attention((1,) * batch, (ctx,) * batch, heads=32, kv_heads=32, head_dim=128)
        assert s["count"]["attention"] // layers == flash_attention_ns(gpu, "bf16", attn)[2], \
            (batch, ctx)


def test_decode_attention_is_compute_bound_on_padded_rows_at_large_batch():
    """FlashAttention-2 computes 128 query rows per block: with one real row per request the
    kernel does 128x the useful FLOPs, which exceed the KV stream once the batch fills the GPU."""
    from hwsim.hw.gpu import flash_attention_ns
    from hwsim.workloads.ops import Attention
    gpu = preset("h200-sxm")
    attn = Attention((1,) * 128, (4096,) * 128, heads=32, kv_heads=32, head_dim=128)
    compute_ns, kv_bytes, _ = flash_attention_ns(gpu, "bf16", attn)
    assert compute_ns > kv_bytes / gpu.sustained_bw * 1e9


# ---------------------------------------------------------------- serving stack
def test_cuda_graphs_and_fusion_only_ever_save_time():
    gpu = {"preset": "h100-sxm"}
    graph_fused = step_us(gpu, "decode", 1, 512, ServingStack())
    eager_fused = step_us(gpu, "decode", 1, 512, ServingStack(launch="eager"))
    graph_unfused = step_us(gpu, "decode", 1, 512, ServingStack(fused_elementwise=False))
    assert graph_fused < eager_fused and graph_fused < graph_unfused


def test_default_stack_is_todays_serving_stack_and_is_reported(tmp_path):
    """vLLM / SGLang defaults: CUDA graphs, fused norms and activations, one KV-cache write
    kernel, MoE experts as one grouped kernel per step (fused_moe)."""
    from hwsim.config.loader import load_config_text
    from hwsim.pipeline import evaluate
    from hwsim.report import format_table
    cfg = load_config_text("""
name: t
workload: {model: llama2-7b, phase: decode, batch: 1, dtype: bf16, lm_head: false,
           requests: {distribution: fixed, context_len: 512}}
hardware: {gpu: h100-sxm}
mapper: {name: gpu}
""")
    result = evaluate(cfg)
    assert result.to_json()["mapper_options"] == {"launch": "cuda_graph", "fused_elementwise": True,
                                                   "separate_kv_writes": False, "fused_moe": True}
    assert "gpu (cuda_graph, fused)" in format_table(result)
    # the example: 19.0 ms before; the weights alone take 3.9 ms at 3.35 TB/s
    assert 3.9e-3 < result.main.metrics.iteration_latency_s < 7e-3


# ---------------------------------------------------------------- profile mode
def test_profile_reproduces_its_own_measurements():
    prof = load_profile("h200-sxm")
    for row in read_csv(profiles_dir() / "h200-sxm" / "gemm.csv")[::7]:
        us = prof.gemm_us(row["dtype"], int(row["m"]), int(row["n"]), int(row["k"]))
        assert us == pytest.approx(float(row["us"]), rel=1e-9)


def test_profile_never_reads_the_decoder_steps(tmp_path):
    """Whole steps are the held-out test: a profile folder without them loads the same."""
    for f in PROFILE_FILES:
        shutil.copy(profiles_dir() / "h200-sxm" / f, tmp_path / f)
    assert "decoder_step.csv" not in PROFILE_FILES
    a, b = profile_from_dir(tmp_path), load_profile("h200-sxm")
    assert a.gemm_us("bf16", 300, 5000, 5000) == b.gemm_us("bf16", 300, 5000, 5000)


def _decode_attn(batch, ctx, heads=32):
    from hwsim.workloads.ops import Attention
    return Attention(query_tokens=(1,) * batch, context_lens=(ctx,) * batch, heads=heads,
                     kv_heads=heads, head_dim=128)


def test_profile_decode_attention_reproduces_its_grid_and_is_monotone():
    """Decode attention over (batch, context): the measured points exactly; more keys or more
    requests never take less time; past the longest context the time grows by the slope of the
    last two measured contexts (affine: the KV stream grows, the fixed cost stays)."""
    full = load_profile("h200-sxm")
    prof = full.alone()          # the kernel alone, as attention.csv measured it
    rows = [r for r in read_csv(profiles_dir() / "h200-sxm" / "attention.csv")
            if r["phase"] == "decode"]
    for r in rows:
        us = prof.attention_us(_decode_attn(int(r["batch"]), int(r["kv_len"])), 2)
        assert us == pytest.approx(float(r["us"]), rel=1e-9)
    for b in (1, 3, 16, 100, 128):        # in a step (in_context.csv's excess added) too
        ts = [full.attention_us(_decode_attn(b, L), 2) for L in (256, 512, 700, 3000, 8192, 20000)]
        assert all(x <= y for x, y in zip(ts, ts[1:])), (b, ts)
    for L in (300, 512, 3000, 8192):
        ts = [full.attention_us(_decode_attn(b, L), 2) for b in (1, 2, 4, 9, 16, 64, 128, 256)]
        assert all(x <= y for x, y in zip(ts, ts[1:])), (L, ts)
    for b in (1, 3, 16, 100, 128):
        ts = [prof.attention_us(_decode_attn(b, L), 2) for L in (256, 512, 700, 3000, 8192, 20000)]
        assert all(x <= y for x, y in zip(ts, ts[1:])), (b, ts)
    for L in (300, 512, 3000, 8192):
        ts = [prof.attention_us(_decode_attn(b, L), 2) for b in (1, 2, 4, 9, 16, 64, 128, 256)]
        assert all(x <= y for x, y in zip(ts, ts[1:])), (L, ts)
    b1 = {int(r["kv_len"]): float(r["us"]) for r in rows if r["batch"] == "1"}
    slope = (b1[8192] - b1[4096]) / 4096
    assert prof.attention_us(_decode_attn(1, 16384), 2) == pytest.approx(b1[8192] + slope * 8192)
    # below the smallest measured batch: that batch's time (the kernel's fixed cost)
    assert prof.attention_us(_decode_attn(1, 512, heads=8), 2) == pytest.approx(b1[512])


def _in_context_rows(kernel):
    """in_context.csv's rows of `kernel`, each with its excess over the kernel alone (0 where it
    is within the spread of its rounds: not resolved)."""
    from hwsim.hw.gpu_profile import IN_CONTEXT_FILE
    rows = [r for r in read_csv(profiles_dir() / "h200-sxm" / IN_CONTEXT_FILE) if r["kernel"] == kernel]
    for r in rows:
        ex = float(r["in_context_us"]) - float(r["alone_us"])
        r["excess"] = ex if abs(ex) > float(r["spread_us"]) else 0.0
    return rows


def test_the_profile_reader_loads_the_in_context_section(tmp_path):
    """in_context.csv is read where the profile folder has it; without it the profile is the
    kernels alone (every lookup as before the section existed)."""
    from hwsim.hw.gpu_profile import IN_CONTEXT_FILE
    prof = load_profile("h200-sxm")
    assert prof.in_context and len(prof.in_context) == len(
        read_csv(profiles_dir() / "h200-sxm" / IN_CONTEXT_FILE))
    assert IN_CONTEXT_FILE not in PROFILE_FILES          # optional: older profiles lack it
    for f in PROFILE_FILES:
        shutil.copy(profiles_dir() / "h200-sxm" / f, tmp_path / f)
    bare = profile_from_dir(tmp_path)
    assert bare.in_context == []
    el = 16 * 4096
    assert bare.elementwise_us(OpKind.NORM, el, True) == prof.alone().elementwise_us(OpKind.NORM, el, True)
    assert bare.elementwise_us(OpKind.NORM, el, True) < prof.elementwise_us(OpKind.NORM, el, True)


@pytest.mark.parametrize("kernel", ["add_rmsnorm", "rope", "kv_write", "silu_mul"])
def test_a_fused_kernel_costs_its_measured_excess_in_context(kernel):
    """At each measured point the fused kernel costs its time alone plus in_context_us - alone_us
    (the mean over the GEMMs it was measured after); the unfused kernels keep their time alone."""
    prof, alone = load_profile("h200-sxm"), load_profile("h200-sxm").alone()
    rows = _in_context_rows(kernel)
    assert rows
    for r in rows:
        el = int(r["tokens"]) * int(r["width"])
        same = [x["excess"] for x in rows if x["tokens"] == r["tokens"]]
        if kernel == "kv_write":
            got, base = prof.kv_write_us(el), alone.kv_write_us(el)
            assert prof.kv_write_us(el, separate=True) == alone.kv_write_us(el, separate=True)
        else:
            kind = OpKind.NORM if kernel == "add_rmsnorm" else OpKind.ELEMENTWISE
            fn = "rope" if kernel == "rope" else ""
            got, base = prof.elementwise_us(kind, el, True, fn), alone.elementwise_us(kind, el, True, fn)
            assert prof.elementwise_us(kind, el, False, fn) == alone.elementwise_us(kind, el, False, fn)
        assert got == pytest.approx(base + float(np.mean(same)), rel=1e-9)


def test_decode_attention_costs_its_measured_excess_in_context():
    prof, alone = load_profile("h200-sxm"), load_profile("h200-sxm").alone()
    rows = _in_context_rows("attention")
    assert len(rows) == 16
    for r in rows:
        attn = _decode_attn(int(r["tokens"]), int(r["kv_len"]))
        assert prof.attention_us(attn, 2) == pytest.approx(alone.attention_us(attn, 2) + r["excess"])
    # outside the measured grid the excess is held flat: past the largest batch and context
    big = _decode_attn(256, 8192)
    last = [r["excess"] for r in rows if r["tokens"] == "128" and r["kv_len"] == "2048"][0]
    assert prof.attention_us(big, 2) == pytest.approx(alone.attention_us(big, 2) + last)


@pytest.mark.parametrize("csv_file,beyond_spread,add_rmsnorm_us", [
    ("profile-2026-12-02/in_context.csv", 23, (0.7, 1.7)),   # 2026-12-03, card A
    ("in_context.csv", 17, (0.3, 1.9))])                     # 2026-12-04 harness 3, card B
def test_small_kernels_cost_more_right_after_their_gemm(csv_file, beyond_spread, add_rmsnorm_us):
    """What the section measured on two H200s (the hypothesis of issue 11's in-context run): at
    1-128 tokens every fused small kernel, after the GEMM that writes its input, costs more than
    the same kernel replayed back to back after itself: all 25 (kernel, GEMM, tokens) points on
    both cards, most of them by more than their rounds' spread (23 and 17 of 25), add+RMSNorm
    by 0.3-1.9 us."""
    rows = [r for r in read_csv(profiles_dir() / "h200-sxm" / csv_file)
            if r["kernel"] != "attention" and int(r["tokens"]) <= 128]
    assert len(rows) == 5 * 5
    excess = [(float(r["in_context_us"]) - float(r["alone_us"]), float(r["spread_us"]), r["kernel"])
              for r in rows]
    assert all(ex > 0 for ex, _, _ in excess)
    assert sum(ex > spread for ex, spread, _ in excess) == beyond_spread
    low, high = add_rmsnorm_us
    assert all(low < ex < high for ex, _, k in excess if k == "add_rmsnorm")


def test_a_profile_without_the_section_costs_kernels_alone():
    """The H100 profile predates in_context.csv: its fused decode step is costed from its
    kernels alone, the H200's from its kernels in context (longer)."""
    h100 = load_profile("h100-sxm")
    assert h100.in_context == []
    el = 16 * 8192
    assert h100.elementwise_us(OpKind.ELEMENTWISE, el, True, "rope") == \
        h100.alone().elementwise_us(OpKind.ELEMENTWISE, el, True, "rope")
    assert h100.attention_us(_decode_attn(1, 512), 2) == h100.alone().attention_us(_decode_attn(1, 512), 2)


def test_unknown_profile_is_named():
    with pytest.raises(ValueError, match="no GPU profile 'nope'"):
        load_profile("nope")


# ---------------------------------------------------------------- fidelity (issue 11 targets)
@pytest.mark.parametrize("card", ["h200-sxm", "h100-sxm"])
def test_datasheet_gemms_within_10_percent(card):
    assert by_kind(card)[("gemm", "datasheet")]["median_abs_err"] <= 0.10


@pytest.mark.parametrize("card", ["h200-sxm", "h100-sxm"])
@pytest.mark.parametrize("kind", ["gemm", "attention"])
def test_profile_within_5_percent(card, kind):
    """GEMMs and attention kernels leave-one-out."""
    assert by_kind(card)[(kind, "profile")]["median_abs_err"] <= 0.05


@pytest.mark.parametrize("card", ["h200-sxm", "h100-sxm"])
def test_profile_prefill_within_5_percent(card):
    """Whole prefills (held out) from the kernels measured alone."""
    assert by_kind(card)[("prefill", "profile")]["median_abs_err"] <= 0.05


def test_profile_rope_is_the_measured_rope_kernel():
    """Rotary embedding is costed from elementwise.csv's rope rows (a measured point comes back
    as measured), not from the SiLU-and-mul curve (26% apart per element at 4096 tokens)."""
    from hwsim.hw.gpu_profile import load_profile, profiles_dir, read_csv
    prof = load_profile("h200-sxm").alone()
    rows = [r for r in read_csv(profiles_dir() / "h200-sxm" / "elementwise.csv")
            if r["op"] == "rope" and r["variant"] == "fused"]
    assert rows
    for r in rows:
        el = int(r["tokens"]) * int(r["width"])
        assert prof.elementwise_us(OpKind.ELEMENTWISE, el, True, "rope") == \
            pytest.approx(float(r["us"]), rel=1e-9)
    el = 4096 * 8192
    assert prof.elementwise_us(OpKind.ELEMENTWISE, el, True, "rope") != \
        pytest.approx(prof.elementwise_us(OpKind.ELEMENTWISE, el, True, "silu"), rel=0.1)


def test_profile_kv_cache_write_is_the_measured_kernel():
    """The KV cache write is costed from elementwise.csv's kv_write rows: one kernel for K and V
    (fused) or, `separate`, the two copies (unfused rows; a measured point comes back as
    measured). A profile without kv_write rows (harness 1, the H100) takes the SiLU-and-mul
    curve once per kernel at the elements that kernel writes."""
    from hwsim.hw.gpu_profile import load_profile, profiles_dir, read_csv
    prof = load_profile("h200-sxm").alone()
    rows = [r for r in read_csv(profiles_dir() / "h200-sxm" / "elementwise.csv") if r["op"] == "kv_write"]
    assert {r["variant"] for r in rows} == {"fused", "unfused"}
    for r in rows:
        el = int(r["tokens"]) * int(r["width"])
        assert prof.kv_write_us(el, separate=r["variant"] == "unfused") == \
            pytest.approx(float(r["us"]), rel=1e-9)
    old = load_profile("h100-sxm")
    el = 16 * 8192
    silu = lambda n: old.elementwise_us(OpKind.ELEMENTWISE, n, True)   # noqa: E731
    assert old.kv_write_us(el) == pytest.approx(silu(el))
    assert old.kv_write_us(el, separate=True) == pytest.approx(2 * silu(el // 2))


def test_fidelity_runs_the_model_as_the_program_that_was_measured():
    """env.json's harness_version: the H100 profile (harness 1) wrote K and V with two kernels in
    every stack, the H200's (harness 3; 2 and 3 run the same program) only in the unfused one."""
    from hwsim.validate.gpu_fidelity import harness_version, measured_stack
    assert (harness_version("h100-sxm"), harness_version("h200-sxm")) == (1, 3)
    assert not measured_stack({"launch": "cuda_graph", "fused": "1"}, 3).separate_kv_writes
    fused, unfused = {"launch": "cuda_graph", "fused": "1"}, {"launch": "eager", "fused": "0"}
    assert measured_stack(fused, 1).separate_kv_writes and measured_stack(unfused, 1).separate_kv_writes
    assert not measured_stack(fused, 2).separate_kv_writes and measured_stack(unfused, 2).separate_kv_writes


def test_separate_kv_writes_launch_one_more_kernel_per_layer():
    """Hugging Face's cache update (one copy for K, one for V) against vLLM's reshape_and_cache
    (one kernel): in a CUDA graph the datasheet step grows by one kernel's time per layer: its
    launch gap and its memory latency chain (an L2 load of the K or V just written, one store)."""
    from hwsim.hw.gpu import kernels_of, memory_chain_ns
    from hwsim.workloads.ops import MatMul, Op
    qkv = Op(name="qkv", kind=OpKind.MATMUL, layer=0, dtype="bf16", flops=1.0, weight_bytes=1,
             act_in_bytes=1, act_out_bytes=1, kv_write_bytes=16384, matmul=MatMul(1, 12288, 4096))
    one, two = ServingStack(), ServingStack(separate_kv_writes=True)
    assert kernels_of(qkv, two) == kernels_of(qkv, one) + 1 == 3
    gpu = {"preset": "h200-sxm"}
    extra = step_us(gpu, "decode", 1, 512, two) - step_us(gpu, "decode", 1, 512, one)
    h200 = preset("h200-sxm")
    per_kernel_us = h200.graph_kernel_us + memory_chain_ns(h200, first_from_hbm=False) / 1e3
    assert extra == pytest.approx(32 * per_kernel_us, rel=0.05)


def test_profile_decode_attention_stays_within_one_kernel():
    """FA2 runs batch 4 x 32 heads as its split-KV kernel and batch 8 in one pass (256 blocks of
    128 rows, 2 waves on 132 SMs): profile mode takes batch 8 from the measured one-pass batch
    16 (512 blocks, 4 waves) scaled by the waves, never across the two kernels."""
    gpu = preset("h200-sxm")
    prof = load_profile("h200-sxm").alone()   # the kernel alone
    b16 = prof.attention_us(_decode_attn(16, 2048), 2, gpu)
    assert prof.attention_us(_decode_attn(8, 2048), 2, gpu) == pytest.approx(b16 * 2 / 4)
    assert prof.attention_us(_decode_attn(8, 2048), 2, gpu) > prof.attention_us(_decode_attn(8, 2048), 2)


def test_causal_flash_blocks_finish_unevenly():
    """Causal FlashAttention-2: query block j runs over (j + 1) x 128 keys, blocks go to SMs in
    grid order. Fewer blocks than SMs: the kernel takes its longest block (2 tiles of 64 vs a
    mean of 1.5 at 256 tokens x 32 heads: 4/3); batch 1 x 2048 tokens (512 blocks, 3.9 waves):
    27% over the wave model; many waves: under 1%; decode (all blocks alike) untouched."""
    from hwsim.hw.gpu import causal_imbalance
    gpu = preset("h200-sxm")
    assert causal_imbalance(gpu, (256,), (256,), 32) == pytest.approx(4 / 3)
    assert causal_imbalance(gpu, (2048,), (2048,), 32) == pytest.approx(86 / 68)
    assert 1.0 <= causal_imbalance(gpu, (2048,) * 8, (2048,) * 8, 32) < 1.01


@pytest.mark.parametrize("card,kind,mode,target", [
    ("h100-sxm", "decode_step", "datasheet", 0.10), ("h200-sxm", "decode_step", "datasheet", 0.10),
    ("h200-sxm", "decode_step", "profile", 0.05), ("h100-sxm", "decode_step", "profile", 0.05),
    ("h200-sxm", "decode_step_gpt", "profile", 0.05), ("h200-sxm", "prefill_gpt", "profile", 0.05),
    ("h200-sxm", "prefill", "profile", 0.05), ("h200-sxm", "prefill", "datasheet", 0.10),
    ("h100-sxm", "prefill", "datasheet", 0.10), ("h200-sxm", "prefill_gpt", "datasheet", 0.10)])
def test_decode_steps_within_their_targets(card, kind, mode, target):
    """Issue 11's targets for whole decode steps and prefills (held out of every fit). H200
    (harness 3: each pass replayed back to back, as a serving loop runs it): decode datasheet
    8.4%, profile 3.8%; prefill datasheet 9.1% (at the power-limited clock of a public figure,
    GPUSpec.clock_at_power_limit_mhz), profile 2.8%. The same targets for a second model family
    measured on the H200, a GPT-3-6.7B-shaped stack (decoder_step_gpt.csv: LayerNorm, GELU,
    biases, residual adds that no kernel fuses)."""
    assert by_kind(card)[(kind, mode)]["median_abs_err"] <= target


def test_the_gpt_steps_are_the_gpt_model_on_the_gpt_rows():
    """decoder_step_gpt.csv's rows are predicted with gpt3-7b (the stack the harness measured),
    every row in both modes; no other card has the file."""
    from hwsim.validate.gpu_fidelity import step_files
    rows = read_csv(profiles_dir() / "h200-sxm" / "decoder_step_gpt.csv")
    assert {r["model"] for r in rows} == {"gpt3-7b"} and len(rows) == 13
    preds = [p for p in predictions("h200-sxm") if p.kind.endswith("_gpt")]
    assert len(preds) == 2 * len(rows)
    assert step_files("h100-sxm") == ["decoder_step.csv"]
    one = next(r for r in rows if r["phase"] == "decode" and r["batch"] == "1" and r["ctx"] == "512")
    sheet = next(p for p in preds if p.kind == "decode_step_gpt" and p.mode == "datasheet" and p.label == "b=1 ctx=512")
    assert sheet.measured_us == float(one["us"])
    assert sheet.predicted_us == pytest.approx(step_us({"preset": "h200-sxm", "hbm_gib": 1024}, "decode",
                                                       1, 512, ServingStack(), "gpt3-7b"), rel=1e-12)


@pytest.mark.xfail(strict=True, reason="missed (issue 11): the GPT stack's batch-1 to -8 decode "
                   "steps are 10-16% faster in datasheet mode (LayerNorm and the FA2 split-KV "
                   "combine kernel cost more than datasheet figures give: KNOWN_MISSED)")
@pytest.mark.parametrize("card,kind,mode,target", [
    ("h200-sxm", "decode_step_gpt", "datasheet", 0.10)])
def test_missed_targets(card, kind, mode, target):
    assert by_kind(card)[(kind, mode)]["median_abs_err"] <= target


def test_datasheet_prefill_lies_between_the_boost_clock_and_the_sustained_card():
    """A prefill replayed first after an idle runs at the 1980 MHz boost clock; replayed back to
    back for 8-25 s the 700 W cap pulls the clock to ~1500 MHz and it is 10-18% slower
    (power_cap*/). Datasheet mode holds the pass at the limit with GEMMs charged the energy per
    FLOP of a card at its power-limited clock (GPUSpec.clock_at_power_limit_mhz, a public
    figure): its prefills of 512+ tokens fall between the two measurements, within 10% of the
    sustained ones (still short: datasheet energy per HBM byte is the DRAM's alone)."""
    preds = predictions("h200-sxm")
    boost = {p.label: p.measured_us for p in preds
             if p.kind == "prefill_boost_clock" and p.mode == "datasheet"}
    sustained = {p.label: p for p in preds if p.kind == "prefill_sustained" and p.mode == "datasheet"}
    assert set(boost) == set(sustained) == {f"b=1 ctx={n}" for n in (128, 256, 512, 1024, 2048)}
    for n in (512, 1024, 2048):
        p = sustained[f"b=1 ctx={n}"]
        assert boost[p.label] < p.predicted_us < p.measured_us, p
        assert abs(p.error) < 0.10, p
    for n in (256, 512, 1024, 2048):
        label = f"b=1 ctx={n}"
        assert sustained[label].measured_us > 1.1 * boost[label], label


def test_datasheet_gemm_rate_at_the_power_limit_matches_the_measured_card():
    """Held out of every datasheet constant: the profile card's sustained bf16 GEMM
    (power.csv: 8192^3 back to back for 7 s at 691 W, 1485 MHz) runs at 664 TFLOP/s. Datasheet
    mode's rate for a card held at its 700 W limit by tensor-core work, peak x MAMF efficiency
    x 1500 / 1830 MHz, is 651: within 5%. At the quoted-peak clock it would be 795 (+20%)."""
    sheet = preset("h200-sxm")
    gemm = {r["phase"]: r for r in read_csv(profiles_dir() / "h200-sxm" / "power.csv")}["gemm_bf16"]
    assert float(gemm["power_w"]) > 0.97 * sheet.tdp_w            # it ran at the limit
    rate = sheet.peak("bf16") * sheet.matmul_efficiency("bf16") * sheet.power_limited_clock_fraction
    assert rate == pytest.approx(float(gemm["flop_per_s"]), rel=0.05)
    assert sheet.peak("bf16") * sheet.matmul_efficiency("bf16") > 1.15 * float(gemm["flop_per_s"])
    # the energy a pass of such GEMMs is charged makes it draw exactly the limit at that rate
    assert sheet.idle_power_w + sheet.pj_per_flop("bf16") * 1e-12 * rate == pytest.approx(sheet.tdp_w)


def test_profile_mode_predicts_the_sustained_passes_at_the_power_cap():
    """Profile mode's measured energy (power.csv) with the engine holding the card at its 700 W
    limit (sim.trace.power_capped) predicts the passes the power probes replayed back to back on
    other H200s (held out: no probe time enters the profile): the prefills' and the decode
    steps' median within 5%, each within 10% (without the cap the prefills would be near the
    boost-clock times, 10-17% short of these). The profile's own card (harness 3, 2026-12-04) is
    not a probe card, so card-to-card spread (~2% on whole passes) is part of these errors:
    prefill 128 is +5.1%; with the previous profile's card (profile-2026-12-02/) the max was 3.5%."""
    preds = [p for p in predictions("h200-sxm") if p.mode == "profile"]
    prefills = [abs(p.error) for p in preds if p.kind == "prefill_sustained"]
    decodes = [abs(p.error) for p in preds if p.kind == "decode_step_sustained"]
    assert (len(prefills), len(decodes)) == (5, 7)
    for errors in (prefills, decodes):
        assert np.median(errors) < 0.05 and max(errors) < 0.10


def test_a_profile_of_one_h200_predicts_another_h200s_passes():
    """The same harness on a third card (other_card-2026-12-04/, not the profile's): profile
    mode, built from card B, predicts card C's fused CUDA-graph passes within 5% median per kind
    (decode 1.4%, prefill 4.2%, GPT 1.3% / 1.4%), each within 6%; datasheet mode, held at the
    power limit at the public clock figure, is within 10% of that card's prefills too (8.2%,
    8.5%; 13.5%, 17.1% at full clock)."""
    rows = by_kind("h200-sxm")
    for kind in ("decode_step", "prefill", "decode_step_gpt", "prefill_gpt"):
        profile = rows[(kind + "_other_card", "profile")]
        assert profile["median_abs_err"] < 0.05 and profile["max_abs_err"] < 0.06, profile
    for kind in ("prefill", "prefill_gpt"):
        assert rows[(kind + "_other_card", "datasheet")]["median_abs_err"] <= 0.10


def test_the_power_cap_changes_only_passes_that_reach_it():
    """A batch-1 decode step (476 W measured) is not slowed by the cap; a 2048-token prefill is,
    and its modelled board power is then the limit itself."""
    from hwsim.validate.gpu_fidelity import GRAPH, step_metrics
    gpu = preset("h200-sxm", "h200-sxm")
    mode = {"preset": "h200-sxm", "profile": "h200-sxm", "hbm_gib": 1024}
    decode = step_metrics(mode, "decode", 1, 512, GRAPH)
    prefill = step_metrics(mode, "prefill", 1, 2048, GRAPH)
    assert decode.energy_j / decode.iteration_latency_s < 0.95 * gpu.tdp_w
    assert prefill.energy_j / prefill.iteration_latency_s == pytest.approx(gpu.tdp_w, rel=1e-6)


@pytest.mark.parametrize("card", ["h200-sxm", "h100-sxm"])
def test_fidelity_stays_within_the_bands_it_reached(card):
    """Guards against regressions: the errors reported in issue 11, with their ceilings."""
    rows = by_kind(card)
    bands = {("decode_step", "datasheet"): 0.15, ("prefill", "datasheet"): 0.25,
             ("decode_step", "profile"): 0.10, ("attention", "datasheet"): 0.15,
             ("attention", "profile"): 0.10}
    for key, band in bands.items():
        assert rows[key]["median_abs_err"] <= band, (card, key, rows[key])


@pytest.mark.parametrize("first,second", [
    ("h200-sxm", "h200-sxm/gated-run1-2026-12-04"),                  # harness 3, one card
    ("h200-sxm/profile-2026-12-02", "h200-sxm/run2"),                # harness 2, another card
    ("h100-sxm", "h100-sxm/run2")])
def test_two_runs_of_the_calibration_agree(first, second):
    """The measurements are reproducible well inside the 5% target: two runs of the same
    harness on the same card, their CUDA-graph whole passes."""
    key = lambda r: (r["phase"], r["launch"], r["fused"], r["batch"], r["ctx"])   # noqa: E731
    a = {key(r): float(r["us"]) for r in read_csv(profiles_dir() / first / "decoder_step.csv")
         if r["launch"] == "cuda_graph"}
    b = {key(r): float(r["us"]) for r in read_csv(profiles_dir() / second / "decoder_step.csv")}
    diff = [abs(a[k] / b[k] - 1) for k in a]
    assert len(diff) >= 20 and np.median(diff) < 0.03


# ---------------------------------------------------------------- hwsim calibrate gpu
def test_calibrate_without_torch_or_gpu_exits_2_with_one_line(monkeypatch, tmp_path):
    from hwsim.calibrate import gpu_bench
    from hwsim.cli import main
    monkeypatch.setattr(gpu_bench, "availability_problem", lambda: "PyTorch is not installed")
    result = CliRunner().invoke(main, ["calibrate", "gpu", "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines == ["error: hwsim calibrate gpu: PyTorch is not installed"]


def test_the_real_absence_of_torch_is_detected():
    pytest.importorskip("click")
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed here")
    except ImportError:
        from hwsim.calibrate.gpu_bench import availability_problem
        assert "PyTorch is not installed" in availability_problem()


def test_the_power_sampler_reads_nvidia_smi_and_takes_a_phase_median(monkeypatch, tmp_path):
    """The calibration's power section on a CPU: a stand-in `nvidia-smi` prints 'watts, MHz'
    every 20 ms (with one line that is not a sample); the sampler keeps the samples stamped
    inside a phase and returns their medians and count, and refuses a phase with too few."""
    import os
    import time
    from hwsim.calibrate.gpu_bench import PowerSampler
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'N/A, N/A'\nwhile true; do echo '500.5, 1980'; sleep 0.02; done\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    sampler = PowerSampler()
    try:
        t0 = time.time()
        time.sleep(0.5)
        watts, mhz, n = sampler.median(t0, time.time())
        assert (watts, mhz) == (500.5, 1980.0) and 5 <= n <= 30
        with pytest.raises(RuntimeError, match="power samples"):
            sampler.median(t0, t0 + 0.01)
    finally:
        sampler.stop()


def _fake_clocks(gpu_bench, readings):
    """A Clocks whose NVML reads return `readings` (SM MHz, reason bits) in turn, the last one
    for ever after."""
    clocks = gpu_bench.Clocks(wait_budget_s=1.0, read_nvml=False)
    clocks.available = True
    queue = list(readings)
    clocks.read = lambda: queue.pop(0) if len(queue) > 1 else queue[0]
    return clocks


def test_a_kernel_row_waits_until_the_card_leaves_its_power_cap(monkeypatch, tmp_path):
    """Harness 3 on a CPU with a stand-in NVML: while the SW power cap (0x4) is active the row
    waits (GPU idle, 0x1, is no slowdown); the row then records the median SM clock of its
    replays and 1 if any replay was slowed; a table is written with the two columns."""
    from hwsim.calibrate import gpu_bench
    clocks = _fake_clocks(gpu_bench, [(1500, 0x4), (1500, 0x4), (1980, 0x1)])
    clocks.wait_unslowed(max_s=1.0)
    assert clocks.waits == 1 and clocks.waited_s > 0.0
    clocks.start_row()
    clocks.read = iter([(1980, 0), (1980, 0), (1755, 0x4)]).__next__
    for _ in range(3):
        clocks.sample()
    assert clocks.row_state() == (1980, 1)
    monkeypatch.setattr(gpu_bench, "CLOCKS", clocks)
    table = gpu_bench.Table(tmp_path / "t.csv", ["what", "us"], clocked=True)
    table.row("x", 1.5)
    assert (tmp_path / "t.csv").read_text().splitlines() == ["what,us,sm_mhz,slowed", "x,1.5,1980,1"]
    clocks.start_row()                      # a row that took no reading reads the state now,
    clocks.read = lambda: (1830, 0x4)       # so a profile never holds an empty clock cell
    assert clocks.row_state() == (1830, 1)


def test_without_nvml_rows_carry_no_clock_state_and_never_wait(tmp_path):
    """This machine has no NVIDIA driver: Clocks is unavailable, a clocked table has no clock
    columns, and a row does not wait."""
    from hwsim.calibrate import gpu_bench
    clocks = gpu_bench.Clocks()
    assert not clocks.available
    clocks.wait_unslowed()
    clocks.sample()
    assert clocks.waits == 0 and clocks.row_state() == ("", "")
    table = gpu_bench.Table(tmp_path / "t.csv", ["what", "us"], clocked=True)
    table.row("x", 1.5)
    assert (tmp_path / "t.csv").read_text().splitlines() == ["what,us", "x,1.5"]


def test_the_profile_rows_record_the_state_they_were_timed_in():
    """The committed H200 profile (harness 3): no elementwise or copy row was slowed and most
    kernel rows ran at the 1980 MHz boost clock; whole passes that draw the 700 W limit ran
    slowed and slower than their cold replay (prefills of 512+ tokens: >= 10% and <= 1600 MHz),
    batch-1 decode steps did not (1980 MHz, within 5% of cold)."""
    folder = profiles_dir() / "h200-sxm"
    for name in ("elementwise.csv", "copy.csv"):
        assert all(r["slowed"] == "0" for r in read_csv(folder / name))
    gemm = read_csv(folder / "gemm.csv")
    assert sum(float(r["sm_mhz"]) >= 1980 for r in gemm) > 0.6 * len(gemm)
    steps = [r for r in read_csv(folder / "decoder_step.csv") if r["launch"] == "cuda_graph"]
    for r in steps:
        ratio = float(r["us"]) / float(r["cold_us"])
        if r["phase"] == "prefill" and int(r["ctx"]) >= 512:
            assert r["slowed"] == "1" and float(r["sm_mhz"]) <= 1600 and ratio >= 1.10, r
        if r["phase"] == "decode" and r["batch"] == "1":
            assert r["slowed"] == "0" and float(r["sm_mhz"]) == 1980 and abs(ratio - 1) < 0.05, r


# ---------------------------------------------------------------- memory latency chain, FA2 splits
def _norm_op(rows):
    return Op(name="L0.norm1", kind=OpKind.NORM, layer=0, dtype="bf16", flops=4.0 * rows * 4096,
              weight_bytes=4096 * 2, act_in_bytes=rows * 4096 * 2, act_out_bytes=rows * 4096 * 2,
              elements=rows * 4096, function="rmsnorm")


def _lone_ns(gpu, k):
    """A kernel alone on the GPU: its launch gap and latency chain, then the longer of its SM
    time and its bytes at the sustained HBM rate."""
    return k.launch_ns + k.serial_ns + max(k.compute_ns, k.hbm_bytes / gpu.sustained_bw * 1e9)


def test_a_kernel_pays_its_memory_chain_on_top_of_its_bytes():
    """memory_chain_ns: one HBM load (the norm weight) then one store at L2 latency: H100 SXM
    700 + 291 cycles at 1.98 GHz. The chain adds to the transfer (latency + bytes / bandwidth):
    it is most of a one-token norm, and a small part of a 64k-token one (512 MB)."""
    from hwsim.hw.gpu import datasheet_kernel, memory_chain_ns
    gpu = preset("h100-sxm")
    chain = memory_chain_ns(gpu, first_from_hbm=True)
    assert chain == pytest.approx((700 + 291) / 1.98, rel=0.01)
    assert memory_chain_ns(gpu, first_from_hbm=False, dependent=2) == pytest.approx(3 * 291 / 1.98, rel=0.01)
    stack = ServingStack()
    for rows in (1, 65536):
        k = datasheet_kernel(gpu, _norm_op(rows), stack)
        transfer = k.hbm_bytes / gpu.sustained_bw * 1e9
        assert k.serial_ns == pytest.approx(chain)
        assert _lone_ns(gpu, k) == pytest.approx(gpu.graph_kernel_us * 1e3 + chain + transfer)
    tiny = datasheet_kernel(gpu, _norm_op(1), stack)
    assert tiny.serial_ns > 10 * tiny.hbm_bytes / gpu.sustained_bw * 1e9
    big = datasheet_kernel(gpu, _norm_op(65536), stack)
    assert big.hbm_bytes / gpu.sustained_bw * 1e9 > 100 * chain
    # a GPU whose preset gives no latencies has no chain
    bare = gpu.model_copy(update={"dram_latency_ns": None, "l2_latency_ns": None})
    assert memory_chain_ns(bare, True) == 0 and datasheet_kernel(bare, _norm_op(1), stack).serial_ns == 0
    # eager: the CPU's issue time hides the chain
    eager = datasheet_kernel(gpu, _norm_op(1), ServingStack(launch="eager"))
    assert eager.compute_ns == pytest.approx(gpu.eager_ns(OpKind.NORM)) and eager.serial_ns == 0


def test_a_grouped_kernel_pays_one_latency_chain_not_one_per_op():
    """Eight tiny vector ops run as one grouped kernel (fused MoE) share one memory latency
    chain: together they pay it once, where launched apart each would pay it."""
    from hwsim.hw.gpu import datasheet_kernel, grouped_vector_kernels, vector_chain_ns
    gpu, stack = preset("h100-sxm"), ServingStack()
    ops = [_norm_op(1)] * 8
    apart = [datasheet_kernel(gpu, op, stack) for op in ops]
    grouped = grouped_vector_kernels(gpu, ops, apart, stack)
    chain = vector_chain_ns(gpu, ops[0], stack)
    assert sum(k.serial_ns for k in apart) == pytest.approx(8 * chain)
    assert sum(k.serial_ns for k in grouped) == pytest.approx(chain)
    assert [k.compute_ns for k in grouped] == [k.compute_ns for k in apart]
    assert grouped_vector_kernels(gpu, ops, apart, ServingStack(launch="eager")) == apart


def test_split_k_reduction_and_kv_write_pay_their_chains_after_the_gemm():
    """A skinny GEMM split along K launches a reduction kernel, and a QKV projection a KV-cache
    write: each after the GEMM, each an L2 load and a store (serial, not overlapped), on top of
    the GEMM's own chain (its first HBM load, its store)."""
    from hwsim.hw.gpu import datasheet_kernel, memory_chain_ns
    gpu = preset("h200-sxm")
    # N = 4096: 32 output tiles on 132 SMs, split 4 ways along K; it also writes KV
    qkv = Op(name="qkv", kind=OpKind.MATMUL, layer=0, dtype="bf16", flops=2.0 * 4096 * 4096,
             weight_bytes=4096 * 4096 * 2, act_in_bytes=8192, act_out_bytes=8192,
             kv_write_bytes=16384, matmul=MatMul(1, 4096, 4096))
    own = memory_chain_ns(gpu, True)
    k = datasheet_kernel(gpu, qkv, ServingStack())
    assert k.serial_ns == pytest.approx(own + 2 * memory_chain_ns(gpu, False))
    assert datasheet_kernel(gpu, qkv, ServingStack(separate_kv_writes=True)).serial_ns == \
        pytest.approx(own + 3 * memory_chain_ns(gpu, False))
    wide = gemm_op(4096, 4096, 4096, "bf16")           # 1024 tiles: no split, no KV write
    assert datasheet_kernel(gpu, wide, ServingStack()).serial_ns == pytest.approx(own)


def _mha_decode(batch, ctx, heads=32, head_dim=128):
    from hwsim.workloads.ops import Attention
    return Attention(query_tokens=(1,) * batch, context_lens=(ctx,) * batch, heads=heads,
                     kv_heads=heads, head_dim=head_dim)


def test_fa2_num_splits_is_flash_api_heuristic():
    """num_splits_heuristic (FlashAttention-2 csrc/flash_attn/flash_api.cpp) by hand: LLaMA-2-7B
    decode at batch 1 on 132 SMs (264 slots, 32 blocks): ctx 512 = 4 key blocks of 128, eligible
    splits 1, 2, 4 with efficiencies 0.12, 0.24, 0.48: 4; ctx 2048 = 16 key blocks, 8 splits fill
    256 of 264 slots (0.97, the best): 8; ctx 128 = one key block: no split, one kernel; batch 8
    (256 blocks >= 0.8 x 264): no split. The source's own example (48 blocks, 108 slots): 2 splits
    (0.89) rather than 3 (0.67)."""
    from hwsim.hw.gpu import fa2_num_splits, flash_attention_ns
    gpu = preset("h200-sxm")
    assert fa2_num_splits(gpu, _mha_decode(1, 512)) == 4
    assert fa2_num_splits(gpu, _mha_decode(1, 2048)) == 8
    assert fa2_num_splits(gpu, _mha_decode(1, 128)) == 1
    assert fa2_num_splits(gpu, _mha_decode(8, 2048)) == 1
    assert fa2_num_splits(gpu.model_copy(update={"sms": 54}), _mha_decode(48, 8192, heads=1)) == 2
    assert flash_attention_ns(gpu, "bf16", _mha_decode(1, 512))[2] == 2
    assert flash_attention_ns(gpu, "bf16", _mha_decode(1, 128))[2] == 1


def test_split_kv_decode_pays_two_kernels_and_the_combine_chain():
    """Split-KV decode runs flash_fwd_splitkv_kernel then flash_fwd_splitkv_combine_kernel: two
    launch gaps, the split kernel's own chain (first K/V load from HBM, store) and after it the
    combine's (LSE load, partial-output load, store: three L2 accesses); one pass (batch 8) pays
    one gap and its own chain only."""
    from hwsim.hw.gpu import datasheet_flash, memory_chain_ns
    gpu = preset("h200-sxm")
    split = datasheet_flash(gpu, _mha_decode(1, 512), "bf16", ServingStack())
    assert split.launch_ns == pytest.approx(2 * gpu.graph_kernel_us * 1e3)
    own = memory_chain_ns(gpu, True)
    assert split.serial_ns == pytest.approx(own + memory_chain_ns(gpu, False, 2))
    one = datasheet_flash(gpu, _mha_decode(8, 2048), "bf16", ServingStack())
    assert one.launch_ns == pytest.approx(gpu.graph_kernel_us * 1e3)
    assert one.serial_ns == pytest.approx(own)


def test_causal_prefill_computes_whole_diagonal_tiles():
    """A causal FlashAttention-2 block computes every key tile up to its last row, the diagonal
    one masked: 128 tokens (one 128-row block) compute 128 keys per row, twice the nominal
    64.5; 512 tokens (blocks of 128, 256, 384, 512 keys) 320, (L + 128) / L times nominal. At
    the figure's own lengths the time is unchanged (its causal rate is over nominal FLOPs), so
    only the short prompts below 512 cost more than nominal FLOPs at the flat rate."""
    from hwsim.hw.gpu import (FA2_CAUSAL_OF_PLATEAU, causal_block_keys, causal_imbalance,
                              flash_attention_ns)
    from hwsim.workloads.ops import Attention
    gpu = preset("h200-sxm")
    assert causal_block_keys(gpu, 128, 128) == 128
    assert causal_block_keys(gpu, 512, 512) == 128 + 256 + 384 + 512
    assert causal_block_keys(gpu, 100, 1124) == 18 * 64   # a chunk after 1024 keys: 1124 keys
    for seq, shape in ((128, FA2_CAUSAL_OF_PLATEAU[0]), (512, FA2_CAUSAL_OF_PLATEAU[0]),
                       (2048, FA2_CAUSAL_OF_PLATEAU[2])):
        attn = Attention(query_tokens=(seq,), context_lens=(seq,), heads=32, kv_heads=32, head_dim=128)
        nominal = 4.0 * 32 * 128 * seq * (seq + 1) / 2
        blocks = -(-seq // 128) * 32
        fill = blocks / (-(-blocks // gpu.sms) * gpu.sms)
        rate = gpu.peak("bf16") * gpu.flash_attention_efficiency * shape * fill
        expect = nominal / rate * causal_imbalance(gpu, (seq,), (seq,), 32) * 1e9
        if seq == 128:
            expect *= (128 * 128) / (128 * 64.5) / 1.25   # twice the nominal keys; flat rate of 512
        assert flash_attention_ns(gpu, "bf16", attn)[0] == pytest.approx(expect, rel=0.01)


def test_decode_attention_runs_whole_key_tiles():
    """FlashAttention-2 loops over whole key tiles and masks the tail: 512 cached keys plus the
    new one cost 9 tiles of 64 in the one-pass kernel (batch 128) and 5 tiles of 128 in the
    split-KV kernel (batch 1); a context that fills its tiles is untouched."""
    from hwsim.hw.gpu import decode_key_tile, decode_keys
    from hwsim.workloads.ops import Attention
    gpu = preset("h200-sxm")
    many = Attention(query_tokens=(1,) * 128, context_lens=(513,) * 128, heads=32, kv_heads=32, head_dim=128)
    one = Attention(query_tokens=(1,), context_lens=(513,), heads=32, kv_heads=32, head_dim=128)
    assert (decode_key_tile(gpu, many), decode_key_tile(gpu, one)) == (64, 128)
    assert decode_keys(gpu, many, many.context_array).tolist() == [576] * 128
    assert decode_keys(gpu, one, one.context_array).tolist() == [640]
    assert decode_keys(gpu, many, np.array([512])).tolist() == [512]


# ---------------------------------------------------------------- every GPU preset
def _gpu_presets():
    import yaml

    from hwsim.configs import PRESETS_DIR
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")
                  if yaml.safe_load(p.read_text()).get("component") == "gpu")


def test_the_datasheet_presets_include_the_b200():
    """Issue 11 item 3: presets from datasheets for A100 40/80 GB, H100 SXM, H200 SXM and the
    B200 (its datasheet figures are public)."""
    assert {"a100-40gb", "a100-80gb", "h100-sxm", "h200-sxm", "b200-sxm"} <= set(_gpu_presets())


@pytest.mark.parametrize("name", _gpu_presets())
def test_every_gpu_preset_stays_under_its_roofline(name):
    """A lone GEMM on any preset takes at least its FLOPs at the dense peak and its bytes at the
    datasheet bandwidth, from one row (a decode GEMV) to 4096 rows."""
    gpu = preset(name)
    coster = GPUCoster(gpu, ServingStack())
    for m in (1, 16, 256, 4096):
        op = gemm_op(m, 4096, 4096, dtype="bf16" if "bf16" in gpu.peak_tflops else "fp16")
        k = coster.kernel(op)
        body_ns = k.serial_ns + max(k.compute_ns, k.hbm_bytes / coster.hbm_rate * 1e9)
        assert body_ns >= op.flops / gpu.peak(op.dtype) * 1e9
        assert body_ns >= (op.weight_bytes + op.act_in_bytes + op.act_out_bytes) / (gpu.hbm_bw_gbps * 1e9) * 1e9 * 0.999


def test_a_b200_decode_gemv_beats_an_h200_by_its_bandwidth():
    """A batch-1 GEMV streams its weights: B200 over H200 is their sustained-bandwidth ratio
    (7,672 / 4,800 GB/s at the same streaming fraction), less the fixed memory latency chain."""
    op = gemm_op(1, 12288, 4096, dtype="bf16")
    h200, b200 = preset("h200-sxm"), preset("b200-sxm")
    t = {}
    for gpu in (h200, b200):
        coster = GPUCoster(gpu, ServingStack())
        k = coster.kernel(op)
        t[gpu.name] = max(k.compute_ns, k.hbm_bytes / coster.hbm_rate * 1e9)
    assert t["h200-sxm"] / t["b200-sxm"] == pytest.approx(7672 / 4800, rel=0.02)


def test_published_gemm_rows_are_kernel_times_of_the_datasheet_preset():
    """The B200 rows someone else measured (configs/published/gpu_gemm/) are compared with the
    kernel's own duration (a profiler's time: no launch gap), and a large square GEMM is
    compute-bound there: the model's time is its FLOPs at the preset's achievable rate."""
    from hwsim.validate.gpu_fidelity import published_gemm_predictions
    preds = published_gemm_predictions("pytorch-ao-2427")
    assert len(preds) == 7 and all(p.kind == "gemm" and p.mode == "datasheet" for p in preds)
    big = next(p for p in preds if p.label == "bf16 m=8192 n=8192 k=8192")
    gpu = preset("b200-sxm")
    rate = gpu.peak("bf16") * gpu.compute_efficiency
    assert big.predicted_us == pytest.approx(2 * 8192 ** 3 / rate * 1e6, rel=0.02)
    assert big.measured_us == 774.0


def test_profile_costs_layernorm_and_gelu_with_their_own_kernels():
    """GPT-shaped models' LayerNorm and GELU take the rows measured for them (PyTorch's
    layer_norm kernel; GELU fused or as Hugging Face's eight kernels), reproducing each measured
    point; a profile without such rows (the H100's) falls back to the RMSNorm and SiLU-and-mul
    kernels as before."""
    h200, h100 = load_profile("h200-sxm"), load_profile("h100-sxm")
    for fused in (True, False):
        assert h200.measured_kernel(OpKind.NORM, "layernorm", fused) == "layernorm"
        assert h200.measured_kernel(OpKind.ELEMENTWISE, "gelu", fused) == "gelu"
        assert h100.measured_kernel(OpKind.NORM, "layernorm", fused) == ("add_rmsnorm" if fused else "rmsnorm")
        assert h100.measured_kernel(OpKind.ELEMENTWISE, "gelu", fused) == "silu_mul"
    rows = [r for r in read_csv(profiles_dir() / "h200-sxm" / "elementwise.csv")
            if r["op"] in ("layernorm", "gelu")]
    assert len(rows) == 32
    for r in rows:
        kind = OpKind.NORM if r["op"] == "layernorm" else OpKind.ELEMENTWISE
        us = h200.elementwise_us(kind, int(r["tokens"]) * int(r["width"]), r["variant"] == "fused", r["op"])
        assert us == pytest.approx(float(r["us"]), rel=1e-9)


def test_unfused_kernel_counts_are_what_the_profiler_counted():
    """UNFUSED_KERNELS (read from Hugging Face's code) against the kernels an H200's profiler
    counted for the unfused LayerNorm and GELU rows of the calibration."""
    from hwsim.hw.gpu import UNFUSED_KERNELS
    counted = {r["op"]: int(r["kernels"]) for r in read_csv(profiles_dir() / "h200-sxm" / "elementwise.csv")
               if r["variant"] == "unfused" and r["op"] in ("layernorm", "gelu")}
    assert counted == {"layernorm": UNFUSED_KERNELS["layernorm"], "gelu": UNFUSED_KERNELS["gelu"]}


def test_measured_step_energy_is_the_probes_power_times_time():
    """The power probes' sustained replays (power_cap*/): the batch-1 decode step draws 476 W
    and stays at boost; every larger pass holds the card at its 700 W limit."""
    from hwsim.validate.gpu_fidelity import BOOST_POINTS, measured_step_energy
    m = measured_step_energy("h200-sxm")
    assert set(m) == set(BOOST_POINTS)
    w, ms, j = m["decode_b1_512"]
    assert w == pytest.approx(476, abs=3) and ms == pytest.approx(4.61, abs=0.02)
    assert j == pytest.approx(w * ms / 1e3, rel=1e-12)
    assert all(680 < w <= 700 for phase, (w, _, _) in m.items() if phase != "decode_b1_512")


@pytest.mark.parametrize("mode", [{"preset": "h200-sxm", "hbm_gib": 1024},
                                  {"preset": "h200-sxm", "profile": "h200-sxm", "hbm_gib": 1024}],
                         ids=["datasheet", "profile"])
def test_the_modelled_power_of_a_pass_stays_under_the_power_limit(mode):
    """Physics: a pass's modelled energy over its modelled time is at least the static power and
    at most the card's power limit (TDP), whatever the pass and mode."""
    from hwsim.validate.gpu_fidelity import BOOST_POINTS, GRAPH, step_metrics
    gpu = preset("h200-sxm", mode.get("profile"))
    for phase, b, ctx in BOOST_POINTS.values():
        m = step_metrics(mode, phase, b, ctx, GRAPH)
        watts = m.energy_j / m.iteration_latency_s
        assert gpu.static_w <= watts <= gpu.tdp_w * (1 + 1e-9), (phase, b, ctx, watts)


# ---------------------------------------------------------------- profile mode's energy
def power_rows(override=None):
    rows = {r["phase"]: dict(r) for r in read_csv(profiles_dir() / "h200-sxm" / "power.csv")}
    for key, value in (override or {}).items():
        phase, column = key if isinstance(key, tuple) else (key, "power_w")
        rows[phase][column] = str(value)
    return list(rows.values())


def test_profile_energy_is_the_closed_form_of_its_power_rows():
    """pJ per HBM byte = (P_copy - P_idle) / copy bytes/s; pJ per bf16 FLOP = (P_gemm - P_idle -
    per-byte x GEMM bytes/s) / GEMM FLOP/s, from the H200's power.csv."""
    from hwsim.hw.gpu_profile import ProfileEnergy
    by = {r["phase"]: {k: float(v) for k, v in r.items() if k != "phase"} for r in power_rows()}
    e = load_profile("h200-sxm").energy
    idle = by["idle"]["power_w"]
    per_byte = (by["copy"]["power_w"] - idle) / by["copy"]["hbm_bytes_per_s"] * 1e12
    gemm = by["gemm_bf16"]
    per_flop = ((gemm["power_w"] - idle) * 1e12 - per_byte * gemm["hbm_bytes_per_s"]) / gemm["flop_per_s"]
    assert (e.static_w, e.pj_per_hbm_byte, e.pj_per_bf16_flop) == pytest.approx((idle, per_byte, per_flop))
    assert e == ProfileEnergy.from_rows(power_rows(), "h200")
    # each sustained state's power is reproduced by the model it was derived for
    for phase in ("copy", "gemm_bf16", "decode_attention"):
        r = by[phase]
        assert e.power_w(r["flop_per_s"], r["hbm_bytes_per_s"], phase == "decode_attention") == \
            pytest.approx(r["power_w"], rel=1e-9)


@pytest.mark.parametrize("power_csv", ["power.csv", "profile-2026-12-02/power.csv",
                                       "power-2026-12-04b/power.csv", "same_card-2026-12-04/power.csv"])
def test_profile_energy_predicts_the_held_out_gemv_power(power_csv):
    """The gemv row (8 tokens through 940 MB of weights) is not an input: the copy's per-byte and
    the GEMM's per-FLOP energy predict its board power within 5% (596 W against 584 W; on the
    second card, 651 W against 657 W)."""
    from hwsim.hw.gpu_profile import ProfileEnergy
    rows = read_csv(profiles_dir() / "h200-sxm" / power_csv)
    r = {k: float(v) for k, v in next(r for r in rows if r["phase"] == "gemv").items() if k != "phase"}
    predicted = ProfileEnergy.from_rows(rows, power_csv).power_w(r["flop_per_s"], r["hbm_bytes_per_s"])
    assert predicted == pytest.approx(r["power_w"], rel=0.05)


def test_small_m_gemms_cost_energy_per_useful_flop_not_per_padded_tile():
    """gemm_power-2026-12-04/ (a fourth H200): LLaMA-2-7B gate+up GEMMs of m = 1-32 rows all
    stream ~3.8 TB/s, and their board power rises with the nominal FLOPs at the profile's energy
    per FLOP (0.82 pJ, from an 8192^3 GEMM on another card) within 10%, bytes charged at the
    profile's per-byte energy. Were padded tile rows charged, m = 1-32 would draw one power."""
    rows = read_csv(profiles_dir() / "h200-sxm" / "gemm_power-2026-12-04" / "gemm_power.csv")
    gemm = {int(r["m"]): {k: float(v) for k, v in r.items() if k != "phase"}
            for r in rows if r["phase"] == "gemm"}
    energy = load_profile("h200-sxm").energy
    a, b = gemm[1], gemm[32]
    assert a["sm_mhz"] == b["sm_mhz"] == 1980                 # neither slowed by the cap
    d_watts = b["power_w"] - a["power_w"] - (b["hbm_bytes_per_s"] - a["hbm_bytes_per_s"]) \
        * energy.pj_per_hbm_byte * 1e-12
    pj_per_flop = d_watts / (b["flop_per_s"] - a["flop_per_s"]) * 1e12
    assert pj_per_flop == pytest.approx(energy.pj_per_bf16_flop, rel=0.10)
    assert b["power_w"] > a["power_w"] + 80                    # 101 W more for 32x the rows


def test_most_of_a_streamed_bytes_energy_is_spent_on_the_gpu_die_not_in_the_hbm():
    """memory_power-2026-12-04/ (NVML's memory power domain on an H200): the HBM stacks take
    2.8 pJ/bit of a copied byte and 3.5 of a byte a GEMV reads (within a factor 1.5 of the
    HBM2 device figure datasheet mode uses, 3.9 pJ/bit), while the board spends ~100 pJ per
    streamed byte: over two thirds of it on the GPU die."""
    rows = {r["phase"]: {k: float(v) for k, v in r.items() if k != "phase"}
            for r in read_csv(profiles_dir() / "h200-sxm" / "memory_power-2026-12-04" / "memory_power.csv")}
    idle = rows["idle_after"]                  # clocks up, as between a busy card's kernels
    for phase in ("copy", "gemv"):
        r = rows[phase]
        memory_pj_per_byte = (r["memory_avg_w"] - idle["memory_avg_w"]) / r["hbm_bytes_per_s"] * 1e12
        board_pj_per_byte = (r["board_avg_w"] - idle["board_avg_w"]) / r["hbm_bytes_per_s"] * 1e12
        assert 3.9 / 1.5 < memory_pj_per_byte / 8 < 3.9 * 1.5, (phase, memory_pj_per_byte)
        assert memory_pj_per_byte < board_pj_per_byte / 3, (phase, memory_pj_per_byte, board_pj_per_byte)
    assert rows["idle"]["memory_avg_w"] < rows["copy"]["memory_avg_w"] / 3


def test_the_h200s_that_draw_more_per_byte_spend_it_in_their_hbm_stacks():
    """Two H200s measured with the calibration's memory_w column (power_memory-2026-12-04/) and
    the same kernels (memory_power-2026-12-04/): 121 against 101 pJ per copied byte on the
    board, and most of that difference in the memory power domain (36.6 against 22.2 pJ/B)."""
    folder = profiles_dir() / "h200-sxm"
    hungry = {r["phase"]: r for r in read_csv(folder / "power_memory-2026-12-04" / "power.csv")}
    frugal = {r["phase"]: r for r in read_csv(folder / "memory_power-2026-12-04" / "memory_power.csv")}

    def per_byte(rows, board, memory, idle):
        copy = {k: float(v) for k, v in rows["copy"].items() if k != "phase"}
        rest = {k: float(v) for k, v in rows[idle].items() if k != "phase"}
        rate = copy["hbm_bytes_per_s"] / 1e12
        return (copy[board] - rest[board]) / rate, (copy[memory] - rest[memory]) / rate
    board_a, memory_a = per_byte(hungry, "power_w", "memory_w", "idle")
    board_b, memory_b = per_byte(frugal, "board_avg_w", "memory_avg_w", "idle_after")
    assert board_a - board_b > 15 and memory_a - memory_b > 0.6 * (board_a - board_b)


def test_two_h200s_agree_on_energy_per_flop_not_per_byte():
    """Two cards of the same model (power.csv, 2026-12-04T04:10Z; power-2026-12-04b/, 15:04Z on
    another machine): the same pJ per bf16 FLOP within 1% and idle power within 3 W, but
    streaming HBM costs the second 15% more per byte (copy 638 W against 566 W at the same
    4.2 TB/s). Card-to-card spread: the profile is of one card."""
    from hwsim.hw.gpu_profile import ProfileEnergy
    folder = profiles_dir() / "h200-sxm"
    a = ProfileEnergy.from_rows(read_csv(folder / "profile-2026-12-02" / "power.csv"), "a")
    b = ProfileEnergy.from_rows(read_csv(folder / "power-2026-12-04b" / "power.csv"), "b")
    assert b.pj_per_bf16_flop == pytest.approx(a.pj_per_bf16_flop, rel=0.01)
    assert b.static_w == pytest.approx(a.static_w, abs=3.0)
    assert b.pj_per_hbm_byte / a.pj_per_hbm_byte == pytest.approx(1.15, abs=0.02)


@pytest.mark.parametrize("override,message", [
    ({"copy": 100.0}, "no more than idle"),
    ({"gemm_bf16": 130.0}, "all explained by its HBM traffic"),
    ({"decode_attention": 100.0}, "decode_attention"),
    ({("copy", "hbm_bytes_per_s"): 0}, "the copy row has no hbm_bytes_per_s"),
    ({("gemm_bf16", "flop_per_s"): 0}, "the gemm_bf16 row has no flop_per_s")])
def test_a_power_csv_that_breaks_the_model_is_refused(override, message):
    from hwsim.hw.gpu_profile import ProfileEnergy
    with pytest.raises(ValueError, match=message):
        ProfileEnergy.from_rows(power_rows(override), "my-gpu/power.csv")


def test_profile_energy_needs_idle_copy_and_gemm_rows():
    from hwsim.hw.gpu_profile import ProfileEnergy
    rows = [r for r in power_rows() if r["phase"] != "copy"]
    with pytest.raises(ValueError, match="no copy row"):
        ProfileEnergy.from_rows(rows, "my-gpu/power.csv")


def test_a_profile_without_power_keeps_the_datasheet_energy():
    """The H100 profile has no power.csv: its energy is the preset's."""
    h100 = preset("h100-sxm", "h100-sxm")
    sheet = preset("h100-sxm")
    assert load_profile("h100-sxm").energy is None
    assert (h100.static_w, h100.dram_pj_per_bit, h100.pj_per_flop("bf16")) == \
        (sheet.idle_power_w, sheet.hbm_pj_per_bit, sheet.pj_per_flop("bf16"))


@pytest.mark.parametrize("gpu,phase,slowed", [("{preset: h200-sxm, profile: h200-sxm}", "prefill", True),
                                              ("h200-sxm", "prefill", True),
                                              ("h200-sxm", "decode", False)])
def test_the_report_says_when_the_power_limit_slowed_a_pass(gpu, phase, slowed):
    """A 2048-token prefill reaches the 700 W limit, in profile mode (measured energy) and in
    datasheet mode (its GEMMs' energy per FLOP is that of a card held there), and the report
    says by how much it was slowed (metric power_limit_slowdown); a batch-1 decode step, far
    below the limit, is not slowed."""
    from hwsim.config.loader import load_config_text
    from hwsim.pipeline import evaluate
    from hwsim.report import format_table
    result = evaluate(load_config_text(f"""
name: t
workload: {{model: llama2-7b, phase: {phase}, batch: 1, dtype: bf16, lm_head: false,
           requests: {{distribution: fixed, context_len: 2048}}}}
hardware: {{gpu: {gpu}}}
mapper: {{name: gpu}}
"""))
    slowdown = result.main.metrics.power_limit_slowdown
    assert (slowdown > 1.0) == slowed and ("power limit:" in format_table(result)) == slowed
    assert result.to_json()["metrics"]["power_limit_slowdown"] == slowdown


def test_profile_energy_matches_the_same_cards_passes():
    """One card, one lease (same_card-2026-12-04/): the profile with that card's own power.csv
    predicts the board energy of its 12 sustained passes within 5% median |error| (3.2%), no
    worse than with the profile's card (so the spread between those two cards is not the error)."""
    preds = predictions("h200-sxm")
    same = [abs(p.error) for p in preds if p.kind == "step_energy_same_card"]
    other = [abs(p.error) for p in preds if p.kind == "step_energy" and p.mode == "profile"]
    assert len(same) == 12
    assert np.median(same) < 0.05 and max(same) < 0.15
    assert np.median(same) <= np.median(other) + 0.01


@pytest.mark.parametrize("clocks", [{"clock_at_power_limit_mhz": 1500}, {"peak_clock_mhz": 1830}])
def test_the_power_limited_clock_needs_the_peak_clock(clocks):
    """Datasheet energy per FLOP scales the GEMM rate by clock_at_power_limit_mhz /
    peak_clock_mhz: one without the other is refused, naming both keys."""
    data = preset("h200-sxm").model_dump(exclude={"peak_clock_mhz", "clock_at_power_limit_mhz"})
    with pytest.raises(ValueError, match="clock_at_power_limit_mhz and peak_clock_mhz"):
        GPUSpec(**data, **clocks)
    assert GPUSpec(**data).power_limited_clock_fraction == 1.0
