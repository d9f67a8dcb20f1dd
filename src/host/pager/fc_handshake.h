/* The Firecracker external page-fault handler handshake: the VM process sends ONE
 * message over a Unix domain socket whose payload is a JSON array of memory regions
 *   [{"base_host_virt_addr": u64, "size": u64, "offset": u64, "page_size": u64}, ...]
 * (page_size in bytes) with its userfaultfd attached as SCM_RIGHTS ancillary data. The
 * handler then serves each fault at addr in a region from the memory file at
 * offset + (addr - base_host_virt_addr). Only 4 KiB pages are supported. */
#ifndef THAW_HOST_FC_HANDSHAKE_H
#define THAW_HOST_FC_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

#define FC_HANDSHAKE_MAX_BYTES 65536
#define FC_FILE_SIZE_UNCHECKED UINT64_MAX

struct fc_region {
    uint64_t base_host_virt_addr, size, offset, page_size;
};

/* Parses and validates the JSON payload: an array of 1..max regions, each with integer
 * fields >= 0, page_size 4096, size a non-zero multiple of it, base and offset
 * page-aligned, no overflow, no two regions overlapping in host address space, and
 * offset + size <= file_size (pass FC_FILE_SIZE_UNCHECKED to skip that check). */
int fc_regions_parse(const char *json, size_t len, struct fc_region *out, size_t max, size_t *n,
                     uint64_t file_size, struct thaw_error *err);

/* Sends the handshake (one sendmsg, uffd as SCM_RIGHTS). */
int fc_send_handshake(int sock, const struct fc_region *r, size_t n, int uffd, struct thaw_error *err);

/* Receives and validates the handshake. On success *uffd is the received userfaultfd
 * (close-on-exec; the caller owns it); any extra descriptors are closed. On failure
 * nothing stays open. */
int fc_recv_handshake(int sock, struct fc_region *out, size_t max, size_t *n, int *uffd, uint64_t file_size,
                      struct thaw_error *err);

#endif
