"""The op graphs carry the FLOPs and bytes the published model sizes imply."""
import pytest
import yaml

from hwsim.configs import MODELS_DIR
from hwsim.workloads.models import ModelSpec
from hwsim.workloads.ops import OpKind
from hwsim.workloads.requests import RequestSpec
from hwsim.workloads.routing import RoutingSpec, expert_token_counts
from hwsim.workloads.transformer import TransformerWorkload, build_transformer


def model(name, **over):
    data = yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text())
    data.update(over)
    return ModelSpec(**data)


# Published parameter totals of every shipped model are claims in hwsim/validate/model_zoo.py
# (LLM_PARAMS_B), checked by tests/test_validate.py.


def workload(name="llama2-7b", **kw):
    kw.setdefault("phase", "decode")
    kw.setdefault("batch", 4)
    kw.setdefault("requests", RequestSpec(context_len=512))
    return TransformerWorkload(model=model(name), **kw)


@pytest.mark.parametrize("name", ["gpt3-7b", "llama2-7b", "llama2-70b", "mixtral-8x7b", "glam-64b-64e"])
def test_decode_flops_match_kaplan_closed_form(name):
    """Per-token forward FLOPs = 2 * active non-embedding params + 4 * layers * heads * d * L
    (Kaplan et al. 2020), within 1% (the rest is norms and softmax)."""
    w = workload(name, batch=8, requests=RequestSpec(context_len=511))
    g = build_transformer(w)
    per_token = g.total("flops") / w.batch
    assert per_token == pytest.approx(w.model.flops_per_token(512), rel=0.01)


def test_matmul_flops_are_exactly_two_per_weight_per_token():
    w = workload("llama2-7b", batch=3)
    g = build_transformer(w)
    m = w.model
    mm = sum(op.flops for op in g.ops if op.matmul is not None)
    weights = sum(m.layer_params(i) - 2 * m.norm_params() for i in range(m.n_layers)) + m.vocab * m.d_model
    assert mm == 2 * weights * w.batch


def test_weight_bytes_in_graph_equal_parameters():
    w = workload("gpt3-7b", batch=2)
    g = build_transformer(w)
    m = w.model
    read = sum(op.weight_bytes for op in g.ops if op.kind in (OpKind.MATMUL,))
    layer_matmul_params = m.n_layers * (m.attention_params() + m.ffn_params(m.d_ff))
    assert read == (layer_matmul_params + m.vocab * m.d_model) * 2


@pytest.mark.parametrize("name", ["gpt3-7b", "llama2-7b"])
def test_every_norm_reads_its_weights_once(name):
    """Two norms per layer and the final one, each reading its scale (and LayerNorm's bias)
    once per pass, whatever the batch: `ModelSpec.norm_params` each, at activation precision."""
    for batch in (1, 8):
        w = workload(name, batch=batch)
        g = build_transformer(w)
        norms = [op for op in g.ops if op.kind == OpKind.NORM]
        assert len(norms) == 2 * w.model.n_layers + 1
        assert sum(op.weight_bytes for op in norms) == len(norms) * w.model.norm_params() * 2


def test_kv_cache_read_once_per_layer_in_decode():
    """Decode reads each request's whole K and V cache once per layer (plus the new token)."""
    lens = (100, 300, 7, 2000)
    w = workload("llama2-70b", batch=4, requests=RequestSpec(distribution="list", lens=lens), tp=8)
    g = build_transformer(w)
    kv_heads_per_device = 1
    expected = sum(L + 1 for L in lens) * 2 * kv_heads_per_device * 128 * 2 * 80
    assert sum(op.kv_read_bytes for op in g.ops) == expected
    attn = next(op for op in g.ops if op.kind == OpKind.ATTENTION_SCORE)
    assert attn.attention.context_lens == tuple(L + 1 for L in lens)
    assert attn.attention.group == 8 // 1  # 64 query heads / 8 devices over 1 KV head


