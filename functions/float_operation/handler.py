"""float_operation: N iterations of libm floating-point work (sin, cos, sqrt, exp,
log, atan2, hypot). Answers the accumulated sums (exactly reproducible: same glibc
libm on the host and in the guest: the image maps the host's libc and libm).

Payload: {"n": N}.
"""
import math


def handle(event):
    n = int(event.get("n", 1000))
    s_trig = s_root = s_exp = 0.0
    for i in range(n):
        x = i * 0.001 + 0.5
        s_trig += math.sin(x) * math.cos(x) + math.atan2(x, 1.0 + x)
        s_root += math.sqrt(x) + math.hypot(x, 3.0)
        s_exp += math.log(x) + math.exp(-x)
    return {
        "n": n,
        "trig": s_trig,
        "root": s_root,
        "exp": s_exp,
        "total": math.fsum((s_trig, s_root, s_exp)),
    }
