"""`hwsim calibrate gpu --out DIR`: measure this machine's GPU for hwsim's GPU model."""
from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def calibrate():
    """Measure real hardware and write a profile hwsim's models can read."""


@calibrate.command("gpu")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the CSV files and env.json (a profile: copy it to "
              "configs/profiles/NAME/ and use `gpu: {preset: ..., profile: NAME}`).")
@click.option("--smoke", is_flag=True, help="One point per section (checks the setup in seconds).")
def gpu(out_dir: Path, smoke: bool):
    """GEMMs, attention, elementwise kernels (alone and right after their GEMM), launch costs,
    copies and whole LLaMA-2-7B-shaped decoder steps on CUDA device 0 (about 30 s on an H100/H200; needs PyTorch with CUDA:
    pip install 'hwsim[calibrate]')."""
    from hwsim.calibrate import gpu_bench
    problem = gpu_bench.availability_problem()
    if problem:
        click.echo(f"error: hwsim calibrate gpu: {problem}", err=True)
        sys.exit(2)
    env = gpu_bench.run(str(out_dir), smoke=smoke)
    from hwsim.hw.gpu_profile import write_readme
    write_readme(out_dir, env)
    click.echo(f"profile of {env['gpu_name']} written to {out_dir}/ in {env['seconds']} s")
