"""Ring-Attention vs TokenRing as schedules (issue 13 item 7; hw/interconnect/seqpar.py,
mappers/seqpar.py): the bytes on each link in each step are the closed forms, with infinite
latency-free links both take exactly the compute-only time, and as the degree grows
communication stops hiding behind compute under Ring-Attention first."""
import pytest
import yaml

from hwsim.configs import MODELS_DIR, PRESETS_DIR
from hwsim.hw.gpu import GPUSpec
from hwsim.hw.interconnect import FullMeshSpec, SwitchSpec
from hwsim.hw.interconnect.seqpar import (LSE_BYTES, ring_kv_bytes, tokenring_out_bytes,
                                          tokenring_q_bytes)
from hwsim.mappers.seqpar import SequenceParallelSpec, run_seqpar
from hwsim.workloads.models import ModelSpec


def gpu() -> GPUSpec:
    spec = yaml.safe_load((PRESETS_DIR / "h100-sxm.yaml").read_text())
    spec.pop("component")
    return GPUSpec(**spec)


def model(name="llama2-7b") -> ModelSpec:
    return ModelSpec(**yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text()))


def mesh(n, bw=450 / 7, latency=1700.0):
    return FullMeshSpec(kind="full_mesh", devices=n, link_bw_gbps=bw, link_latency_ns=latency,
                        energy_pj_per_bit=5.0).build()


def run(scheme, n, seq=32768, net=None, m=None, causal=True):
    return run_seqpar(SequenceParallelSpec(scheme=scheme, degree=n, seq_len=seq, causal=causal),
                      m or model(), "bf16", gpu(), net or mesh(n))


def flows(result):
    """(label prefix, step, src, dst) -> bytes of every flow, read off the schedule's link demands."""
    out = {}
    for t in result.schedule.tasks:
        for r, w in t.demands.items():
            if r.startswith("link:"):
                src, dst = r[len("link:dev"):].split("->dev")
                kind, step = t.name.split(".")[0], int(t.name.split(".s")[1].split(":")[0])
                out[(kind, step, int(src), int(dst))] = w
    return out


def test_closed_forms_of_the_bytes_per_step():
    """LLaMA-2-7B (32 heads, 32 KV heads, head dim 128), BF16, B = 1,024 tokens per block:
    Ring-Attention sends K and V, 2 x 1024 x 32 x 128 x 2 B = 16 MiB; TokenRing sends Q,
    1024 x 32 x 128 x 2 B = 8 MiB, and one block output with its FP32 lse, 8 MiB + 128 KiB."""
    assert ring_kv_bytes(1024, 32, 128, 2) == 16 * 2**20
    assert tokenring_q_bytes(1024, 32, 128, 2) == 8 * 2**20
    assert tokenring_out_bytes(1024, 32, 128, 2) == 8 * 2**20 + 1024 * 32 * LSE_BYTES


@pytest.mark.parametrize("n", [3, 4])
def test_each_link_carries_the_closed_form_in_each_step(n):
    """Ring-Attention: in steps 0..n-2 exactly the links i -> i+1 carry one K/V block each.
    TokenRing: the query block on i -> i+1 in steps 0..n-2, and in step s >= 1 one block output
    on i -> i-s (both directions of the ring at s = 1: bidirectional)."""
    m = model()
    seq = 3 * 8192 if n == 3 else 32768
    b = seq // n
    ring = flows(run("ring_attention", n, seq))
    assert ring == {("kv", s, i, (i + 1) % n): ring_kv_bytes(b, m.kv_heads, m.hd, 2)
                    for s in range(n - 1) for i in range(n)}
    token = flows(run("tokenring", n, seq))
    want = {("q", s, i, (i + 1) % n): tokenring_q_bytes(b, m.n_heads, m.hd, 2)
            for s in range(n - 1) for i in range(n)}
    want |= {("out", s, i, (i - s) % n): tokenring_out_bytes(b, m.n_heads, m.hd, 2)
             for s in range(1, n) for i in range(n)}
    assert token == want
    links_step1 = {(src, dst) for (k, s, src, dst) in token if s == 1}
    assert (0, 1) in links_step1 and (1, 0) in links_step1