def test_tensor_parallel_shards_weights_and_adds_allreduces():
    one = build_transformer(workload("gpt3-7b"))
    four = build_transformer(workload("gpt3-7b", tp=4))
    assert four.info.weight_bytes_per_device == pytest.approx(one.info.weight_bytes_per_device / 4, rel=1e-6)
    reduces = [op for op in four.ops if op.kind == OpKind.ALL_REDUCE]
    assert len(reduces) == 2 * 32
    assert not any(op.kind == OpKind.ALL_REDUCE for op in one.ops)


def test_prefill_attention_is_quadratic_in_prompt():
    g1 = build_transformer(workload("llama2-7b", phase="prefill", batch=1, requests=RequestSpec(context_len=256)))
    g2 = build_transformer(workload("llama2-7b", phase="prefill", batch=1, requests=RequestSpec(context_len=512)))
    f = lambda g: sum(op.flops for op in g.ops if op.kind == OpKind.ATTENTION_SCORE)  # noqa: E731
    assert f(g2) == 4 * f(g1)
    assert g2.info.tokens == 512


def test_routing_conserves_tokens_and_is_seeded():
    spec = RoutingSpec(distribution="zipf", skew=1.2, seed=7)
    a = expert_token_counts(spec, 1000, 8, 2, layer=3)
    b = expert_token_counts(spec, 1000, 8, 2, layer=3)
    assert a.sum() == 2000 and (a == b).all()
    uniform = expert_token_counts(RoutingSpec(seed=7), 1000, 8, 2, layer=3)
    assert a.max() > uniform.max()     # skew concentrates tokens
    assert uniform.max() <= 1000       # top-k picks distinct experts


def test_moe_graph_has_router_experts_and_all_to_all():
    w = workload("mixtral-8x7b", batch=8, tp=1, ep=2)
    g = build_transformer(w)
    kinds = {op.kind for op in g.ops}
    assert OpKind.ROUTER in kinds and OpKind.ALL_TO_ALL in kinds
    layer0_experts = {op.expert for op in g.ops if op.layer == 0 and op.expert is not None}
    assert len(layer0_experts) <= 4          # this device holds 8 / ep experts
    # tokens processed by local experts never exceed the tokens routed to them
    ups = [op for op in g.ops if op.layer == 0 and op.name.endswith(".up") and op.expert is not None]
    assert sum(op.matmul.m for op in ups) <= 8 * 2


def test_moe_active_flops_closed_form():
    w = workload("mixtral-8x7b", batch=16, requests=RequestSpec(context_len=63))
    g = build_transformer(w)
    expert_mm = sum(op.flops for op in g.ops if op.expert is not None and op.matmul is not None)
    m = w.model
    assert expert_mm == 2 * 16 * m.moe.top_k * 3 * m.d_model * m.moe.d_ff_expert * m.n_layers


def test_moe_every_other_layer_with_its_own_expert_shape():
    """GLaM: MoE in layers 0, 2, 4, ... (`every: 2`) with plain GELU experts (two matrices), gated
    dense FFNs (three) in the others; the graph's matmul FLOPs are 2 per active weight per token."""
    w = workload("glam-64b-64e", batch=8, routing=RoutingSpec(distribution="balanced"))
    g, m = build_transformer(w), w.model
    routed = {op.layer for op in g.ops if op.kind == OpKind.ROUTER}
    dense = {op.layer for op in g.ops if op.name.endswith(".ffn.up")}
    assert routed == set(range(0, 64, 2)) and dense == set(range(1, 64, 2))
    d, f = m.d_model, m.moe.d_ff_expert
    assert {op.matmul.n for op in g.ops if op.expert is not None and op.name.endswith(".up")} == {f}
    assert {op.matmul.n for op in g.ops if op.name.endswith(".ffn.up")} == {2 * m.d_ff}
    expert_mm = sum(op.flops for op in g.ops if op.expert is not None and op.matmul is not None)
    assert expert_mm == 2 * 8 * m.moe.top_k * 2 * d * f * 32
    layers_mm = sum(op.flops for op in g.ops if op.matmul is not None and op.layer >= 0)
    active = sum(m.layer_params(i, active=True) - 2 * m.norm_params() for i in range(64))
    assert layers_mm == 2 * 8 * active


