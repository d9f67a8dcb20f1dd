/* SIGINT/SIGTERM: stop every instance of this process so the caller can clean up.
 * The handler only records the signal and kicks the vCPU threads (async-signal-safe);
 * the runs fail with SANDBOX_FAIL_INTERRUPTED and the callers tear down normally,
 * which removes pager sockets, temporary files and threads. A second signal while
 * the first is being handled ends the process the default way. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "host/sandbox/sandbox.h"
#include "host/vmm/vcpu_kick.h"

static atomic_int got_signal;

static void on_stop_signal(int sig)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&got_signal, &none, sig)) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    vcpu_stop_all();
}

int sandbox_handle_signals(struct thaw_error *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return thaw_fail_errno(err, "cannot install the SIGINT/SIGTERM handlers");
    return 0;
}

int sandbox_interrupted(void)
{
    return atomic_load(&got_signal);
}
