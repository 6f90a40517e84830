"""GPU model against measured cards (issue 11): median and max |error| per kind and mode.

    python benchmarks/bench_gpu_fidelity.py            # the table, both measured cards
    python benchmarks/bench_gpu_fidelity.py --rows     # also every decoder step / prefill

Datasheet mode never saw these measurements; profile mode predicts GEMM and attention rows
leave-one-out and whole decoder steps / prefills from microbenchmarks only (hwsim.validate.gpu_fidelity).
The run-to-run spread of the card (the second calibration run, run2/) is printed as the floor.
"""
import sys
import time

import numpy as np

from hwsim.validate.gpu_fidelity import measured_card, predictions, summarize
from hwsim.hw.gpu_profile import profiles_dir, read_csv

TARGETS = {("gemm", "datasheet"): 0.10, ("decode_step", "datasheet"): 0.10,
           ("prefill", "datasheet"): 0.10, ("gemm", "profile"): 0.05,
           ("decode_step", "profile"): 0.05, ("prefill", "profile"): 0.05,
           ("attention", "profile"): 0.05}


def run_to_run(card: str) -> float:
    a = read_csv(profiles_dir() / card / "decoder_step.csv")
    b = read_csv(profiles_dir() / card / "run2" / "decoder_step.csv")
    return float(np.median([abs(float(x["us"]) / float(y["us"]) - 1) for x, y in zip(a, b)]))


def main(show_rows: bool):
    for card in ("h200-sxm", "h100-sxm"):
        t0 = time.perf_counter()
        preds = predictions(card)
        print(f"\n{measured_card(card)} (configs/profiles/{card}/), "
              f"run-to-run median |diff| of whole steps: {run_to_run(card):.1%}")
        print(f"{'kind':28s} {'mode':10s} {'n':>4s} {'median|err|':>12s} {'max|err|':>9s}  target")
        for r in summarize(preds):
            target = TARGETS.get((r["kind"], r["mode"]))
            mark = "" if target is None else f"<= {target:.0%} " + (
                "met" if r["median_abs_err"] <= target else "MISSED")
            print(f"{r['kind']:28s} {r['mode']:10s} {r['n']:4d} {r['median_abs_err']:12.1%} "
                  f"{r['max_abs_err']:9.1%}  {mark}")
        if show_rows:
            for p in preds:
                if p.kind in ("decode_step", "prefill"):
                    print(f"  {p.kind:12s} {p.mode:9s} {p.label:16s} measured {p.measured_us / 1e3:8.3f} ms"
                          f"  model {p.predicted_us / 1e3:8.3f} ms  {p.error:+.1%}")
        print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main("--rows" in sys.argv)
