/* A snapshot's identity, and the memory file's trailer that carries it.
 *
 * Every snapshot has a random 16-byte id (stored in its state file) and the SHA-256 of
 * its encoded state file. The pair is written into the memory file's trailer and into
 * every ws.* file made from the snapshot; a restore refuses a file whose identity
 * differs from the state's, so no memory image or working set is ever used with a
 * state it was not made with (docs/snapshot-format.md, "Identity"). */
#ifndef THAW_HOST_SNAP_IDENTITY_H
#define THAW_HOST_SNAP_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

#define SNAP_ID_SIZE 16u
#define SNAP_DIGEST_SIZE 32u
#define SNAP_IDENTITY_SIZE (SNAP_ID_SIZE + SNAP_DIGEST_SIZE) /* encoded: id, then digest */

struct snap_identity {
    uint8_t id[SNAP_ID_SIZE];         /* random, chosen when the snapshot is taken */
    uint8_t digest[SNAP_DIGEST_SIZE]; /* SHA-256 of the encoded state file */
};

/* Fills buf with len bytes from the kernel's random generator (getrandom). */
int snap_random(void *buf, size_t len, struct thaw_error *err);
/* The SHA-256 of state[0..len) into id->digest (the id is left alone). */
int snap_identity_digest(struct snap_identity *id, const uint8_t *state, size_t len, struct thaw_error *err);
bool snap_identity_equal(const struct snap_identity *a, const struct snap_identity *b);
/* "id 0123..cdef, state sha256 89ab..": a short form for messages (buf >= 64 bytes). */
void snap_identity_str(const struct snap_identity *id, char *buf, size_t len);
void snap_identity_put(uint8_t *p, const struct snap_identity *id);
void snap_identity_get(const uint8_t *p, struct snap_identity *id);

/* The memory file is the raw guest-physical image, [0, mem_size), followed by one
 * 4 KiB trailer block: magic "THAWMEMT", u16 major, u16 minor, u32 page size, u64
 * mem_size, the identity (48 bytes), u32 CRC-32 of those 72 bytes, zeros. */
#define MEMORY_TRAILER_SIZE 4096u
#define MEMORY_FORMAT_MAJOR 2u
#define MEMORY_FORMAT_MINOR 0u

void memory_trailer_encode(uint8_t out[MEMORY_TRAILER_SIZE], uint64_t mem_size, const struct snap_identity *id);
/* Reads and checks the trailer of an open memory file of st_size bytes; *mem_size is
 * the image size it declares (st_size - 4096). path is for messages. */
int memory_trailer_read(int fd, uint64_t file_size, const char *path, uint64_t *mem_size, struct snap_identity *id,
                        struct thaw_error *err);
/* The same for the memory file at path (no symlinks), opened and closed here. */
int memory_trailer_read_path(const char *path, uint64_t *mem_size, struct snap_identity *id, struct thaw_error *err);

#endif
