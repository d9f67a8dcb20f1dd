/* libplugin.so: loaded with dlopen at run time. Large bss (must read as zero), a
 * thread-local counter (dynamic TLS through __tls_get_addr) and a function pointer
 * table (relocations). */
static char big_bss[3 << 20];
static __thread int calls;

static int mul(int a, int b) { return a * b; }
static int (*const ops[])(int, int) = {mul};

int plugin_mul(int a, int b)
{
    calls++;
    return ops[0](a, b);
}

int plugin_calls(void) { return calls; }

int plugin_bss_zero(void)
{
    for (unsigned i = 0; i < sizeof big_bss; i += 4096)
        if (big_bss[i])
            return 0;
    big_bss[sizeof big_bss - 1] = 1;
    return 1;
}
