"""Layered prefill (issue 12 item 3; hwsim.mappers.batching.layered): the cohort passes every layer
once, the expert-weight traffic comes from the memory model, and the Qwen3-30B-A3B configs."""
import numpy as np
import pytest

from hwsim.config.loader import load_config, load_config_text
from hwsim.configs import CONFIG_DIR, MODELS_DIR
from hwsim.errors import ConfigError
from hwsim.mappers.batching.layered import LayeredOptions, cohort_groups
from hwsim.serving.cost import IterationCoster
from hwsim.serving.loop import group_layers, serve
from hwsim.serving.metrics import serving_metrics
from hwsim.serving.spec import ServingSpec
from hwsim.workloads.models import ModelSpec

SMALL = ["scenario.arrivals.num_requests=6", "scenario.arrivals.rate_per_s=4",
         "scenario.arrivals.prompt={dist: uniform, low: 600, high: 3000}",
         "scenario.arrivals.output={dist: uniform, low: 4, high: 24}"]


def _system(name, overrides=()):
    return load_config(CONFIG_DIR / f"serving-qwen3-{name}.yaml", list(overrides)).main


@pytest.fixture(scope="module")
def coster():
    return IterationCoster(_system("layered"))


@pytest.fixture(scope="module")
def pair():
    """The small stream served by both policies, one shared iteration cache."""
    out, coster = {}, None
    for name in ("chunked", "layered"):
        system = _system(name, SMALL)
        run = serve(system, system.scenario, coster=coster)
        coster = run.coster
        out[name] = (run, serving_metrics(run, system, system.scenario))
    return out


def test_qwen3_has_its_published_size():
    import yaml
    m = ModelSpec(**yaml.safe_load((MODELS_DIR / "qwen3-30b-a3b.yaml").read_text()))
    assert m.param_count() / 1e9 == pytest.approx(30.5, rel=0.02)
    assert m.param_count(active=True) / 1e9 == pytest.approx(3.3, rel=0.02)


@pytest.mark.parametrize("tokens, groups", [(1, 1), (512, 1), (513, 2), (1024, 2), (2048, 4),
                                            (4096, 8), (4097, 16), (8192, 16), (100_000, 16)])
def test_cohort_groups_follow_the_reference_scheduler(tokens, groups):
    assert cohort_groups(tokens, LayeredOptions()) == groups
    assert cohort_groups(tokens, LayeredOptions(adaptive_groups=False)) == 16


@pytest.mark.parametrize("layers, n", [(48, 16), (10, 4), (7, 7), (5, 1)])
def test_groups_partition_the_layers(layers, n):
    spans = [group_layers((g, n), layers) for g in range(n)]
    assert spans[0][0] == 0 and spans[-1][1] == layers
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(stop > first for first, stop in spans)


def test_layered_completes_every_request(pair):
    run, m = pair["layered"]
    s = run.stream
    assert np.array_equal(run.generated, s.output_tokens)
    assert np.all(np.isfinite(run.done_s)) and np.all(run.first_token_s <= run.done_s)
    assert np.all(run.first_token_s > s.arrival_s)
    # every prompt token passes every layer once: tokens x share of layers sums to the prompts
    assert (run.iter_prefill_tokens * run.iter_prefill_share).sum() == pytest.approx(s.prompt_tokens.sum())
    assert run.iter_decode_tokens.sum() == (s.output_tokens - 1).sum()
    assert m["requests"] == len(s)


def test_one_group_is_the_ordinary_iteration(coster):
    chunks, dec = [(700, 0)], np.array([900, 1500, 40])
    whole = coster.cost(chunks, dec)
    one = coster.layered_cost(chunks, dec, (0, 48))
    assert one.time_s == pytest.approx(whole.time_s, rel=1e-9)
    assert one.energy_j == pytest.approx(whole.energy_j, rel=1e-9)
    assert one.expert_bytes == pytest.approx(whole.expert_bytes, rel=1e-9)


@pytest.mark.parametrize("groups", [16, 4])
def test_expert_bytes_conserved_over_a_cohort(coster, groups):
    """Over the G iterations of a cohort the prompt reads each layer's experts once and the
    decodes read theirs every iteration: sum = mixed iteration + (G - 1) decode-only iterations."""
    chunks, dec = [(4000, 0), (1200, 0)], np.array([3000, 800])
    parts = [coster.layered_cost(chunks, dec, group_layers((g, groups), 48)) for g in range(groups)]
    expect = coster.cost(chunks, dec).expert_bytes + (groups - 1) * coster.cost([], dec).expert_bytes
    assert sum(p.expert_bytes for p in parts) == pytest.approx(expect, rel=1e-9)


