"""`hwsim validate`: every published claim in the registry holds within its band (the known
misses, KNOWN_MISSED, still miss), the GPU fidelity rows, the JSON contract, the status logic
(fail outside the band; not reproduced never a failure), `--only`, `--report` and the exit codes
(0 all pass, 3 a claim failed, 2 bad input)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.configs import MODELS_DIR
from hwsim.validate import (REGISTRY, Between, Claim, Exact, Status, Within, all_claims,
                            evaluate_claim, judge, summary)
from hwsim.validate.model_zoo import CNN_SIZES, LLM_PARAMS_B
from hwsim.workloads.cnn import CNN_MODELS

CLAIMS = all_claims()
CONTRACT = {"id", "system", "claim", "source", "config", "metric", "published", "ours", "low",
            "high", "unit", "status", "reason"}

# Claims hwsim misses today: each must fail, and no other claim may. A fix that brings one into
# its band, or a regression that pushes another out, shows up here; never widen a band instead.
# Median |error| of the GPU model against the committed measurements (configs/profiles/), issue 11:
KNOWN_MISSED = {
    # ExFlow (issue 13 item 6; hwsim/validate/exflow.py, configs/exflow-gpt-moe-ep8.yaml): on one DGX
    # A100 board at batch 512 the all-to-alls are latency-bound (a few hundred KB each), so removing
    # the combine halves the routing time and the affinity placement (0.5, assumed) trims bytes that
    # hardly count: -49% vs "up to 67%". Throughput falls (0.95x vs "up to 2.2x"): routing is ~10% of
    # the step, and under context coherence a device attends over the tokens its experts drew, so
    # the busiest device's attention (uneven token counts) sets each layer's pace.
    "exflow.routing_latency_reduction",     # 0.487 (0.50-0.84)
    "exflow.throughput_speedup",            # 0.95x (1.65-2.75)
    # Layered vs chunked prefill on Qwen3-30B-A3B (issue 12 item 6; hwsim/validate/serving.py): our
    # iterations are ~2.5x faster than the reference engines' (chunked: mean TTFT 350 ms, TPOT 8.3 ms,
    # E2E 1.94 s vs vLLM's 1,019 / 19.7 / 4,904): hwsim models no per-iteration CPU/scheduler time, so
    # queues stay short and layered's 16-iteration cohort wins more TTFT (-56% vs -30%); with fewer
    # decode-only iterations overlapping, chunked's per-chunk reload of all 128 x 48 experts weighs
    # more in the expert traffic (+77% vs +12..39%). Balanced routing also overstates decode expert reads.
    "layered-prefill.ttft_change",              # -0.56 (-0.40 .. -0.20)
    "layered-prefill.chunked_expert_traffic",   # +0.77 (0.02 .. 0.49)
    # The abstract's best case (TTFT "up to 70%" lower, over two models, two traces and several rates,
    # not attributed to one setting) against our one setting, the README's: -56%, between the
    # README's -30% for this setting and the paper's extreme. (Its E2E "41%" row passes: -34%.)
    "layered-prefill.ttft_change_paper_extreme",   # -0.56 (-0.80 .. -0.60)
    # CloudMatrix384 (issue 13; hwsim/validate/cloudmatrix.py). SLO points: our decode step barely
    # grows with the batch at 4-12 requests per die (30.6 ms at batch 8 per NPU, 31.6 ms at 24:
    # every die still reads its layer's attention weights and its expert), while the paper's TPOT
    # rises from 14.9 to 24.6 ms; no constant was changed for either.
    "cloudmatrix.slo15_tokens_per_npu",     # 445 (457-619)
    "cloudmatrix.slo15_tpot",               # 18.0 ms (12.7-17.1)
    "cloudmatrix.slo30_tokens_per_npu",     # 1,290 (828-1,120)
    "cloudmatrix.slo30_tpot",               # 18.6 ms (20.9-28.3)
    # prefill 15.6% faster than the paper: the 910C die's GEMM and attention efficiencies are the
    # H100's (assumed), and the 16,384 tokens per NPU are our reading of the setup.
    "cloudmatrix.prefill_perfect_eplb",     # 7,753 (5,685-7,691)
    # UB dispatch/combine at EP256: ours moves the bytes at the link rate (196 GB/s per die) plus
    # route latency and ECMP collisions; the paper's effective 54 / 103 GB/s include the kernels'
    # packing and synchronisation, which hwsim does not model.
    "cloudmatrix.ub_dispatch_ep256",        # 43 us (114-190)
    "cloudmatrix.ub_combine_ep256",         # 85 us (112-186)
    # Duplex (issue 14 item 2; hwsim/validate/duplex.py): Logic-PIM's area per stack (51,200 FP16 MACs
    # at 7 nm, 5 MiB SRAM, 4.9 mm2 of added TSVs per stack, all assumed) is 5.9% of an assumed 121 mm2
    # base die; the paper's PU count, area breakdown and the denominator of its 14.71% were not
    # retrievable, so nothing here stands in for them.
    "duplex.area_overhead",                 # 0.059 (0.110-0.184)
    # SN40L (issue 15 item 3; hwsim/validate/sn40l.py, configs/sn40l-coe.yaml). Per request (router,
    # switch on 70-74% of requests, expert prefill + 20 tokens) the SN40L takes 98 ms, the DGX H100
    # 238 ms: its switch (214 ms at the paper's 64 GB/s host-to-GPU) is 63% of it, but executing
    # the expert takes the same ~82 ms on both, as both decode steps (4.1-4.2 ms) are bound by the
    # TP-8 all-reduces' latency on the same stand-in link (3.4 us per ring step; no RDU link figure
    # is published), not by HBM (1.0 ms of weights per socket). (Baseline dgx_h100_all_links, a PCIe
    # link per GPU as the DGX is built: switching 1.6x, per request 1.09x.)
    "sn40l.coe_speedup_over_dgx_h100",      # 2.42x (2.59-4.81x)
    # 8 x 100 GB/s (HC24's 1,600 GB/s over 16 sockets) = 0.80 TB/s < the paper's "over 1 TB/s":
    # the two published figures disagree; the config keeps HC24's (with ~200 GB/s per socket, as
    # reading notes of the paper give, the switching rows would miss on the other side: 25x, 51x).
    "sn40l.node_ddr_to_hbm_bw",             # 800 GB/s (>= 1,000)
    # unfused = activations round-trip HBM + 5 us per op (assumed): Llama2-7B gains 1.5-1.6x; the
    # paper's 2-13x spans other benchmarks and an unfused baseline whose lost operator pipelining
    # (spatial, across PCUs) hwsim does not model.
    "sn40l.fusion_speedup.llama2-7b_decode",   # 1.52x (2-13x)
    "sn40l.fusion_speedup.llama2-7b_prefill",  # 1.60x (2-13x)
    # PULP-TrainLib on-device training (issue 16 item 3; hwsim/validate/pulp.py): our step trains every
    # layer of MLPerf Tiny's ResNet-8 / DS-CNN (+ BatchNorm) at Vega's 450 MHz; the paper's figures imply
    # 697 MHz (ResNet-8) and 1.48 GHz (DS-CNN) for those networks, so its networks, trained layers or
    # MAC/clk averaging differ (its body was not read); the DS-CNN's depthwise-heavy 0.81 MAC/clk is not
    # what a 1x1-conv-dominated step reaches at our matmul efficiency (SAMOS'22's 4.39 MAC/clk).
    "pulp.resnet8.train_step_mac_per_clk",  # 3.96 (2.64-3.58)
    "pulp.resnet8.train_step_latency",      # 20.8 ms (14.5-19.7)
    "pulp.ds-cnn.train_step_mac_per_clk",   # 3.34 (0.69-0.93)
    "pulp.ds-cnn.train_step_latency",       # 5.09 ms (5.44-7.36)
    # TrainDeeploy's CCT fine-tuning (issue 16 item 3, Transformers; hwsim/validate/pulp.py): not the same
    # system: ours is CCT-2/3x2's encoder in FP16 on Vega's cluster (4 FPUs x 2 FP16 lanes at the
    # matmul efficiency), the paper's SoC, precision and trained layers were not read (abstract only).
    "pulp.cct.train_flop_per_cycle",        # 8.42 (3.91-5.29)
    # TPI-LLM (issue 16 item 5; hwsim/validate/tpi_llm.py): the window plan of one 8-way fp32 slice
    # peaks at 0.53 GB; the published 3.1 GB is a measured process footprint (PyTorch runtime, the
    # master's unsliced embedding and head), which hwsim does not model and no constant stands in for.
    "tpi-llm.llama2-70b_peak_memory",       # 0.53 GB (2.79-3.41 GB)
    # the prefill of a 512-token prompt is bandwidth-bound on the 300 Mbps ports, where a star's root
    # port carries 2(p-1)B: TPI-LLM's TTFT is 2.9x the one-device blocking offload's (ring: -57%).
    "tpi-llm.ttft_vs_accelerate",           # -1.86 (>= 0.80)
    # GPU fidelity (issue 11). Harness 2 (2026-12-03, configs/profiles/h200-sxm/README.md) writes
    # K and V with one kernel as vLLM does (it used two copies) and runs rope per token (it ran
    # ~0.8 TB/s): the same-machine A/B moved decode steps by -1.2% (median; the K/V fix saves
    # ~3 us per layer at batch 1, the per-token rope costs ~1 us more there) and prefills 4-12%.
    # The H100 (harness 1, not re-measured) is compared with its measured program: two K/V
    # write kernels (gpu_fidelity.measured_stack); its profile decode now passes at 4.99%.
    # What remains, from the harness-2 trace (step_trace/, bench_gpu_step_trace.py): GEMMs in a
    # step take what they take alone (+-2% in decode), the small kernels do not: at batch 1
    # add+RMSNorm 2.84 us (1.98 alone), rope 2.5 (2.2), split-KV attention ~1.8 us per layer
    # more than alone, plus 0.5 us gaps: ~0.2 ms per small-batch decode step that no
    # microbenchmark sees (profile -7..-11% at batch 1-16). Run-to-run on one machine is wide at
    # small batch (b=1 x 512: 4.75 / 4.52 / 4.35 ms in the two runs and the trace). At batch
    # 128 x 2048 the traced attention kernel takes 1,917 us per layer, 14-19% over the same
    # kernel alone at 2048 keys (rechecked 2026-12-03: 2049 keys +13% over 2048, more than one
    # 64-key tile; a 60 ms graph +7%, sustained clocks). Whole key tiles are modelled since
    # 2026-12-03 (hwsim.hw.gpu.decode_keys: each request's keys rounded up to FA2's tile; the
    # serving cost's decode fast path interpolates in the rounded keys and the cached tokens,
    # hwsim.serving.cost item 4): H200 decode datasheet 11.7 -> 9.98%, profile 5.8 -> 4.91%
    # (both met at the edge, now out of this list); H100 6.3 -> 5.4%, 5.0 -> 3.9%. Datasheet mode charges a small kernel 1.2 us of
    # graph gap plus its memory latency floor (hwsim.hw.gpu.memory_chain_ns: pointer-chase HBM/L2
    # latencies, 0.29-0.50 us on Hopper; 2026-12-03 pass: H200 decode 12.8 -> 11.7%, prefill
    # 13.0 -> 12.1%, H100 prefill 13.4 -> 13.1%), and split-KV attention its FLOPs, two gaps and
    # the combine's floor; the rest of the small-kernel time (at batch 1 add+RMSNorm 2.84 us
    # against ~1.7 modelled, split-KV ~10 us per layer against ~5) has no public figure; in prefill its
    # GEMMs are 8-12% fast at M = 1k-4k on this H200 (the same shapes on the H100: 0-6%; the
    # H200's GEMMs run up to 18% slower than the H100's at equal clocks-as-found, cause not
    # established) and at M = 128-256 the o / down projections 20-38% fast (split-K over 32
    # tiles: the measured kernels stream their weights at ~2.4 TB/s, neither bound).
    # Profile mode now costs each fused small kernel and decode attention with its excess measured
    # in context (in_context.csv, 2026-12-03: the kernel right after the GEMM that writes its
    # input, +0.2..1.6 us at 1-128 tokens, split-KV attention +0.4..2.3 us at batch 1-2): decode
    # 7.6% -> 5.8% (batch 1 x 512: -6.8% -> -3.5%), then 4.91% with whole key tiles. Still short
    # at batch 4-16 and at batch 128 x 2048 (sustained clocks): the split-K reduce kernels and the
    # other in-step gaps were not measured in context.
    # 2026-12-03 (later): the latency chain adds to a kernel's transfer (latency + bytes /
    # bandwidth, no longer the larger of the two), and causal prefill computes whole diagonal
    # tiles: H200 prefill 12.1 -> 11.5%, H100 13.1 -> 12.5%; decode 10.0 -> 9.1%, 5.4 -> 4.2%.
    # The cause of the rest, measured (configs/profiles/h200-sxm/power_cap-2026-12-03): under a
    # sustained tensor load the card holds its 700 W cap by running the SMs at ~1.5 GHz, not
    # 1.98; the first replay after an idle takes 42.0 / 20.45 ms at 2048 / 1024 tokens (datasheet
    # 42.6 / 20.5: +1.4% / +0.3%), back to back 49.1 / 23.9 ms. No public figure gives a Hopper
    # SXM card's sustained clock at its power limit, so datasheet mode has no power model.
    # 2026-12-04: the H200 profile was re-measured with harness 3, which times every whole pass
    # as a serving loop runs it (back to back; the median replay after 2 s) and records its
    # first replay from an unslowed card too (cold_us) and the SM clock: the prefills ran at
    # 1500-1560 MHz (512-2048 tokens). Datasheet mode against the cold replays: prefill 2.3%,
    # decode 6.3%; against the sustained ones (the targets): prefill 14.4%, decode 8.4%.
    # 2026-12-04 (later): datasheet mode charges GEMMs the energy per FLOP of a card held at its
    # TDP by tensor-core work at the clock it holds there, a public figure (H200 1,500 MHz:
    # tile-ai/TileOPs #1588; its peaks are quoted at 1,830), so the engine holds a prefill at the
    # limit: prefill 9.1% (H100 8.6%, GPT stack 9.0%); they pass and left this list.
    # ... and so, since harness 3, do its decode steps: at batch 64-128 x 2047 the card ran at
    # 1680-1725 MHz, 12.5-14.7% slower than the model; at batch 1-4 (1980 MHz, not slowed) the
    # model is 12-16% short on this card (harness 2 on another card: 8.9% median). Against the
    # cold replays 9.6%.
    "gpu.h200-sxm.datasheet.decode_step_gpt",   # 12.2% (target 10%)
    # The GPU's energy per pass against the H200's board power x time (power_cap*/, 2026-12-03):
    # the model's energy is 33-77% low (decode b=1: 0.72 J vs 2.20 J at 476 W; every larger pass
    # ran at the 700 W cap, decode b=128 x 2048: 9.7 J vs 42.8 J). Its dynamic energy is FLOPs
    # at (TDP - idle) / peak plus HBM bytes at 3.9 pJ/bit (an HBM2 device figure): it leaves out
    # the on-chip data movement (L2, crossbar, SM load/store) and the clocked idle of a busy
    # card, which this card's memory-bound steps show to be most of its power. No public
    # per-byte figure for those was found; not changed. Measured since (NVML's memory power
    # domain, configs/profiles/h200-sxm/memory_power-2026-12-04/): the HBM stacks take 2.8-3.5
    # pJ/bit of a streamed byte, the board ~100 pJ/B: three quarters is spent on the die.
    # 2026-12-04 (later): FLOPs now cost (TDP - idle) / the GEMM rate of a card held at its
    # power limit (GPUSpec.pj_per_flop): prefills of 512+ tokens are within 5-8% of the board's
    # energy, decode steps still 67-76% low (their bytes); median 67.5%.
    "gpu.h200-sxm.datasheet.step_energy",   # 67.5% (band 25%)
    # The B200 preset (datasheet mode, 2026-12-03) against bf16 square GEMMs someone else timed on
    # a B200 (pytorch/ao PR #2427, profiler kernel times; configs/published/gpu_gemm/README.md):
    # -17.6% median. At 4096-8192 the card ran 1,410-1,510 TFLOP/s, 81-86% of the 1,745 the
    # preset takes from ml-engineering's MAMF table (the best of a shape search); XLA's public
    # sm_100 table (xla/service/gpu/model/matmul_interpolator_data.h) reads 1,416 at 4096^3 too.
    # At 1024-1536 the measured kernels take 5.1-7.9 us where the model has 2.3-4.9 (no fixed
    # GEMM prologue/epilogue cost is modelled; no public figure for one).
    "gpu.published.b200-sxm.gemm.pytorch-ao-2427",   # 17.6% (target 10%)
    # LLM in a flash (issue 16 item 4; hwsim/validate/llm_in_flash.py): our M1 Max CPU decodes at its
    # RAM roofline (~70 ms sparse), the paper's fp32 PyTorch CPU takes 506-986 ms of compute (Table 3)
    # that flash loading does not shorten; with I/O dominating, ours is 22x (naive reads the fp32 size).
    "llm-in-flash.cpu_speedup_vs_naive",    # 22.3x (2.8-6.5x)
    # PIM-GPT against an eager-PyTorch T4 (issue 14; hwsim/validate/pim_gpt.py): the speed-up falls
    # from 61x (GPT-2 small) to 19-35x at 0.76-1.5B parameters (as first modelled), because the GPU's per-kernel launch
    # floor dominates the small models and its bandwidth the large ones, while our PIM runs at 28-35%
    # of its in-bank MAC rate (the NeuPIMs tile model: ACT, tRCD, READRES and tRP are not hidden).
    # Issue 11: an unfused residual add is one kernel (x + residual), not the two of SwiGLU: the
    # eager T4 saves 2 x 45 us per layer, and GPT-2 medium / GPT-3 350M fall to 40.8x (41-137x);
    # 40.6x since the norms read their weights (2026-12-03). Later on 2026-12-03 the unfused
    # kernel counts became per function, as Hugging Face's GPT code runs them (an H200's profiler
    # counts the same, configs/profiles/h200-sxm/elementwise.csv): nn.LayerNorm is one kernel,
    # not RMSNorm's 8, and gelu_new is 8, not SwiGLU's 2. The eager T4 loses 14 x 45 us and gains
    # 6 x 45 us per layer: 27% faster at GPT-2 small, whose speed-up falls from 59.3x to 39.7x
    # and leaves the band with every other model's.
    "pim-gpt.speedup_over_gpu.gpt2-small",  # 39.7x (41-137x)
    "pim-gpt.speedup_over_gpu.gpt3-125m",   # 39.7x
    "pim-gpt.speedup_over_gpu.gpt3-350m",   # 27.3x
    "pim-gpt.speedup_over_gpu.gpt2-medium",  # 27.3x
    "pim-gpt.speedup_over_gpu.gpt3-760m",   # 16.8x
    "pim-gpt.speedup_over_gpu.gpt2-large",  # 22.6x
    "pim-gpt.speedup_over_gpu.gpt3-1.3b",   # 12.9x
    "pim-gpt.speedup_over_gpu.gpt2-xl",     # 16.4x
    "pim-gpt.speedup_grows_with_model_size",  # 0.41 (>= 1): shrinks instead
    # Energy: ours counts the T4's 10 W idle + dynamic energy and PIM-GPT's in-bank reads at
    # 0.55 pJ/bit; 26-65x against 123-383x (GDDR6 background power is not modelled, which flatters PIM-GPT).
    "pim-gpt.energy_over_gpu.gpt2-small",   # 64.6x (123-383x)
    "pim-gpt.energy_over_gpu.gpt3-125m",    # 64.6x
    "pim-gpt.energy_over_gpu.gpt3-350m",    # 47.9x
    "pim-gpt.energy_over_gpu.gpt2-medium",  # 47.9x
    "pim-gpt.energy_over_gpu.gpt3-760m",    # 31.3x
    "pim-gpt.energy_over_gpu.gpt2-large",   # 38.4x
    "pim-gpt.energy_over_gpu.gpt3-1.3b",    # 25.8x
    "pim-gpt.energy_over_gpu.gpt2-xl",      # 30.8x
    # AttAcc (issue 14; hwsim/validate/attacc.py): 1.67x (2.11-3.51x) at batch 64, context 2,112.
    # The decode step of both systems is mostly GEMM weight streaming (43.7 GB per GPU on 8 A100a
    # against 21.9 GB on 16) and TP all-reduce latency (8.92 us per ring step, LLMCompass; 2x7 vs
    # 2x15 steps); the attention that AttAcc moves to PIM is a third of the GPU-only step. The
    # paper's 2.81x is the best point of a sweep (batch, Lin, Lout) that was not retrievable.
    "attacc.speedup_over_gpu_same_capacity",
    # AttAcc's energy efficiency over the DGX: 1.99x (2.00-3.34x), 2.08x before datasheet GPUs
    # charged GEMMs the energy per FLOP of a card held at its power limit (A100: 1,305 of 1,410
    # MHz, NVIDIA's HPL convention, glennklockwood.com/garden/peak-FLOPS): the GEMMs both systems
    # run on A100a cost more, so the ratio falls. Datasheet GPU energy per HBM byte is still the
    # DRAM's alone (an H200 board spends 3-4x that per streamed byte: GPU_ENERGY_LOW), which
    # understates the DGX's attention energy that AttAcc removes.
    "attacc.energy_efficiency_over_gpu_same_capacity",
    # Cerebras Inference at launch (Aug 2024; issue 15, hwsim/validate/wafer.py): our wafer pipeline
    # is ~4x faster than the served speeds. Ours is a hardware bound of the decode step: one cycle
    # per fabric hop (assumed), an ideal GEMV per region (input broadcast along rows, partial sums
    # reduced along columns, 2 x side hops) and no software overhead (task switching on the cores,
    # sampling, the API). Fabric hops bind (81% of the 8B token, 72% of the 70B), SRAM bandwidth 19-27%.
    # The 405B row (Nov 2024, later software) passes at 816 tok/s (969). No one hop latency fits all
    # three: the 8B and 70B need ~5.8 and ~6.9 cycles per hop, the 405B 0.8 (the latency is affine
    # in hop_cycles), so the published speeds do not scale the way a fixed hardware model does.
    "wse.llama3.1-8b.decode_tok_s",         # 7,458 tok/s (1,800 +-25%)
    "wse.llama3.1-70b.decode_tok_s",        # 1,980 tok/s (450 +-25%)
    # WaferLLM's measured WSE-2 decode (a research implementation, arXiv 2502.04563 v2) is also
    # below our bound, by 2.8x: the same missing overheads.
    "wse.waferllm.llama3-8b.wse2_decode_tok_s",   # 7,571 tok/s (2,700 +-25%)
    # HNLPU (issue 15; hwsim/validate/hnlpu.py): the column CXL ports bind (566 of 641 us per
    # 216-token step, as the paper's Fig. 14 has CXL at 82.9% at 2K), with bf16 activations on the
    # links and all-reduces as the paper's reduce + broadcast (assumed: the paper states neither the
    # link precision nor CNSim's protocol overheads); 1.35x the paper's post-layout simulation.
    "hnlpu.gpt-oss-120b.throughput_tok_s",      # 336,818 tok/s (249,960 +-20%)
    # Energy: the 16 chips' Table 1 power (4.93 kW) is all we charge; the paper's 6.9 kW system power
    # (Table 2) has 1.97 kW more that it does not break down (HBM stacks? system?), and no constant
    # stands in for it. With our higher throughput: 68 tok/J.
    "hnlpu.gpt-oss-120b.tokens_per_joule",      # 68.3 tok/J (36.2 +-25%)
    # The paper's H100 baseline is 45 tok/s (TensorRT-LLM, measured); our H100 decodes gpt-oss-120b
    # (MXFP4, batch 1) at 303 tok/s (fused MoE, the vLLM / SGLang default since 2026-12-03), under
    # its 3.35 TB/s weight-streaming bound: 1,112x, not 5,555x.
    "hnlpu.gpt-oss-120b.throughput_over_h100",  # 1,112x (5,555x +-25%)
    # Carbon is mostly operational: the same 1.97 kW the paper's power has and ours lacks (it counts
    # 0.010 MW of facility power, ours 4.93 kW x PUE 1.4 = 6.9 kW).
    "hnlpu.gpt-oss-120b.carbon_tco2e",          # 70.9 tCO2e (102.0 +-25%)
}


def validate(*args):
    return CliRunner().invoke(main, ["validate", *args])


# --------------------------------------------------------------------------- the published claims

@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_published_claim_holds(claim):
    """Each claim's ours falls in its accepted band (one source of truth for each published
    number: hwsim/validate/<system>.py), except the known misses, which must still miss."""
    outcome = evaluate_claim(claim)
    where = (f"{claim.id}: ours {outcome.ours} {claim.unit}, band [{claim.bounds[0]}, "
             f"{claim.bounds[1]}] (published {claim.published} {claim.unit})")
    if claim.id in KNOWN_MISSED:
        assert outcome.status == Status.FAIL, f"now reproduced, drop it from KNOWN_MISSED: {where}"
    else:
        assert outcome.status != Status.FAIL, where


def test_the_failing_claims_are_exactly_the_known_misses():
    assert KNOWN_MISSED <= set(REGISTRY)
    failing = {c.id for c in CLAIMS if evaluate_claim(c).status == Status.FAIL}
    assert failing == KNOWN_MISSED


# The GPU fidelity table (issue 11 "Done when"): (mode, kind) -> ceiling of the median |error|, %.
# Datasheet-mode attention has no target in the issue: it takes the 10% of the other kinds.
GPU_FIDELITY_TARGETS = {("datasheet", "gemm"): 10.0, ("datasheet", "attention"): 10.0,
                        ("datasheet", "decode_step"): 10.0, ("datasheet", "prefill"): 10.0,
                        ("profile", "gemm"): 5.0, ("profile", "attention"): 5.0,
                        ("profile", "decode_step"): 5.0, ("profile", "prefill"): 5.0}
MEASURED_CARDS = ("h200-sxm", "h100-sxm")


# measured only on the H200: whole passes of a second model family (decoder_step_gpt.csv)
GPU_FIDELITY_TARGETS_GPT = {("datasheet", "decode_step_gpt"): 10.0, ("datasheet", "prefill_gpt"): 10.0,
                            ("profile", "decode_step_gpt"): 5.0, ("profile", "prefill_gpt"): 5.0}


def test_every_gpu_fidelity_claim_is_registered_with_its_band():
    expected = {f"gpu.{card}.{mode}.{kind}": ceiling for card in MEASURED_CARDS
                for (mode, kind), ceiling in GPU_FIDELITY_TARGETS.items()}
    expected |= {f"gpu.h200-sxm.{mode}.{kind}": ceiling
                 for (mode, kind), ceiling in GPU_FIDELITY_TARGETS_GPT.items()}
    registered = {c.id for c in CLAIMS if c.id.startswith(("gpu.h200-sxm.", "gpu.h100-sxm."))} - {
        "gpu.h200-sxm.datasheet.step_energy", "gpu.h200-sxm.profile.step_energy",
        "gpu.h200-sxm.profile.prefill_sustained"}
    assert registered == set(expected)
    for claim_id, ceiling in expected.items():
        c = REGISTRY[claim_id]
        assert (c.bounds, c.published, c.unit, c.system) == ((0.0, ceiling), 0.0, "%", "GPU"), claim_id
        assert f"configs/profiles/{claim_id.split('.')[1]}/" in c.source, claim_id
    assert all("second, independent card" in REGISTRY[i].claim for i in expected if ".h100-sxm." in i)


@pytest.mark.parametrize("card", MEASURED_CARDS)
def test_gpu_fidelity_claims_are_the_fidelity_table(card):
    """ours of each row is the median |error| hwsim.validate.gpu_fidelity reports for that kind and
    mode, in percent (no row wired to another kind, mode or card)."""
    from hwsim.validate.gpu_fidelity import fidelity_rows
    table = {(r["mode"], r["kind"]): r["median_abs_err"] for r in fidelity_rows(card)}
    targets = GPU_FIDELITY_TARGETS | (GPU_FIDELITY_TARGETS_GPT if card == "h200-sxm" else {})
    for mode, kind in targets:
        ours = REGISTRY[f"gpu.{card}.{mode}.{kind}"].ours()
        assert ours == pytest.approx(100 * table[(mode, kind)], rel=1e-12)


def test_validating_neupims_computes_no_gpu_fidelity(monkeypatch):
    """`hwsim validate --only neupims` (what CI runs) stays cheap: no GPU prediction is made."""
    import hwsim.validate.gpu as gpu_claims

    def refuse(card):
        raise AssertionError(f"GPU fidelity of {card} computed")
    monkeypatch.setattr(gpu_claims, "fidelity_by_kind", refuse)
    r = validate("--only", "neupims")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("claim", [c for c in CLAIMS if c.not_reproduced and c.ours],
                         ids=lambda c: c.id)
def test_not_reproduced_claims_are_still_outside_their_band(claim):
    """A claim marked "not reproduced" whose ours has come into its band is now reproduced:
    drop the mark (the registry's form of a strict xfail)."""
    low, high = claim.bounds
    assert not low <= claim.ours() <= high


def test_every_claim_says_where_it_comes_from_and_why_its_band():
    for c in CLAIMS:
        assert c.system and c.claim and c.source and c.config and c.metric and c.unit, c.id
        assert len(c.reason) > 10, c.id


def test_every_model_of_the_zoo_has_its_published_size():
    assert set(LLM_PARAMS_B) == {p.stem for p in MODELS_DIR.glob("*.yaml")}
    assert set(CNN_SIZES) == set(CNN_MODELS)


# --------------------------------------------------------------------------- status logic

def fake(id="fake.x", published=10.0, band=Within(0.1, "±10% for a test"), ours=lambda: 10.0,
         not_reproduced=None, system="Fake"):
    return Claim(id=id, system=system, claim="a test claim", source="this test", config="none",
                 metric="m", published=published, unit="u", band=band, ours=ours,
                 not_reproduced=not_reproduced)


@pytest.mark.parametrize("band, ours, status", [
    (Within(0.1, "r"), 10.99, Status.PASS), (Within(0.1, "r"), 11.01, Status.FAIL),
    (Within(0.1, "r"), 8.99, Status.FAIL), (Exact("r"), 10.0, Status.PASS),
    (Exact("r"), 10.000001, Status.FAIL), (Between(1.0, None, "r"), 1e9, Status.PASS),
    (Between(1.0, None, "r"), 0.99, Status.FAIL), (Between(None, 2.0, "r"), -5.0, Status.PASS),
    (Within(0.1, "r"), math.nan, Status.FAIL), (Within(0.1, "r"), None, Status.FAIL),
])
def test_ours_outside_the_band_fails(band, ours, status):
    assert judge(fake(band=band), ours) == status


def test_not_reproduced_never_fails_and_is_counted_apart():
    outcomes = [evaluate_claim(fake("fake.a")), evaluate_claim(fake("fake.b", ours=lambda: 99.0)),
                evaluate_claim(fake("fake.c", ours=lambda: 99.0, not_reproduced="out of scope")),
                evaluate_claim(fake("fake.d", ours=None, not_reproduced="out of scope"))]
    assert [o.status for o in outcomes] == [Status.PASS, Status.FAIL, Status.NOT_REPRODUCED,
                                            Status.NOT_REPRODUCED]
    assert summary(outcomes) == {"passed": 1, "failed": 1, "total": 2, "not_reproduced": 2}


@pytest.mark.parametrize("kwargs", [
    dict(id="NoDot"), dict(ours=None), dict(published=None, band=Within(0.1, "r")),
    dict(band=Between(2.0, 1.0, "r")),
])
def test_malformed_claims_are_refused(kwargs):
    with pytest.raises(ValueError):
        fake(**kwargs)


def test_a_claim_id_registers_once():
    from hwsim.validate import register
    with pytest.raises(ValueError, match="twice"):
        register(fake(id=CLAIMS[0].id))


# --------------------------------------------------------------------------- the command

@pytest.fixture
def fake_system(monkeypatch):
    """A registered system "Fake Sys": one claim that passes, one that fails, one not reproduced."""
    for c in (fake("fakesys.pass", system="Fake Sys"),
              fake("fakesys.fail", system="Fake Sys", ours=lambda: 12.0),
              fake("fakesys.skip", system="Fake Sys", ours=None, not_reproduced="out of scope")):
        monkeypatch.setitem(REGISTRY, c.id, c)


def test_json_contract_and_counts(fake_system):
    r = validate("--only", "fake-sys", "--json")
    assert r.exit_code == 3, r.output           # a claim failed: a finding, not a bug (1) or bad input (2)
    doc = json.loads(r.stdout)
    assert {"claims", "passed", "total"} <= set(doc)
    assert all(CONTRACT <= set(row) for row in doc["claims"])
    rows = {row["id"]: row for row in doc["claims"]}
    assert set(rows) == {"fakesys.pass", "fakesys.fail", "fakesys.skip"}
    assert [rows[i]["status"] for i in ("fakesys.pass", "fakesys.fail", "fakesys.skip")] == \
        ["pass", "fail", "not reproduced"]
    assert rows["fakesys.fail"]["ours"] == 12.0 and rows["fakesys.fail"]["published"] == 10.0
    assert rows["fakesys.fail"]["low"] == pytest.approx(9.0) and rows["fakesys.fail"]["high"] == pytest.approx(11.0)
    assert rows["fakesys.skip"]["ours"] is None and rows["fakesys.skip"]["reason"] == "out of scope"
    assert (doc["passed"], doc["total"]) == (1, 2)


def test_only_one_claim_by_id(fake_system):
    r = validate("--only", "fakesys.pass")
    assert r.exit_code == 0, r.output
    assert "1 of 1 reproduced claims pass" in r.stdout


def test_only_unknown_name_is_bad_input():
    r = validate("--only", "no-such-system")
    assert r.exit_code == 2 and r.stdout == ""
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: --only: unknown system or claim 'no-such-system'")
    assert "NeuPIMs" in line and "SCALE-Sim" in line and "neupims.speedup_over_gpu" in line


def test_open_bands_are_null_in_json():
    r = validate("--only", "draco", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in json.loads(r.stdout)["claims"]}
    gap = rows["draco.depthwise_underuses_the_array"]
    assert gap["published"] is None and gap["low"] == 1.0 and gap["high"] is None
    assert gap["status"] == "pass" and gap["ours"] > 1


def test_report_writes_markdown_and_a_plot_per_system(tmp_path, fake_system):
    r = validate("--only", "fake-sys", "--report", str(tmp_path / "rep"))
    assert r.exit_code == 3, r.output
    md = (tmp_path / "rep" / "validation.md").read_text()
    assert "## Fake Sys" in md and "`fakesys.fail`" in md and "**fail**" in md
    assert "out of scope" in md and "![Fake Sys: published vs ours](fakesys.png)" in md
    assert (tmp_path / "rep" / "fakesys.png").read_bytes()[:4] == b"\x89PNG"


def test_report_under_a_file_is_bad_input(tmp_path):
    (tmp_path / "file").write_text("")
    r = validate("--only", "gpu", "--report", str(tmp_path / "file" / "rep"))
    assert r.exit_code == 2 and "--report" in r.stderr and "Traceback" not in r.stderr


def test_neupims_validates_from_the_command_line(tmp_path):
    """`hwsim validate --only neupims` as CI runs it: its own process, exit 0, every row a pass."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("HWSIM_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", "validate", "--only", "neupims", "--json"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["passed"] == doc["total"] == len(doc["claims"]) >= 8
    assert {row["system"] for row in doc["claims"]} == {"NeuPIMs"}
