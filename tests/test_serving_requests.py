"""Request streams for serving (hwsim.workloads.arrivals): arrival processes hold their stated
mean rate and burstiness, lengths their distributions, traces read in the layouts they claim."""
import numpy as np
import pytest

from hwsim.spec import ConfigError
from hwsim.workloads.arrivals import ArrivalSpec, LengthSpec, read_trace


def _stream(**kw):
    return ArrivalSpec(**kw).generate()


def _cv(x):
    return float(np.std(x) / np.mean(x))


def test_poisson_has_its_rate_and_unit_cv():
    s = _stream(process="poisson", rate_per_s=4.0, num_requests=40_000, seed=1)
    gaps = np.diff(s.arrival_s)
    assert np.mean(gaps) == pytest.approx(0.25, rel=0.02)
    assert _cv(gaps) == pytest.approx(1.0, rel=0.03)
    assert s.arrival_s[0] == 0 and np.all(gaps >= 0)


@pytest.mark.parametrize("cv", [0.5, 3.0])
def test_gamma_has_its_rate_and_stated_cv(cv):
    s = _stream(process="gamma", rate_per_s=10.0, cv=cv, num_requests=60_000, seed=2)
    gaps = np.diff(s.arrival_s)
    assert np.mean(gaps) == pytest.approx(0.1, rel=0.04)
    assert _cv(gaps) == pytest.approx(cv, rel=0.06)


def test_seeded():
    a = _stream(rate_per_s=2.0, num_requests=100, seed=7)
    b = _stream(rate_per_s=2.0, num_requests=100, seed=7)
    c = _stream(rate_per_s=2.0, num_requests=100, seed=8)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.arrival_s, c.arrival_s)


def test_length_distributions():
    rng = np.random.default_rng(0)
    assert set(LengthSpec(dist="fixed", tokens=77).sample(rng, 50, "prompt")) == {77}
    u = LengthSpec(dist="uniform", low=10, high=20).sample(rng, 20_000, "prompt")
    assert u.min() == 10 and u.max() == 20 and np.mean(u) == pytest.approx(15, rel=0.01)
    ln = LengthSpec(dist="lognormal", mean=500, sigma=0.5, max_tokens=100_000).sample(rng, 50_000, "prompt")
    assert np.mean(ln) == pytest.approx(500, rel=0.02)
    sg_in = LengthSpec().sample(rng, 50_000, "prompt")
    sg_out = LengthSpec().sample(rng, 50_000, "output")
    assert np.mean(sg_in) == pytest.approx(80, rel=0.05)          # the shipped ShareGPT-like means
    assert np.mean(sg_out) == pytest.approx(296, rel=0.06)        # (output slightly cut by the cap)
    assert sg_out.max() <= 2048 and sg_in.min() >= 1


@pytest.mark.parametrize("bad", [dict(process="poisson", num_requests=5),
                                 dict(process="poisson", rate_per_s=1.0),
                                 dict(process="trace"),
                                 dict(process="poisson", rate_per_s=1.0, num_requests=5, cv=2.0)])
def test_incomplete_specs_refused(bad):
    with pytest.raises(ValueError):
        ArrivalSpec(**bad)


def test_trace_ours(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens\n1.5,100,20\n0.5,10,2\n\n3,7,1\n")
    s = read_trace(str(p))
    assert list(s.arrival_s) == [0.0, 1.0, 2.5]                  # sorted, shifted to start at 0
    assert list(s.prompt_tokens) == [10, 100, 7] and list(s.output_tokens) == [2, 20, 1]


def test_trace_azure_layout(tmp_path):
    p = tmp_path / "azure.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                 "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n")
    s = read_trace(str(p))
    assert s.arrival_s[1] == pytest.approx(50.9951690 - 46.6805900, abs=1e-5)
    assert list(s.prompt_tokens) == [374, 396] and list(s.output_tokens) == [44, 109]


def test_trace_vidur_layout(tmp_path):
    p = tmp_path / "vidur.csv"
    p.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,300,30\n0.2,40,4\n")
    assert list(read_trace(str(p)).output_tokens) == [30, 4]


@pytest.mark.parametrize("body,line,what", [
    ("arrival_s,prompt_tokens,output_tokens\n0,10,2\n1,x,3\n", 3, "prompt"),
    ("arrival_s,prompt_tokens,output_tokens\n0,10,2\n-1,5,3\n", 3, "arrival"),
    ("arrival_s,prompt_tokens,output_tokens\n0,10,2.5\n", 2, "output"),
    ("arrival_s,prompt_tokens,output_tokens\n0,10\n", 2, "columns"),
    ("time,prompt_tokens,output_tokens\n0,10,2\n", 1, "arrival"),
])
def test_bad_trace_rows_name_file_and_line(tmp_path, body, line, what):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(ConfigError) as err:
        read_trace(str(p))
    assert err.value.file == str(p) and err.value.line == line and what in str(err.value)
