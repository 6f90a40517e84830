"""The GPU baseline against measured A100 GEMMs (LLMCompass real-hardware data)."""
import pytest
import yaml

from hwsim.configs import PRESETS_DIR
from hwsim.hw.gpu import GPUSpec, matmul_compute_ns


def a100_80():
    data = yaml.safe_load((PRESETS_DIR / "a100-80gb.yaml").read_text())
    data.pop("component")
    return GPUSpec(**data)


def gemm_ms(gpu, m, n=12288, k=12288):
    compute = matmul_compute_ns(gpu, "fp16", m, n, k)
    memory = (k * n + m * k + m * n) * 2 / gpu.sustained_bw * 1e9
    return max(compute, memory) / 1e6


def test_held_out_a100_point():
    """LLMCompass measured fp16 M=1024, N=K=12288 at 1.20 ms on an A100 (not used in the fit)."""
    assert gemm_ms(a100_80(), 1024) == pytest.approx(1.20, rel=0.10)


def test_fit_points_reproduced():
    gpu = a100_80()
    assert gemm_ms(gpu, 8192) == pytest.approx(8.62, rel=0.05)
    assert gemm_ms(gpu, 64) == pytest.approx(0.19, rel=0.05)


def test_efficiency_grows_with_m_and_stays_below_peak():
    gpu = a100_80()
    rates = [2 * m * 12288 * 12288 / (gemm_ms(gpu, m) * 1e-3) for m in (64, 256, 1024, 4096, 16384)]
    assert all(a <= b * 1.02 for a, b in zip(rates, rates[1:]))
    assert max(rates) <= 312e12


def test_wave_quantization_makes_one_more_tile_cost_a_wave():
    gpu = a100_80()
    full = matmul_compute_ns(gpu, "fp16", 128 * 108, 128, 4096)       # exactly one wave
    plus = matmul_compute_ns(gpu, "fp16", 128 * 108 + 1, 128, 4096)   # one tile more
    assert plus == pytest.approx(2 * full)
