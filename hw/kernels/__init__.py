"""Functional (numba) models of the kernels the hardware components claim to run.

Each kernel computes the real output of an op the way its unit does — operand format, the order
in which partial sums are formed and the precision each partial sum is kept in — so that
`hwsim run CONFIG --check` (hwsim.check) can compare it with a numpy float64 reference:

- numerics:   number formats (fp16, bf16, fp8 e4m3, fp32 rounding in numba), the error metric
              and the tolerance of each accumulation precision
- systolic:   GEMM on an R x C systolic array (ws/os/is fold order; int8->int32, fp->fp32)
- conv:       convolution by im2col onto the systolic GEMM; depthwise convolution, direct
- pim:        bank-partitioned GEMV of a Newton/HBM-PIM style bank-level PIM, and the attention
              GEMVs in NeuPIMs' layout
- attention:  tiled (flash-style, online-softmax) attention with GQA and causal masking
- sparse:     N:M structured-sparse GEMM from compressed values + indices
- vector:     vector-unit ops (layernorm, rmsnorm, softmax, gelu, swiglu, rope, add)
- collective: ring all-reduce in the buffer's format

Importing this package imports numba; plain `hwsim run` never imports it (only `--check` does).
"""
