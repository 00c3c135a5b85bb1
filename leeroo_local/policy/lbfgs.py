"""Limited-memory BFGS for smooth convex losses: the trainer's optimiser, in numpy alone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def minimize(fun: Objective, x0: np.ndarray, max_iter: int = 200, memory: int = 10,
             tol: float = 1e-5, min_iter: int = 0) -> tuple[np.ndarray, float, int]:
    """Minimise fun (returning value and gradient) from x0; returns (x, value, iterations).

    Stops when the gradient's largest component falls below tol x max(1, |f|), or the value
    stops changing, or after max_iter steps; Armijo backtracking keeps every step a descent.
    min_iter steps are taken regardless: a warm start sits where the gradient is small, yet
    the new optimum may lie far along the loss's flat directions.
    """
    x = x0.astype(np.float64).copy()
    f, g = fun(x)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    it = 0
    for it in range(1, max_iter + 1):
        if it > min_iter and np.max(np.abs(g)) <= tol * max(1.0, abs(f)):
            break
        d = -_two_loop(g, s_hist, y_hist)
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            d, slope = -g, -float(g @ g)
        step = 1.0 if s_hist else min(1.0, 1.0 / max(np.linalg.norm(g), 1e-12))
        while True:
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        s, y = x_new - x, g_new - g
        if float(s @ y) > 1e-12:
            s_hist.append(s)
            y_hist.append(y)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        converged = it > min_iter and abs(f - f_new) <= 1e-10 * max(1.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if converged:
            break
    return x, f, it


def _two_loop(g: np.ndarray, s_hist: list[np.ndarray], y_hist: list[np.ndarray]) -> np.ndarray:
    q = g.copy()
    alphas = []
    for s, y in zip(reversed(s_hist), reversed(y_hist)):
        a = float(s @ q) / float(y @ s)
        alphas.append(a)
        q -= a * y
    if s_hist:
        q *= float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
    for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
        b = float(y @ q) / float(y @ s)
        q += (a - b) * s
    return q
