# thaw: `make` builds everything into build/; `make test` runs the whole suite.
# Parts: the host monitor + CLI (build/thaw), the guest kernel (build/guest/kernel.elf),
# sample functions (build/functions/...), tests (build/tests/...), fuzzers (build/fuzz/...).

BUILD    ?= build
CC       ?= gcc
CLANG    ?= clang
MUSLCC   ?= musl-gcc

WARN     := -Wall -Wextra -Werror
HOST_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Iinclude -Isrc -MMD -MP
HOST_LIBS   := -ljansson -luring -lcurl -lmicrohttpd -larchive -lseccomp -lz -llz4 -lxxhash -lnettle -lpthread -lm

# ---- host library: everything host-side except the CLI entry point -------------
HOST_SRCS := $(sort $(wildcard src/common/*.c) $(wildcard src/host/*/*.c))
HOST_LIB_SRCS := $(filter-out src/host/cli/%,$(HOST_SRCS))
CLI_SRCS  := $(wildcard src/host/cli/*.c)
# The daemon drives instances through the lifecycle layer: until its implementation
# (src/host/sandbox/sandbox.c) is in the tree, the parts of serve/ that call it and
# `thaw serve` itself are left out (the client commands and serve/'s pure parts stay).
SERVE_NEEDS_SANDBOX := src/host/serve/pool.c src/host/serve/deploy.c src/host/serve/api.c \
                       src/host/serve/serve.c src/host/serve/store.c src/host/cli/cmd_serve.c
ifeq ($(wildcard src/host/sandbox/sandbox.c),)
HOST_LIB_SRCS := $(filter-out $(SERVE_NEEDS_SANDBOX),$(HOST_LIB_SRCS))
CLI_SRCS := $(filter-out $(SERVE_NEEDS_SANDBOX),$(CLI_SRCS))
else
HOST_CFLAGS += -DTHAW_HAVE_SERVE
endif
# main.c lists `thaw serve` only with it: rebuild main.o when the layer arrives.
$(BUILD)/host/src/host/cli/main.o $(BUILD)/host/src/host/cli/http_main.o: $(wildcard src/host/sandbox/sandbox.c)
HOST_OBJS := $(HOST_LIB_SRCS:%.c=$(BUILD)/host/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/host/%.o)

# Same sources with AddressSanitizer + UBSan for the tests.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_OBJS  := $(HOST_LIB_SRCS:%.c=$(BUILD)/san/%.o)

.PHONY: all clean test unit-tests integration-tests fuzz-tests functions deps demo bench
all: $(BUILD)/thaw $(BUILD)/thaw-http $(BUILD)/thaw-worker $(BUILD)/guest/kernel.elf functions

$(BUILD)/host/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/libthaw.a: $(HOST_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libthaw-san.a: $(SAN_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# thaw: the CLI without the HTTP commands, which it execs in thaw-http (src/host/cli/main.c):
# their libraries made every `thaw restore` 6-7 ms of CPU slower to start.
HTTP_CLI_OBJS := $(addprefix $(BUILD)/host/src/host/cli/,http_main.o cmd_client.o cmd_load.o) \
                 $(filter %/cmd_serve.o,$(CLI_OBJS))
LEAN_CLI_OBJS := $(filter-out $(HTTP_CLI_OBJS),$(CLI_OBJS))
LEAN_LIBS := $(filter-out -lcurl -lmicrohttpd -larchive,$(HOST_LIBS))
$(BUILD)/thaw: $(LEAN_CLI_OBJS) $(BUILD)/libthaw.a
	$(CC) -o $@ $(LEAN_CLI_OBJS) $(BUILD)/libthaw.a $(LEAN_LIBS)

$(BUILD)/thaw-http: $(filter-out %/main.o,$(CLI_OBJS)) $(BUILD)/libthaw.a
	$(CC) -o $@ $(filter-out %/main.o,$(CLI_OBJS)) $(BUILD)/libthaw.a $(HOST_LIBS)

# The worker process behind --worker: only the libraries a worker links (fast exec).
WORKER_OBJS := $(BUILD)/host/src/host/cli/worker/main.o $(BUILD)/host/src/host/cli/cmd_worker.o
WORKER_LIBS := -ljansson -luring -lseccomp -lz -llz4 -lxxhash -lnettle -lpthread -lm
$(BUILD)/thaw-worker: $(WORKER_OBJS) $(BUILD)/libthaw.a
	$(CC) -o $@ $(WORKER_OBJS) $(BUILD)/libthaw.a $(WORKER_LIBS)

# ---- guest kernel: freestanding, runs at CPL3, no SSE (syscalls preserve xmm) ---
GUEST_CFLAGS := -std=c11 -O2 -g $(WARN) -ffreestanding -fno-builtin -nostdinc \
  -isystem $(shell $(CC) -print-file-name=include) -Iinclude -Isrc -Isrc/guest/kernel \
  -fno-pic -fno-pie -fno-stack-protector -mgeneral-regs-only -mno-red-zone \
  -fno-asynchronous-unwind-tables -fcf-protection=none -MMD -MP
GUEST_SRCS := $(sort $(wildcard src/guest/kernel/*.c) src/common/cpio.c)
GUEST_ASM  := $(wildcard src/guest/kernel/*.S)
GUEST_OBJS := $(GUEST_SRCS:%.c=$(BUILD)/guest/%.o) $(GUEST_ASM:%.S=$(BUILD)/guest/%.o)

$(BUILD)/guest/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/guest/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/guest/kernel.elf: $(GUEST_OBJS) src/guest/kernel/kernel.ld
	$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T src/guest/kernel/kernel.ld \
	  -o $@ $(GUEST_OBJS) -lgcc

# ---- sample functions: static binaries with glibc and with musl ----------------
FN_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 $(WARN) -Isdk -Iinclude
FN_NATIVE := hello memtouch faulty
FN_BINS := $(foreach f,$(FN_NATIVE),$(BUILD)/functions/$(f)-glibc $(BUILD)/functions/$(f)-musl)
functions: $(FN_BINS)

$(BUILD)/functions/%-glibc: functions/%/main.c sdk/thaw_function.h
	@mkdir -p $(dir $@)
	$(CC) $(FN_CFLAGS) -static -o $@ $<

$(BUILD)/functions/%-musl: functions/%/main.c sdk/thaw_function.h
	@mkdir -p $(dir $@)
	$(MUSLCC) $(FN_CFLAGS) -static -o $@ $<

EXTRA_TEST_BINS :=
-include mk/*.mk

# ---- tests ------------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(BUILD)/tests/%)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libthaw-san.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN_FLAGS) -Itests -o $@ $< $(BUILD)/libthaw-san.a $(HOST_LIBS) -lcmocka

$(BUILD)/tests/test_%: tests/integration/test_%.c $(BUILD)/libthaw-san.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN_FLAGS) -Itests -o $@ $< $(BUILD)/libthaw-san.a $(HOST_LIBS) -lcmocka

# Fuzz targets: libFuzzer via clang, with ASan+UBSan.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -Iinclude -Isrc \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Wno-gnu-variable-sized-type-not-at-end
$(BUILD)/fuzz/%: tests/fuzz/%.c $(HOST_LIB_SRCS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(HOST_LIB_SRCS) $(HOST_LIBS)

unit-tests: $(UNIT_BINS)
integration-tests: $(INTEG_BINS) all
fuzz-tests: $(FUZZ_BINS)

# The whole suite: unit tests (ASan/UBSan), integration tests booting real guests,
# and each fuzz target run briefly. Prints "N passed, N failed".
test: all $(UNIT_BINS) $(INTEG_BINS) $(FUZZ_BINS) $(EXTRA_TEST_BINS)
	@BUILD=$(BUILD) tests/run-all.sh

deps:
	scripts/install-deps.sh

demo: all
	scripts/demo.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
