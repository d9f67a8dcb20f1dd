/* futex(2) on the scheduler's wait channels (thread.h): a futex word's address is its
 * channel. There is one address space, so private and shared futexes are the same.
 * WAIT, WAKE, their _BITSET forms, REQUEUE, CMP_REQUEUE and WAKE_OP are what glibc's
 * and musl's mutexes, condition variables, barriers, semaphores and pthread_join use;
 * the priority-inheritance operations are not implemented (-ENOSYS). */
#include "thread.h"

#define FUTEX_CMD_MASK (~(uint64_t)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME))

static int32_t as_count(uint64_t v)
{
    int32_t n = (int32_t)(uint32_t)v;
    return n < 0 ? INT32_MAX : n;
}

static int64_t futex_wait(uint32_t *addr, uint32_t val, uint32_t bitset, uint64_t deadline)
{
    if (!bitset)
        return -EINVAL;
    /* No other thread runs between this check and the wait: the check is atomic. */
    if (*(volatile uint32_t *)addr != val)
        return -EAGAIN;
    return thread_wait(addr, bitset, deadline, "futex wait");
}

/* FUTEX_WAKE_OP: *uaddr2 = oldval OP oparg, wake on uaddr, and on uaddr2 too if
 * oldval CMP cmparg (encoding as in uapi/linux/futex.h). */
static int64_t futex_wake_op(uint32_t *addr, uint32_t *addr2, int32_t nwake, int32_t nwake2, uint32_t enc)
{
    uint32_t op = (enc >> 28) & 7, cmp = (enc >> 24) & 15;
    uint32_t oparg = (enc >> 12) & 0xfff, cmparg = enc & 0xfff;
    if (enc >> 31) /* FUTEX_OP_OPARG_SHIFT */
        oparg = oparg > 31 ? 0 : 1u << oparg;
    else if (oparg & 0x800) /* sign-extend the 12-bit argument */
        oparg |= 0xfffff000u;
    if (cmparg & 0x800)
        cmparg |= 0xfffff000u;
    uint32_t old = *(volatile uint32_t *)addr2, nw;
    switch (op) {
    case 0: nw = oparg; break;        /* SET */
    case 1: nw = old + oparg; break;  /* ADD */
    case 2: nw = old | oparg; break;  /* OR */
    case 3: nw = old & ~oparg; break; /* ANDN */
    case 4: nw = old ^ oparg; break;  /* XOR */
    default: return -ENOSYS;
    }
    int32_t o = (int32_t)old, c = (int32_t)cmparg;
    bool hit;
    switch (cmp) {
    case 0: hit = o == c; break;
    case 1: hit = o != c; break;
    case 2: hit = o < c; break;
    case 3: hit = o <= c; break;
    case 4: hit = o > c; break;
    case 5: hit = o >= c; break;
    default: return -ENOSYS;
    }
    *(volatile uint32_t *)addr2 = nw;
    int64_t n = thread_wake(addr, FUTEX_BITSET_MATCH_ANY, nwake);
    if (hit)
        n += thread_wake(addr2, FUTEX_BITSET_MATCH_ANY, nwake2);
    return n;
}

static bool futex_word_ok(uint64_t a) { return a % 4 == 0; }

int64_t sys_futex(uint64_t uaddr, uint64_t op, uint64_t val, uint64_t timeout_or_val2, uint64_t uaddr2,
                  uint64_t val3)
{
    uint64_t cmd = op & FUTEX_CMD_MASK;
    bool realtime = op & FUTEX_CLOCK_REALTIME;
    if (realtime && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET)
        return -ENOSYS;
    if (!futex_word_ok(uaddr))
        return -EINVAL;
    if (!user_range_ok(uaddr, 4))
        return -EFAULT;
    uint32_t *addr = (uint32_t *)(uintptr_t)uaddr;
    const struct linux_timespec *ts = (const struct linux_timespec *)(uintptr_t)timeout_or_val2;
    uint64_t deadline;
    int64_t r;
    switch (cmd) {
    case FUTEX_WAIT:
        /* A relative timeout (Linux measures it on CLOCK_MONOTONIC either way). */
        if ((r = thread_deadline(ts, false, CLOCK_MONOTONIC, &deadline)) < 0)
            return r;
        return futex_wait(addr, (uint32_t)val, FUTEX_BITSET_MATCH_ANY, deadline);
    case FUTEX_WAIT_BITSET:
        if ((r = thread_deadline(ts, true, realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &deadline)) < 0)
            return r;
        return futex_wait(addr, (uint32_t)val, (uint32_t)val3, deadline);
    case FUTEX_WAKE:
        return thread_wake(addr, FUTEX_BITSET_MATCH_ANY, as_count(val));
    case FUTEX_WAKE_BITSET:
        if (!(uint32_t)val3)
            return -EINVAL;
        return thread_wake(addr, (uint32_t)val3, as_count(val));
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE:
        if (!futex_word_ok(uaddr2))
            return -EINVAL;
        if (!user_range_ok(uaddr2, 4))
            return -EFAULT;
        if ((int32_t)(uint32_t)val < 0 || (int32_t)(uint32_t)timeout_or_val2 < 0)
            return -EINVAL;
        if (cmd == FUTEX_CMP_REQUEUE && *(volatile uint32_t *)addr != (uint32_t)val3)
            return -EAGAIN;
        return thread_requeue(addr, (const void *)(uintptr_t)uaddr2, as_count(val), as_count(timeout_or_val2));
    case FUTEX_WAKE_OP:
        if (!futex_word_ok(uaddr2))
            return -EINVAL;
        if (!user_range_ok(uaddr2, 4))
            return -EFAULT;
        return futex_wake_op(addr, (uint32_t *)(uintptr_t)uaddr2, as_count(val), as_count(timeout_or_val2),
                             (uint32_t)val3);
    default:
        return -ENOSYS;
    }
}
