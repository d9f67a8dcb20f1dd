# Dynamically linked test functions (included by the top Makefile):
#   build/functions/dynamic/dynamic      links libgreet.so, dlopens libplugin.so
#   build/functions/dynamic/files.cpio   its / : Debian's ld.so and libc, the two
#                                        libraries under /app/lib, /app/pages.bin
#   build/functions/dynamic/rootfs.img   the same as a root-filesystem image
#   build/functions/badinterp/badinterp  names an interpreter that does not exist

DYN_DIR := $(BUILD)/functions/dynamic
DYN_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Isdk

$(DYN_DIR)/libgreet.so: functions/dynamic/greet.c
	@mkdir -p $(dir $@)
	$(CC) $(DYN_CFLAGS) -fPIC -shared -Wl,-soname,libgreet.so -o $@ $<

$(DYN_DIR)/libplugin.so: functions/dynamic/plugin.c
	@mkdir -p $(dir $@)
	$(CC) $(DYN_CFLAGS) -fPIC -shared -Wl,-soname,libplugin.so -o $@ $<

# RPATH (not RUNPATH) so that dlopen from the program searches /app/lib too.
$(DYN_DIR)/dynamic: functions/dynamic/main.c sdk/thaw_function.h $(DYN_DIR)/libgreet.so
	$(CC) $(DYN_CFLAGS) -o $@ $< -L$(DYN_DIR) -lgreet -Wl,--disable-new-dtags,-rpath,/app/lib

$(DYN_DIR)/pages.bin:
	@mkdir -p $(dir $@)
	python3 -c 'import sys; sys.stdout.buffer.write(b"".join(bytes([65 + i]) * 4096 for i in range(3)))' > $@

$(DYN_DIR)/files.cpio: $(DYN_DIR)/dynamic $(DYN_DIR)/libplugin.so $(DYN_DIR)/pages.bin tools/rootfs/build_rootfs.py
	python3 tools/rootfs/build_rootfs.py --out $@ --program $(DYN_DIR)/dynamic --lib-path $(DYN_DIR) \
	  --file /app/lib/libgreet.so=$(DYN_DIR)/libgreet.so --file /app/lib/libplugin.so=$(DYN_DIR)/libplugin.so \
	  --file /app/pages.bin=$(DYN_DIR)/pages.bin

# The same files as a root-filesystem image (functions/dynamic-image): mapped, not copied.
$(DYN_DIR)/rootfs.img: $(DYN_DIR)/dynamic $(DYN_DIR)/libplugin.so $(DYN_DIR)/pages.bin tools/rootfs/build_rootfs.py
	python3 tools/rootfs/build_rootfs.py --out $@ --program $(DYN_DIR)/dynamic --lib-path $(DYN_DIR) \
	  --file /app/lib/libgreet.so=$(DYN_DIR)/libgreet.so --file /app/lib/libplugin.so=$(DYN_DIR)/libplugin.so \
	  --file /app/pages.bin=$(DYN_DIR)/pages.bin

$(BUILD)/functions/badinterp/badinterp: functions/dynamic/main.c sdk/thaw_function.h $(DYN_DIR)/libgreet.so
	@mkdir -p $(dir $@)
	$(CC) $(DYN_CFLAGS) -o $@ $< -L$(DYN_DIR) -lgreet -Wl,--dynamic-linker=/lib/missing/ld-thaw.so.2

functions: $(DYN_DIR)/files.cpio $(DYN_DIR)/rootfs.img $(BUILD)/functions/badinterp/badinterp