@pytest.mark.parametrize("scheme", ["ring_attention", "tokenring"])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_infinite_links_give_the_compute_only_time(scheme, n):
    """With links of unbounded bandwidth and no latency nothing is exposed: the pass is the
    busiest GPU's n block computes and n - 1 merges, the same for both schemes."""
    fast = mesh(n, bw=1e12, latency=0.0)
    r = run(scheme, n, net=fast)
    assert r.makespan_ns == pytest.approx(r.compute_ns, rel=1e-9)
    other = run("tokenring" if scheme == "ring_attention" else "ring_attention", n, net=fast)
    assert r.compute_ns == pytest.approx(other.compute_ns, rel=1e-12)


def test_at_high_degree_tokenring_exposes_less_than_ring_attention():
    """128K tokens of LLaMA-2-7B on H100s in a full mesh (450/7 GB/s per pair, assumed): per
    step the compute falls as 1/n^2 and the bytes as 1/n. Ring-Attention's K/V (2 B H d per
    step on one link) hide at degree 4 and not at 16; TokenRing halves the bytes per link (Q one
    way, outputs on other links) and exposes less at 16."""
    low = run("ring_attention", 4, 131072)
    assert low.exposed_ns < 1e-6 * low.makespan_ns
    ring, token = run("ring_attention", 16, 131072), run("tokenring", 16, 131072)
    assert ring.exposed_ns > 0.1 * ring.compute_ns
    assert token.exposed_ns < 0.5 * ring.exposed_ns
    assert token.makespan_ns < ring.makespan_ns


def test_on_a_switch_tokenring_gains_no_port_bandwidth():
    """Behind one switch every flow of a device leaves by its one port: TokenRing's Q plus
    outputs (about 2 B H d per step for MHA) weigh as much as Ring-Attention's K/V, so at a
    degree where the ring is exposed TokenRing is not faster by the halving it gets on a mesh."""
    n = 16
    port = SwitchSpec(kind="switch", devices=n, port_bw_gbps=450 / 7, link_latency_ns=850,
                      energy_pj_per_bit=5.0).build()
    ring, token = run("ring_attention", n, 131072, port), run("tokenring", n, 131072, port)
    assert token.makespan_ns > 0.95 * ring.makespan_ns


def test_gqa_favours_ring_attention_bytes():
    """With grouped-query attention the K/V block is heads / kv_heads times smaller than Q:
    LLaMA-3-8B (32 heads, 8 KV heads) sends 2 x 8 = 16 head-widths per step by ring, 32 by
    TokenRing's Q alone."""
    m = model("llama3-8b")
    assert ring_kv_bytes(1024, m.kv_heads, m.hd, 2) == tokenring_q_bytes(1024, m.n_heads, m.hd, 2) / 2


def test_degree_must_divide_the_sequence():
    with pytest.raises(ValueError, match="divide"):
        run("ring_attention", 3, 32768)


def test_shipped_config_shows_tokenring_hiding_more(tmp_path):
    """configs/tokenring-llama.yaml (degree 16): both schemes compute the same; TokenRing's
    exposed communication is below Ring-Attention's, and so is its layer time."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    r = evaluate(load_config(CONFIG_DIR / "tokenring-llama.yaml"))
    mine, ring = r.main.metrics.seqpar, r.baselines["ring_attention"].metrics.seqpar
    assert mine["compute_only_s"] == pytest.approx(ring["compute_only_s"], rel=1e-12)
    assert mine["exposed_comm_s"] < ring["exposed_comm_s"]
    assert r.speedup()["ring_attention"] > 1
    assert ring["link_bytes_per_step"]["kv"] == ring_kv_bytes(8192, 32, 128, 2)


@pytest.mark.parametrize("overrides, words", [
    (["scenario.degree=32"], ["degree 32", "16"]),
    (["scenario.seq_len=1000"], ["divide", "seq_len"]),
    (["scenario.scheme=ulysses"], ["scheme"]),
    (["workload.model=deepseek-v3"], ["latent"]),
])
def test_bad_sequence_parallel_inputs_are_refused(overrides, words, tmp_path):
    from conftest import assert_refused_in_one_line
    assert_refused_in_one_line("configs/tokenring-llama.yaml", overrides, words, str(tmp_path))
