"""linpack_np (FunctionBench linpack, NumPy): solves A x = b for a seeded N x N system
with LAPACK (numpy.linalg.solve) and answers whether the scaled residual is small and
the solution's sum (8 significant digits).

Payload: {"n": N}.
"""
import numpy as np


def handle(event):
    n = int(event.get("n", 100))
    rng = np.random.default_rng(1000 + n)
    a = rng.random((n, n)) - 0.5
    b = a.sum(axis=1)  # the exact solution is all ones
    x = np.linalg.solve(a, b)
    residual = np.linalg.norm(a @ x - b, np.inf) / (np.linalg.norm(a, np.inf) * np.linalg.norm(x, np.inf) * n)
    return {"n": n, "residual_ok": bool(residual < 1e-10), "x_sum": float("%.8g" % x.sum()),
            "flops": int(2 * n ** 3 / 3 + 2 * n ** 2)}
