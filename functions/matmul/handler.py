"""matmul: pure-Python N x N matrix multiplication C = A x B with deterministic
integer-valued float entries (so every sum is exact and functions/matmul_c, doing the
same in C, must print the same numbers). Answers trace, sum and a position-weighted
checksum of C.

Payload: {"n": N}.
"""


def matrices(n):
    a = [[float((i * n + j) % 13 - 6) for j in range(n)] for i in range(n)]
    b = [[float((i * 7 + j * 3) % 11 - 5) for j in range(n)] for i in range(n)]
    return a, b


def matmul(a, b):
    bt = list(zip(*b))
    return [[sum(x * y for x, y in zip(row, col)) for col in bt] for row in a]


def handle(event):
    n = int(event.get("n", 64))
    a, b = matrices(n)
    c = matmul(a, b)
    checksum = 0.0
    for i, row in enumerate(c):
        for j, v in enumerate(row):
            checksum += v * ((i * 31 + j * 17) % 101)
    return {
        "n": n,
        "trace": sum(c[i][i] for i in range(n)),
        "sum": sum(sum(row) for row in c),
        "checksum": checksum,
    }