def test_expert_bytes_are_the_model_s_expert_weights(coster):
    """A prompt of 512 tokens routes tokens to every expert of every layer (balanced routing):
    the memory model reads each expert's weights once, 30.5B-parameter model's routed experts in
    bf16, whatever the tensor parallelism (each of the 2 GPUs reads its half)."""
    m = coster.system.workload.model
    expert_params = m.n_layers * m.moe.n_experts * m.ffn_params(m.moe.d_ff_expert)
    assert coster.cost([(512, 0)], np.zeros(0, dtype=np.int64)).expert_bytes == pytest.approx(2 * expert_params, rel=1e-6)
    # one decoding request: top-8 experts per layer
    one = coster.cost([], np.array([100])).expert_bytes
    assert one == pytest.approx(2 * m.n_layers * 8 * m.ffn_params(m.moe.d_ff_expert), rel=1e-6)


def test_layered_reads_fewer_expert_bytes_than_chunked(pair):
    chunked, layered = pair["chunked"][1], pair["layered"][1]
    assert layered["expert_weight_bytes"] < chunked["expert_weight_bytes"]
    assert layered["ttft_s"]["mean"] < chunked["ttft_s"]["mean"]


def test_dense_models_read_no_expert_bytes():
    system = load_config_text("""
name: t
workload: {model: llama2-7b}
hardware: {gpu: a100-80gb}
mapper: {name: gpu}
scenario: {kind: serving, arrivals: {process: poisson, rate_per_s: 5, num_requests: 4},
           policy: {name: layered, num_groups: 4}}
""").main
    run = serve(system, system.scenario)
    assert run.iter_expert_bytes.sum() == 0
    assert np.array_equal(run.generated, run.stream.output_tokens)


def test_fused_moe_is_faster_and_keeps_its_bytes():
    on = IterationCoster(_system("layered"))
    off = IterationCoster(_system("layered", ["mapper.fused_moe=false"]))
    chunks, dec = [(512, 0)], np.zeros(0, dtype=np.int64)
    a, b = on.cost(chunks, dec), off.cost(chunks, dec)
    assert a.time_s < b.time_s
    assert a.expert_bytes == pytest.approx(b.expert_bytes, rel=1e-12)
    # and never faster than the bytes through HBM allow
    assert a.time_s > a.expert_bytes / on.devices / on.peak_memory_bw()


def test_bad_layered_options_are_config_errors():
    with pytest.raises(ConfigError):
        load_config_text("""
name: t
workload: {model: llama2-7b}
hardware: {gpu: a100-80gb}
mapper: {name: gpu}
scenario: {kind: serving, arrivals: {process: poisson, rate_per_s: 5, num_requests: 4},
           policy: {name: layered, token_budget: 8, max_num_seqs: 16}}
""")


@pytest.mark.parametrize("name", ["chunked", "layered"])
def test_new_configs_stay_within_the_ci_budget(name):
    """The cost of a run is its pass simulations (each ~0.1 s of one layer here; the wall clock
    of this shared machine is no measure): 10 requests of either config need at most 200."""
    system = _system(name, ["scenario.arrivals.num_requests=10"])
    run = serve(system, system.scenario)
    assert np.array_equal(run.generated, run.stream.output_tokens)
    assert run.simulations <= 200
    assert run.coster.extend          # balanced routing: one layer simulated, extended


def test_layer_split_of_one_layer_equals_every_layer_simulated():
    """The per-layer composition from the one-layer extension equals the one from a simulation
    of every layer (balanced routing: identical layers), group by group."""
    system = _system("layered", ["workload.model.n_layers=4"])
    one, every = IterationCoster(system), IterationCoster(system)
    every._whole_model()
    chunks, dec = [(1500, 0)], np.array([2000, 300, 77])
    for g in range(4):
        a = one.layered_cost(chunks, dec, group_layers((g, 4), 4))
        b = every.layered_cost(chunks, dec, group_layers((g, 4), 4))
        assert a.time_s == pytest.approx(b.time_s, rel=2e-3)
        assert a.energy_j == pytest.approx(b.energy_j, rel=2e-3)
        assert a.expert_bytes == pytest.approx(b.expert_bytes, rel=1e-9)
