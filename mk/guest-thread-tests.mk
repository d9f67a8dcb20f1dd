# Guest-kernel unit tests of the scheduler and futexes (sched.c, futex.c, switch.S),
# compiled for the host with ASan+UBSan by tests/guest/test_guest_threads.c, which
# supplies the rest of the kernel (clock, page allocator, hypercalls, klog, kpanic).
# clone.c and entry.S, the way into user mode, are only exercised in microVMs
# (tests/threads/check_threads.sh).

GUEST_THREAD_TEST_SRCS := tests/guest/test_guest_threads.c src/guest/kernel/sched.c \
  src/guest/kernel/futex.c src/guest/kernel/uaccess.c src/guest/kernel/switch.S

$(BUILD)/tests/test_guest_threads: $(GUEST_THREAD_TEST_SRCS) $(wildcard src/guest/kernel/*.h) include/thaw/abi.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(HOST_CFLAGS)) $(SAN_FLAGS) -Isrc/guest/kernel -Itests \
	  -o $@ $(GUEST_THREAD_TEST_SRCS) -lcmocka

EXTRA_TEST_BINS += $(BUILD)/tests/test_guest_threads
