# Guest-kernel unit tests: the guest's file system (fs.c), memory manager (mm.c) and
# user-pointer checks (uaccess.c), plus the shared cpio reader, compiled for the host
# with ASan+UBSan and driven through their sys_* functions by
# tests/guest/test_guest_kernel.c (which supplies the rest of the kernel: klog, kpanic,
# console, entropy, /dev/invoke, hypercalls). The archive it builds uses the host cpio
# writer from libthaw-san.a.
#
# The guest sources include kernel.h, which declares the libc functions it uses with
# compatible prototypes, and linux_abi.h, which defines errno values and O_/MAP_ flags
# itself: the test includes no libc header that defines those.

GUEST_TEST_SRCS := tests/guest/test_guest_kernel.c src/guest/kernel/fs.c src/guest/kernel/mm.c \
  src/guest/kernel/uaccess.c src/guest/kernel/rootfs.c src/guest/kernel/pipe.c src/guest/kernel/guard.c \
  src/common/cpio.c
GUEST_TEST_DEPS := $(GUEST_TEST_SRCS) $(wildcard src/guest/kernel/*.h) src/common/cpio.h \
  include/thaw/abi.h src/host/function/cpio_writer.h

$(BUILD)/tests/test_guest_kernel: $(GUEST_TEST_DEPS) $(BUILD)/libthaw-san.a
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(HOST_CFLAGS)) $(SAN_FLAGS) -Isrc/guest/kernel -Itests \
	  -o $@ $(GUEST_TEST_SRCS) $(BUILD)/libthaw-san.a -lcmocka

EXTRA_TEST_BINS += $(BUILD)/tests/test_guest_kernel