def test_graph_is_a_dag_in_topological_order():
    g = build_transformer(workload("deepseek-moe-16b", batch=4))
    seen = set()
    for op in g.ops:
        assert all(p in seen for p in g.predecessors(op.name))
        seen.add(op.name)
    assert len(seen) == len(g)


def test_pipeline_stage_holds_its_share_of_layers_and_every_micro_batch():
    """pp stages split the layers evenly; the graph is the last stage running all pp
    micro-batches, so the requests, tokens and KV bytes per layer are those of the whole batch."""
    flat = build_transformer(workload("gpt3-7b", batch=8))
    piped = build_transformer(workload("gpt3-7b", batch=8, pp=2))
    m = flat.info
    assert piped.info.n_layers == m.n_layers // 2 and piped.info.pp == 2
    assert piped.info.tokens == m.tokens
    assert piped.info.kv_bytes_per_device * 2 == m.kv_bytes_per_device
    layer_flops = lambda g, i: sum(op.flops for op in g.ops if op.layer == i)
    last = m.n_layers - 1
    assert layer_flops(piped, last) == pytest.approx(layer_flops(flat, last))
    assert {op.micro_batch for op in piped.ops} == {0, 1}
    assert sum(op.attention.context_array.size for op in piped.ops
               if op.kind == OpKind.ATTENTION_SCORE and op.layer == last) == 8


def test_pipeline_receives_each_micro_batch_once_over_the_link():
    g = build_transformer(workload("gpt3-7b", batch=8, pp=4))
    recv = [op for op in g.ops if op.kind == OpKind.P2P]
    assert len(recv) == 4
    assert sum(op.collective.bytes for op in recv) == 8 * model("gpt3-7b").d_model * 2


