"""Speed of the DRAM models: the numba command-level reference on 100k random requests (after
compilation) and the closed form. Prints figures; asserts nothing.

    python benchmarks/bench_dram.py
"""
import time

import numpy as np

from hwsim.hw.dram import PRESETS, stream_cost
from hwsim.hw.dram_reference import simulate_stream


def main():
    t = PRESETS["hbm2"]
    rng = np.random.default_rng(0)
    channel_bytes = t.capacity_bytes // t.channels
    for n in (10_000, 100_000, 1_000_000):
        addresses = rng.integers(0, channel_bytes // t.burst_bytes, n) * t.burst_bytes
        is_write = rng.random(n) < 0.5
        simulate_stream(t, addresses[:100], is_write[:100])      # compile or load the cache
        start = time.perf_counter()
        simulate_stream(t, addresses, is_write)
        ref = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(1000):
            stream_cost(t, n * t.burst_bytes, "random", read_fraction=0.5, channels=1)
        closed = (time.perf_counter() - start) / 1000
        print(f"{n:>9,} requests: reference {ref * 1e3:8.1f} ms ({n / ref / 1e6:5.1f} M req/s), "
              f"closed form {closed * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
