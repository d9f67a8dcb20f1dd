# The threads test function (functions/threads/main.c), three ways:
#   build/functions/threads/threads      dynamic, Debian's glibc, -pthread
#   build/functions/threads/files.cpio   its / : Debian's ld.so and libc
#   build/functions/threads-static       static glibc
#   build/functions/threads-musl         static musl (clone, not clone3)

THR_DIR := $(BUILD)/functions/threads
THR_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Isdk -pthread

$(THR_DIR)/threads: functions/threads/main.c sdk/thaw_function.h
	@mkdir -p $(dir $@)
	$(CC) $(THR_CFLAGS) -o $@ $<

$(THR_DIR)/files.cpio: $(THR_DIR)/threads tools/rootfs/build_rootfs.py
	python3 tools/rootfs/build_rootfs.py --out $@ --program $(THR_DIR)/threads

$(BUILD)/functions/threads-static: functions/threads/main.c sdk/thaw_function.h
	@mkdir -p $(dir $@)
	$(CC) $(THR_CFLAGS) -static -o $@ $<

$(BUILD)/functions/threads-musl: functions/threads/main.c sdk/thaw_function.h
	@mkdir -p $(dir $@)
	$(MUSLCC) $(THR_CFLAGS) -static -o $@ $<

functions: $(THR_DIR)/files.cpio $(BUILD)/functions/threads-static $(BUILD)/functions/threads-musl