def test_pipeline_weights_are_a_stage_share_plus_the_lm_head():
    m = model("gpt3-7b")
    piped = build_transformer(workload("gpt3-7b", batch=8, pp=4))
    expected = (sum(m.layer_params(i) for i in range(m.n_layers) if i >= 3 * m.n_layers // 4)
                + m.vocab * m.d_model + m.norm_params()) * 2
    assert piped.info.weight_bytes_per_device == expected


@pytest.mark.parametrize("kw, message", [
    (dict(pp=5), "must divide n_layers"),
    (dict(pp=2, batch=3), "must divide batch"),
])
def test_pipeline_split_must_be_even(kw, message):
    with pytest.raises(ValueError, match=message):
        workload("gpt3-7b", **kw)


@pytest.mark.parametrize("name, kw", [("gpt3-7b", dict(pp=2, batch=8)), ("llama2-70b", dict(tp=8)),
                                      ("mixtral-8x7b", dict(ep=2, batch=8)),
                                      ("glam-64b-64e", dict(tp=8, batch=8))])
def test_info_without_the_ops_equals_the_graphs(name, kw):
    """The memory check reads `transformer_info` so sweeps need not build the whole graph."""
    from hwsim.workloads.transformer import transformer_info
    w = workload(name, **kw)
    assert transformer_info(w) == build_transformer(w).info


# --------------------------------------------------------------------------- latent attention

def deepseek(phase="decode", **kw):
    """DeepSeek-V3 with its routing balanced (every expert the same tokens) and a short prompt."""
    kw.setdefault("batch", 8)
    kw.setdefault("requests", RequestSpec(context_len=1024))
    kw.setdefault("routing", RoutingSpec(distribution="balanced"))
    return TransformerWorkload(model=model("deepseek-v3"), phase=phase, **kw)


def test_mla_caches_the_latent_and_the_rope_key_only():
    """DeepSeek-V2's point: 512 + 64 = 576 cached elements per token and layer instead of
    2 x 128 heads x 128 (57x less than MHA with the same heads)."""
    w = deepseek()
    g = build_transformer(w)
    lens = w.context_lens() + 1
    assert w.model.kv_cache_elements() == 576
    assert g.info.kv_bytes_per_device == int(lens.sum()) * 576 * 2 * 61
    written = sum(op.kv_write_bytes for op in g.ops)
    assert written == w.batch * 576 * 2 * 61
    read = sum(op.kv_read_bytes for op in g.ops)           # read once, by the score op
    assert read == int(lens.sum()) * 576 * 2 * 61


def test_mla_decode_reads_every_weight_once_absorbed_or_not():
    """Absorbing W_UK and W_UV into per-head GEMMs reads the same weights as the expanded
    form: one decode pass reads attention weights = the closed-form attention parameters."""
    w = deepseek(batch=8, ep=1)
    g = build_transformer(w)
    attn = [op for op in g.ops if op.layer == 5 and op.matmul is not None
            and op.kind == OpKind.MATMUL and "ffn" not in op.name and "expert" not in op.name
            and "shared" not in op.name and "router" not in op.name]
    norms = w.model.mla.q_lora_rank + w.model.mla.kv_lora_rank     # the two latent norms' gains
    assert sum(op.weight_bytes for op in attn) == (w.model.attention_params() - norms) * 2


def test_mla_decode_flops_are_the_absorbed_closed_form():
    """Per token and layer, attention FLOPs in decode: scores 2 H (kv_lora + rope) L and values
    2 H kv_lora L over the cache of L tokens (DeepSeek-V2, appendix on absorbed inference)."""
    w = deepseek(batch=4, requests=RequestSpec(context_len=4095))
    g = build_transformer(w)
    score = sum(op.flops for op in g.ops if op.kind == OpKind.ATTENTION_SCORE)
    context = sum(op.flops for op in g.ops if op.kind == OpKind.ATTENTION_CONTEXT)
    assert score == 61 * 4 * 2 * 128 * 576 * 4096
    assert context == 61 * 4 * 2 * 128 * 512 * 4096


def test_mla_prefill_expands_the_latent_to_heads():
    """Prefill rebuilds per-head keys (128 + 64) and values (128) and attends causally."""
    w = deepseek(phase="prefill", batch=2, requests=RequestSpec(context_len=256))
    g = build_transformer(w)
    score = next(op for op in g.ops if op.kind == OpKind.ATTENTION_SCORE)
    assert score.attention.kv_heads == score.attention.heads == 128
    assert score.attention.head_dim == 192
    up = next(op for op in g.ops if op.name == "L0.kv_up")
    assert (up.matmul.k, up.matmul.n) == (512, 128 * 256)


@pytest.mark.parametrize("kw", [dict(), dict(tp=8, batch=8), dict(ep=8, batch=8)])
def test_mla_info_without_the_ops_equals_the_graphs(kw):
    from hwsim.workloads.transformer import transformer_info
    w = deepseek(**kw)
    assert transformer_info(w) == build_transformer(w).info


def test_mla_tensor_parallel_keeps_the_down_projections_whole():
    """Heads shard over tp ranks; W_DQ, W_DKV (and their norms) stay whole on every rank."""
    m = model("deepseek-v3")
    a = m.mla
    down = 7168 * a.q_lora_rank + a.q_lora_rank + 7168 * a.cache_dim + a.kv_lora_rank
    assert m.attention_params(8) == down + (m.attention_params() - down) // 8


def test_mla_refuses_head_sizes_outside_it():
    with pytest.raises(ValueError, match="sets its head sizes there"):
        model("deepseek-v3", n_kv_heads=8)
