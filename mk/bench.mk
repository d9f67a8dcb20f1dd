# Benchmark programs in C (bench/*.c), linked with the host library; the Python scripts
# in bench/ drive build/thaw instead. Built by `make all`.
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libthaw.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libthaw.a $(HOST_LIBS)

all: $(BENCH_BINS)
