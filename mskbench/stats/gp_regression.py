"""Gaussian-process regression of prediction- on reference-derived biomarkers (DESIGN §9).

The source study fits it where the straight line's assumptions fail: when
Bland–Altman falls back to its non-parametric limits (Shapiro–Wilk rejects
normal differences, or Levene rejects a constant spread; see
:func:`mskbench.stats.agreement.bland_altman`). scikit-learn's
``GaussianProcessRegressor`` with ``C * RBF + WhiteKernel`` on normalised
targets; the band is the predictive mean ± 1.96 σ, where σ includes the
fitted white noise (where 95 % of new predictions should fall, not only the
uncertainty of the mean). A fit whose optimiser stops early or whose
hyperparameters end on a bound is reported as not computed, with the reason.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from mskbench.stats.agreement import Z_975

GRID_POINTS = 50
MAX_ITER = 15000
"""scipy's L-BFGS-B default, which scikit-learn's own optimiser uses."""


class GPNotConverged(Exception):
    """The optimiser stopped before converging, or a hyperparameter ended on its bound."""


def _lbfgs(max_iter: int):
    """scikit-learn's default L-BFGS-B step with an iteration cap, raising instead of warning on failure."""

    def run(objective, initial_theta, bounds):
        result = optimize.minimize(objective, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds,
                                   options={"maxiter": max_iter})
        if not result.success:
            raise GPNotConverged(f"L-BFGS-B stopped after {result.nit} iteration(s): {result.message}")
        return result.x, result.fun

    return run


def _kernel(x: np.ndarray):
    """C * RBF + white noise, the length scale started at the data's SD and bounded by its range."""
    spread = float(np.ptp(x))
    scale = float(np.std(x))
    return (ConstantKernel(1.0, (1e-3, 1e3))
            * RBF(length_scale=scale, length_scale_bounds=(spread / 100, spread * 100))
            + WhiteKernel(noise_level=0.1, noise_level_bounds=(1e-5, 10.0)))


def fit_gp(reference: np.ndarray, prediction: np.ndarray, seed: int = 0, grid_points: int = GRID_POINTS,
           max_iter: int = MAX_ITER) -> dict[str, object]:
    """Fit prediction ~ GP(reference); the band on a grid over the reference range, or why not.

    Returns status ``computed`` with ``grid``, ``mean``, ``lower``, ``upper``
    (lists), ``noise_sd`` (fitted white-noise SD in the biomarker's unit),
    ``length_scale`` (reference units), ``coverage`` (fraction of the pairs
    inside the band) and ``kernel``; or status ``not computed`` with ``reason``.
    """
    x = np.asarray(reference, float)
    y = np.asarray(prediction, float)
    if len(x) < 3 or np.ptp(x) == 0:
        return {"status": "not computed", "reason": "fewer than 3 distinct reference values; nothing to regress on"}
    gp = GaussianProcessRegressor(_kernel(x), normalize_y=True, optimizer=_lbfgs(max_iter),
                                  n_restarts_optimizer=2, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            gp.fit(x[:, None], y)
        except GPNotConverged as exc:
            return {"status": "not computed", "reason": f"GP fit did not converge: {exc}"}
        except (np.linalg.LinAlgError, ValueError) as exc:
            return {"status": "not computed", "reason": f"GP fit failed: {str(exc).splitlines()[0]}"}
    problems = [str(w.message).split(". ")[0] for w in caught if issubclass(w.category, ConvergenceWarning)]
    if problems:
        return {"status": "not computed", "reason": f"GP fit did not converge: {problems[0]}"}
    grid = np.linspace(x.min(), x.max(), grid_points)
    mean, sd = gp.predict(grid[:, None], return_std=True)
    at_pairs, sd_pairs = gp.predict(x[:, None], return_std=True)
    inside = np.abs(y - at_pairs) <= Z_975 * sd_pairs
    params = gp.kernel_.get_params()
    noise_sd = float(np.sqrt(params["k2__noise_level"]) * np.std(y))  # noise is fitted on y / std(y)
    return {
        "status": "computed", "reason": "", "kernel": str(gp.kernel_),
        "noise_sd": noise_sd, "length_scale": float(params["k1__k2__length_scale"]),
        "coverage": float(np.mean(inside)),
        "grid": grid.tolist(), "mean": mean.tolist(),
        "lower": (mean - Z_975 * sd).tolist(), "upper": (mean + Z_975 * sd).tolist(),
    }


def gp_row(reference: np.ndarray, prediction: np.ndarray, rejected: bool, why: str, seed: int = 0
           ) -> dict[str, object]:
    """One `stats_gp_regression` row: the fit where normality was rejected, else why it does not apply.

    ``rejected`` and ``why`` come from the Bland–Altman tests of the same pairs;
    the curve columns are JSON lists so the table stays one row per group.
    """
    if not rejected:
        return {"status": "not applicable", "reason": why}
    fit = fit_gp(reference, prediction, seed=seed)
    for column in ("grid", "mean", "lower", "upper"):
        fit[column] = json.dumps(fit[column]) if column in fit else None
    return fit | {"reason": fit["reason"] or why}
