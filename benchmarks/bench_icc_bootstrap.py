"""Mixed-model ICC bootstrap: the vectorised closed form against refitting statsmodels MixedLM per resample.

Why the closed form (mskbench.stats.icc_mixed): 10,000 subject resamples per
agreement group, and a stats run has a few hundred groups. This prints the
time of ``--resamples`` closed-form resamples, the time of a few MixedLM fits
extrapolated to the same count, their ratio, and the largest difference
between the two ICCs on the resamples that were refitted (the closed form
must equal the refit, not approximate it). Absolute times on a shared machine
are noisy; the ratio is the number to read.

    python benchmarks/bench_icc_bootstrap.py [--subjects 40] [--resamples 10000] [--fits 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mskbench.stats.icc_mixed import bootstrap_icc, closed_form_icc, mixedlm_icc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--fits", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    subject = rng.normal(0, 1, args.subjects)
    ref = 2 + subject + rng.normal(0, 0.5, args.subjects)
    pred = 2.3 + subject + rng.normal(0, 0.5, args.subjects)
    ids = np.arange(args.subjects)

    began = time.perf_counter()
    bootstrap_icc(ref, pred, ids, np.random.default_rng(1), args.resamples)
    closed = time.perf_counter() - began

    worst = 0.0
    began = time.perf_counter()
    for _ in range(args.fits):
        drawn = rng.integers(0, args.subjects, args.subjects)
        fitted = mixedlm_icc(ref[drawn], pred[drawn], np.arange(args.subjects))["icc_lmm"]
        worst = max(worst, abs(fitted - closed_form_icc(ref[drawn], pred[drawn])))
    refit = (time.perf_counter() - began) / args.fits * args.resamples

    print(f"{args.resamples} resamples of {args.subjects} subjects")
    print(f"  closed form, vectorised : {closed:8.3f} s")
    print(f"  MixedLM refits (extrap.): {refit:8.1f} s  ({args.fits} fits timed)")
    print(f"  ratio refit / closed    : {refit / closed:8.0f} x")
    print(f"  largest |ICC difference| on the refitted resamples: {worst:.2e}")


if __name__ == "__main__":
    main()
