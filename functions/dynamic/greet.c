/* libgreet.so: a shared library the dynamic test program links against. Its
 * constructor and its relocated data check that the guest runs the loader's work. */
static const char *prefix = "unset";
static int constructed;

__attribute__((constructor)) static void greet_init(void)
{
    prefix = "Hello from libgreet";
    constructed = 1;
}

const char *greet_prefix(void) { return constructed ? prefix : "constructor did not run"; }
