/* matmul_c: N x N double matrix multiplication, the native twin of the matmul
 * function: same matrices (integer-valued, so every sum is exact), same response
 * format, so the responses must be identical.
 *
 * Payload: {"n": N} (1..2048, default 64).
 * Serves /dev/invoke; with THAW_INVOKE_PATH set, answers the one request in that
 * file on stdout and exits (host testing).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thaw_function.h"

#define MAX_N 2048
#define RESP_CAP 4096

/* A double as Python's json.dumps writes it; the values here are integral. */
static void py_float(char *out, size_t cap, double v)
{
    if (v == floor(v) && fabs(v) < 1e16)
        snprintf(out, cap, "%.1f", v);
    else
        snprintf(out, cap, "%.17g", v);
}

static size_t handle(const char *req, char *resp)
{
    long n = thaw_json_int(req, "n", 64);
    if (n < 1 || n > MAX_N)
        return (size_t)snprintf(resp, RESP_CAP, "{\"error\": \"ValueError: bad n\"}");
    size_t nn = (size_t)n;
    double *a = malloc(nn * nn * sizeof *a), *bt = malloc(nn * nn * sizeof *bt),
           *c = malloc(nn * nn * sizeof *c);
    if (!a || !bt || !c) {
        free(a), free(bt), free(c);
        return (size_t)snprintf(resp, RESP_CAP, "{\"error\": \"MemoryError\"}");
    }
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < nn; j++) {
            a[i * nn + j] = (double)((long)((i * nn + j) % 13) - 6);
            bt[j * nn + i] = (double)((long)((i * 7 + j * 3) % 11) - 5); /* B transposed */
        }
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < nn; j++) {
            double s = 0;
            for (size_t k = 0; k < nn; k++)
                s += a[i * nn + k] * bt[j * nn + k];
            c[i * nn + j] = s;
        }
    double trace = 0, sum = 0, checksum = 0;
    for (size_t i = 0; i < nn; i++) {
        trace += c[i * nn + i];
        double row = 0;
        for (size_t j = 0; j < nn; j++) {
            row += c[i * nn + j];
            checksum += c[i * nn + j] * (double)((i * 31 + j * 17) % 101);
        }
        sum += row;
    }
    free(a), free(bt), free(c);
    char t[64], s[64], k[64];
    py_float(t, sizeof t, trace);
    py_float(s, sizeof s, sum);
    py_float(k, sizeof k, checksum);
    return (size_t)snprintf(resp, RESP_CAP,
                            "{\"n\": %ld, \"trace\": %s, \"sum\": %s, \"checksum\": %s}", n, t,
                            s, k);
}

int main(void)
{
    return thaw_serve(handle, RESP_CAP);
}
