# Python runtime and the benchmark function suite (included by the top Makefile).
#
#   build/functions/python/thaw-python    static CPython 3.11 (Debian's libpython3.11.a)
#   build/functions/<fn>/files.cpio       root-filesystem archive of each function
#   build/functions/<fn>/<fn>             the native (C) comparison functions
#
# `make python-functions` builds them all; `make python-check` runs every function's
# payloads through the static binaries on the host and compares with expected/.

PYTHON_HOST := /usr/bin/python3.11
PY_INCLUDES := -I/usr/include/python3.11
# Python.h is clean under -Wall -Wextra -Werror with gcc 12: no -Wno-... needed.
PY_RT_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(PY_INCLUDES) -MMD -MP
# libpython3.11.a has Debian's built-in modules (Setup.local): zlib needs libz,
# pyexpat/_elementtree need libexpat; the core needs libm, libutil (openpty/forkpty
# in posixmodule) and libdl. glibc's NSS functions (pwd, grp, spwd, _socket) make ld
# warn "requires at runtime the shared libraries": harmless, nothing calls them.
PY_LIBS := -L/usr/lib/x86_64-linux-gnu -lpython3.11 -lexpat -lz -lm -lutil -ldl -lpthread

PY_FUNCS := helloworld json_serdes pyaes chameleon float_operation matmul \
            image_rotate lr_serving compression
PY_NATIVE_FUNCS := matmul_c image_rotate_c aes_c
PY_NATIVE_ARCHIVE_FUNCS := image_rotate_c

PY_BIN := $(BUILD)/functions/python/thaw-python
PY_ARCHIVES := $(foreach f,$(PY_FUNCS) $(PY_NATIVE_ARCHIVE_FUNCS),$(BUILD)/functions/$(f)/files.cpio)
PY_NATIVE_BINS := $(foreach f,$(PY_NATIVE_FUNCS),$(BUILD)/functions/$(f)/$(f))
PYTHON_TARGETS := $(PY_BIN) $(PY_ARCHIVES) $(PY_NATIVE_BINS)

.PHONY: python-functions python-check
python-functions: $(PYTHON_TARGETS)
functions: python-functions

python-check: python-functions
	@BUILD=$(BUILD) tests/python/check_host.sh

$(BUILD)/runtime/python/main.o: src/runtime/python/main.c
	@mkdir -p $(dir $@)
	$(CC) $(PY_RT_CFLAGS) -c $< -o $@

$(PY_BIN): $(BUILD)/runtime/python/main.o
	@mkdir -p $(dir $@)
	$(CC) -static -o $@ $< $(PY_LIBS)

# Archives: build_function.py also writes files.cpio.d listing every stdlib and
# dist-packages source it compiled (picked up by the top Makefile's *.d include).
define PY_ARCHIVE_RULE
$(BUILD)/functions/$(1)/files.cpio: $(filter-out functions/$(1)/expected%,\
      $(wildcard functions/$(1)/* functions/$(1)/*/*)) \
    tools/python/build_function.py tools/python/datagen.py src/runtime/python/runtime.py
	@mkdir -p $$(dir $$@)
	$(PYTHON_HOST) tools/python/build_function.py functions/$(1) --out $$@ \
	  --depfile $$@.d
endef
$(foreach f,$(PY_FUNCS) $(PY_NATIVE_ARCHIVE_FUNCS),$(eval $(call PY_ARCHIVE_RULE,$(f))))

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
