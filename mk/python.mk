# The native (C) comparison functions of the benchmark suite (included by the top
# Makefile). Python functions need no rule: `thaw build` builds them on Debian's
# python3.11 (src/host/function/python_build.c).
#
#   build/functions/<fn>/<fn>             the native (C) comparison functions
#   build/functions/<fn>/files.cpio       the data files of those that have some
#
# `make python-check` runs every function's payloads on the host (the Python ones on
# the host's python3.11, the C ones chrooted in their archives) and compares with
# expected/.

PYTHON_HOST := /usr/bin/python3.11

PY_NATIVE_FUNCS := matmul_c image_rotate_c aes_c
PY_NATIVE_ARCHIVE_FUNCS := image_rotate_c

PY_ARCHIVES := $(foreach f,$(PY_NATIVE_ARCHIVE_FUNCS),$(BUILD)/functions/$(f)/files.cpio)
PY_NATIVE_BINS := $(foreach f,$(PY_NATIVE_FUNCS),$(BUILD)/functions/$(f)/$(f))
PYTHON_TARGETS := $(PY_ARCHIVES) $(PY_NATIVE_BINS)

.PHONY: python-functions python-check
python-functions: $(PYTHON_TARGETS)
functions: python-functions

python-check: python-functions
	@BUILD=$(BUILD) tests/python/check_host.sh

# Data archives: build_function.py also writes files.cpio.d listing what it read
# (picked up by the top Makefile's *.d include).
define PY_ARCHIVE_RULE
$(BUILD)/functions/$(1)/files.cpio: $(filter-out functions/$(1)/expected%,\
      $(wildcard functions/$(1)/* functions/$(1)/*/*)) \
    tools/python/build_function.py tools/python/datagen.py
	@mkdir -p $$(dir $$@)
	$(PYTHON_HOST) tools/python/build_function.py functions/$(1) --out $$@ \
	  --depfile $$@.d
endef
$(foreach f,$(PY_NATIVE_ARCHIVE_FUNCS),$(eval $(call PY_ARCHIVE_RULE,$(f))))

# Native comparison functions: static glibc binaries speaking /dev/invoke directly.
PY_NATIVE_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Isdk -MMD -MP
PY_NATIVE_LIBS_matmul_c :=
PY_NATIVE_LIBS_aes_c :=
PY_NATIVE_LIBS_image_rotate_c := -lpng16 -lz -lm

define PY_NATIVE_RULE
$(BUILD)/functions/$(1)/$(1): functions/$(1)/main.c
	@mkdir -p $$(dir $$@)
	$(CC) $(PY_NATIVE_CFLAGS) -static -o $$@ $$< $(PY_NATIVE_LIBS_$(1))
endef
$(foreach f,$(PY_NATIVE_FUNCS),$(eval $(call PY_NATIVE_RULE,$(f))))
