"""Falcon-7B (issue 16, item 4): the zoo entry's parameter count against the HF module tree
(closed form), the parallel attention + FFN block (ModelSpec.parallel_block) in the op graph, and
LLM in a flash's Falcon plan (DRAM share by part, as section 4.2 lists it)."""
from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR, MODELS_DIR
from hwsim.mappers.partition import partition
from hwsim.workloads.models import ModelSpec
from hwsim.workloads.ops import OpKind
from hwsim.workloads.transformer import TransformerWorkload, build_transformer

D, FF, L, V, H, HD = 4544, 18176, 32, 65024, 71, 64     # tiiuae/falcon-7b (configs/models/falcon-7b.yaml)


def spec(**over) -> ModelSpec:
    return ModelSpec(**{**yaml.safe_load((MODELS_DIR / "falcon-7b.yaml").read_text()), **over})


def test_param_count_is_the_module_tree():
    """word_embeddings (tied lm_head) + 32 x (query_key_value 4544 -> 71x64 + 2x64, dense,
    h_to_4h, 4h_to_h, one LayerNorm) + ln_f."""
    layer = D * (H * HD + 2 * HD) + D * D + 2 * D * FF + 2 * D
    assert spec().param_count() == V * D + L * layer + 2 * D
    # a serial block would add a second LayerNorm per layer, nothing else
    assert spec(parallel_block=False).param_count() - spec().param_count() == L * 2 * D


def graph(parallel=True, phase="prefill", context=16):
    w = TransformerWorkload(model=spec(parallel_block=parallel), phase=phase, batch=1, dtype="fp16",
                            requests={"distribution": "fixed", "context_len": context})
    return build_transformer(w)


def test_parallel_block_shares_the_norm_and_adds_once():
    g = graph()
    for i in (0, L - 1):
        norms = [op for op in g.ops if op.layer == i and op.kind == OpKind.NORM]
        assert [op.name for op in norms] == [f"L{i}.norm1"]
        assert g.predecessors(f"L{i}.ffn.up") == [f"L{i}.norm1"]
        assert g.predecessors(f"L{i}.qkv") == [f"L{i}.norm1"]
        res = g.op(f"L{i}.residual")
        assert set(g.predecessors(res.name)) == {f"L{i}.ffn.down", f"L{i}.out_proj",
                                                  "embed" if i == 0 else f"L{i - 1}.residual"}
        assert res.act_in_bytes == 3 * res.act_out_bytes     # x, attention out, FFN out
    # the same matmul work as the serial block, one norm and one add fewer per layer
    s = graph(parallel=False)
    mm = lambda gr: sum(op.flops for op in gr.ops if op.kind in (OpKind.MATMUL,) or op.kind.is_attention)  # noqa: E731
    assert mm(g) == mm(s)
    assert sum(op.kind == OpKind.NORM for op in s.ops) - sum(op.kind == OpKind.NORM for op in g.ops) == L
    # multi-query attention: the KV cache is one head of K and V per token and layer
    d = graph(phase="decode", context=100)
    assert d.info.kv_bytes_per_device == L * 2 * HD * 2 * 101


def test_parallel_block_refuses_moe_and_mla():
    with pytest.raises(ValidationError, match="parallel_block"):
        spec(moe={"n_experts": 8, "top_k": 2, "d_ff_expert": 1024})


def test_flash_plan_parts_match_section_4_2():
    """Embeddings 4.2%, attention 19.4%, predictors 4% (section 4.2) from our plan's parts."""
    from hwsim.mappers.flash import flash_plan
    cfg = load_config(CONFIG_DIR / "llm-in-flash-falcon.yaml")
    g = partition(cfg.main.workload).devices[0].graph
    plan = flash_plan(g, cfg.main.mapper.options)
    model = plan.model_bytes
    b = 4
    assert model == spec().param_count() * b
    attn = sum(op.weight_bytes for op in g.ops if op.name.endswith((".qkv", ".out_proj")))
    assert attn / model == pytest.approx(0.194, abs=0.003)
    assert V * D * b / model == pytest.approx(0.042, abs=0.002)
    pred = L * cfg.main.mapper.options.predictor_rank * (D + FF) * b
    assert pred / model == pytest.approx(0.04, abs=0.002)
    # resident = everything but the FFN matrices + predictors + the window's 33% of the FFN
    ffn = L * 2 * D * FF * b
    assert plan.dram_weight_bytes == pytest.approx(model - ffn + pred + L * round(0.33 * FF + 0.5) * 2 * D * b,
                                                   rel=1e-4)
