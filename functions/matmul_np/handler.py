"""matmul_np (FunctionBench matmul, NumPy): multiplies two N x N float64 matrices drawn
from a seeded generator and answers the trace and Frobenius norm of the product (8
significant digits: BLAS kernels may sum in another order on another CPU).

Payload: {"n": N}.
"""
import numpy as np


def sig(x):
    return float("%.8g" % x)


def handle(event):
    n = int(event.get("n", 128))
    rng = np.random.default_rng(n)
    a = rng.random((n, n))
    b = rng.random((n, n))
    c = a @ b
    return {"n": n, "trace": sig(np.trace(c)), "norm": sig(np.linalg.norm(c))}
