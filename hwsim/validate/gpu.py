"""GPU baselines against measured GPUs. Issue 11's fidelity rows (datasheet and profile modes
against the H200 measurements) belong here too."""
from __future__ import annotations

from hwsim.validate import Within, claim

SYSTEM = "GPU"


def a100_gemm_ms(m: int, n: int = 12288, k: int = 12288) -> float:
    """fp16 GEMM on the A100 80 GB preset: max(tiled tensor-core time, operands over the
    sustained bandwidth), without the per-kernel launch overhead (a measured kernel time)."""
    import yaml

    from hwsim.configs import PRESETS_DIR
    from hwsim.hw.gpu import GPUSpec, matmul_compute_ns
    data = yaml.safe_load((PRESETS_DIR / "a100-80gb.yaml").read_text())
    data.pop("component")
    gpu = GPUSpec(**data)
    compute = matmul_compute_ns(gpu, "fp16", m, n, k)
    memory = (k * n + m * k + m * n) * 2 / gpu.sustained_bw * 1e9
    return max(compute, memory) / 1e6


@claim(id="gpu.a100_gemm_1024x12288x12288", system=SYSTEM,
       claim="An A100 runs an fp16 GEMM M=1024, N=K=12288 in 1.20 ms (held out of the fit)",
       source="LLMCompass (Zhang et al., ISCA'24) real-A100 GEMM measurements",
       config="configs/presets/a100-80gb.yaml (hwsim.validate.gpu.a100_gemm_ms)",
       metric="GEMM time", published=1.20, unit="ms",
       band=Within(0.10, "a measurement the efficiency fit did not see: ±10%"))
def _():
    return a100_gemm_ms(1024)
