/* REAP: record the working set on the first restore, prefetch it in one read on every
 * later one. Two files sit next to the snapshot (docs/snapshot-format.md):
 *   ws.trace  the recorded guest pages in first-touch order, with times;
 *   ws.pages  the contents of exactly those pages in guest-address order, after a 4 KiB
 *             header, an index and a block table: the pages are stored in lz4 blocks of
 *             up to 64 pages (raw where a block does not compress), so one sequential
 *             O_DIRECT read brings them all in at about half the bytes, each block is
 *             decompressed as its bytes land and contiguous guest runs install with one
 *             UFFDIO_MOVE or UFFDIO_COPY.
 * Both carry the identity of the snapshot they were made from (snap_identity.h) and are
 * refused with any other; every page of ws.pages has a checksum in the index, checked
 * before the page is installed.
 *
 * Working sets follow their inputs: a restore that holds the recording lock merges what
 * its input touched outside the set (the pages its misses installed) into ws.pages, and
 * every page carries the generation (merge count) it was last seen used at. Seeing a
 * prefetched page used is impossible without access bits (none here), so for 2*keep
 * generations after the set grew, each merging restore withholds one
 * slice (1/keep) of the pages older than keep generations: a withheld page the input
 * touches comes in as a miss and is kept, one it does not touch is dropped. A merge that
 * changes no page writes only ws.gens (the generations, bound to the unchanged ws.pages). */
#ifndef THAW_HOST_REAP_H
#define THAW_HOST_REAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/util/snap_identity.h"

/* Formats of ws.pages and ws.trace: a reader refuses any other major (the working set is
 * then recorded again); a minor bump only adds what older readers may ignore. ws.pages
 * 3.0 added the generations (header and index), 4.0 the lz4 blocks (header and block
 * table); ws.trace is unchanged. */
#define REAP_FORMAT_MAJOR 4u
#define REAP_FORMAT_MINOR 0u
/* ws.gens (generations only, bound to one ws.pages): 1.0. */
#define REAP_GENS_MAJOR 1u
#define REAP_GENS_MINOR 0u
#define REAP_TRACE_MAJOR 2u
#define REAP_TRACE_MINOR 0u
/* ws.pages index entry: u64 guest address, u64 page checksum, u32 generation last used,
 * u32 reserved (0). */
#define REAP_INDEX_ENTRY 24u
/* ws.pages block table entry: u64 file offset, u32 stored bytes, u16 pages, u16 kind
 * (REAP_BLOCK_RAW or REAP_BLOCK_LZ4). A block holds up to REAP_BLOCK_PAGES pages. */
#define REAP_BLOCK_ENTRY 16u
#define REAP_BLOCK_PAGES 64u
#define REAP_BLOCK_RAW 0u
#define REAP_BLOCK_LZ4 1u
/* Generations a page may go unseen before a probe may drop it (THAW_WS_KEEP overrides). */
#define REAP_KEEP_DEFAULT 8u

/* One recorded page: its guest-physical address and when it was first touched. */
struct page_record {
    uint64_t offset;
    uint64_t t_ns; /* since recording started */
};

struct reap_stats {
    uint64_t pages;          /* in the working set */
    uint64_t regions;        /* contiguous guest runs */
    uint64_t bytes;          /* working-set file bytes read */
    uint64_t read_ns;        /* the large read */
    uint64_t install_ns;     /* decompressing, checking and installing every page */
    uint64_t withheld;       /* pages a merging restore probes instead of installing */
    uint64_t moved;          /* of pages, installed by UFFDIO_MOVE (REAP_PREFETCH_MOVE) */
};

/* The decoded ws.pages header (the first 136 bytes of its first 4 KiB block). */
struct reap_ws_header {
    uint32_t page_size;
    uint64_t mem_size, count, index_offset, data_offset;
    struct snap_identity identity;
    uint32_t flags, crc;
    uint64_t generation;  /* merges since the recording (0 = as recorded) */
    uint64_t probe_until; /* merging restores probe while generation < probe_until */
    uint64_t blocks;      /* entries in the block table */
    uint64_t block_table; /* its file offset: right after the index */
    uint64_t file_size;   /* as given to reap_ws_header_decode */
};
#define REAP_WS_HEADER_BYTES 136u

/* One block of page data, from the block table. */
struct reap_ws_block {
    uint64_t offset; /* in the file */
    uint32_t bytes;  /* stored there */
    uint32_t pages;  /* it decodes to: index entries first .. first + pages */
    uint64_t first;
    unsigned kind;   /* REAP_BLOCK_RAW (page-aligned, pages * 4096 bytes) or REAP_BLOCK_LZ4 */
};

/* A working set as a prefetch found it, for merging: the index in guest order, each
 * page's generation, and which pages this restore withheld (probed). */
struct reap_ws_set {
    uint64_t n, generation, probe_until;
    uint32_t crc; /* of the ws.pages it was read from (ws.gens binds to it) */
    uint64_t *gpa;
    uint32_t *last_used;
    uint8_t *withheld; /* n bools */
};
void reap_ws_set_free(struct reap_ws_set *s);

/* What a merge did. */
struct reap_merge_stats {
    uint64_t added, dropped, kept, generation;
    int written;       /* 0 when nothing changed (no file written) */
    int pages_written; /* ws.pages itself was rewritten (pages joined or left); else only ws.gens */
};

/* keep: THAW_WS_KEEP if set (1..64), else REAP_KEEP_DEFAULT. */
unsigned reap_keep(void);
/* Whether a merging restore at generation gen withholds this page (docs above). */
int reap_ws_probed(uint64_t gen, uint64_t probe_until, uint32_t last_used, uint64_t gpa, unsigned keep);

/* Writes ws.trace and ws.pages for the recorded pages, stamped with the snapshot's
 * identity; page contents come from the snapshot's memory file (never from the running
 * guest), lz4-compressed in blocks (THAW_WS_COMPRESS=0: every block raw, for A/B runs).
 * Atomic writes. */
int reap_write(const char *snap_dir, const struct page_record *log, size_t n, uint64_t mem_size,
               const struct snap_identity *id, struct thaw_error *err);

/* Merges into ws.pages: the pages of old this restore installed or did not withhold stay,
 * withheld pages it did not touch go, pages outside old that it touched join; used is a
 * bitmap over guest pages (bit gpa/4096) of pages installed by misses. The new set is
 * generation old->generation + 1; if it grew, it is probed for 2*keep generations. Page
 * contents come from the memory file; atomic write. Writes nothing if nothing changed;
 * if the pages are the same and only generations move (a probe window, probed pages
 * seen used), writes only ws.gens, the generations bound to the unchanged ws.pages. */
int reap_write_merged(const char *snap_dir, const struct reap_ws_set *old, const uint8_t *used, uint64_t mem_size,
                      const struct snap_identity *id, unsigned keep, struct reap_merge_stats *ms,
                      struct thaw_error *err);

/* What merging a set with one restore's use of it gives (the rules above, shared by
 * ws.pages and the image's rootfs.ws): nothing to write; the same pages with new
 * generations (last_used per old page); or a new set (gpa[n] ascending, last_used[n]). */
enum reap_merge_outcome { REAP_MERGE_NOTHING, REAP_MERGE_GENS, REAP_MERGE_PAGES };
struct reap_merge_plan {
    enum reap_merge_outcome outcome;
    uint64_t added, dropped, n, generation, probe_until;
    uint64_t *gpa;       /* PAGES only (malloc'd) */
    uint32_t *last_used; /* GENS and PAGES (malloc'd) */
};
/* old's positions are byte offsets (gpa[i] / 4096 below pages); used is a bitmap over
 * pages of the pages this restore brought in outside the set or that it withheld and
 * saw used. */
int reap_merge_plan(const struct reap_ws_set *old, const uint8_t *used, uint64_t pages, unsigned keep,
                    struct reap_merge_plan *m, struct thaw_error *err);
void reap_merge_plan_free(struct reap_merge_plan *m);

/* A generations file (ws.gens layout, below) named name in dir, bound to the set whose
 * header CRC is bound: written atomically; read back into last_used[count], *gen and
 * *probe_until (returns 1), or left alone if missing, damaged or bound to another set
 * (returns 0: generations only age pages, so ignoring them costs at most a probe). */
int reap_gens_write(const char *dir, const char *name, uint32_t bound, const uint32_t *last_used, uint64_t count,
                    uint64_t gen, uint64_t probe_until, struct thaw_error *err);
int reap_gens_read(const char *dir, const char *name, uint32_t bound, uint64_t count, uint64_t min_gen,
                   uint32_t *last_used, uint64_t *gen, uint64_t *probe_until);
/* Removes it (a new set carries no generations yet, or its own). */
void reap_gens_remove(const char *dir, const char *name);

/* Decodes ws.gens bytes for a ws.pages whose header CRC is bound, with count pages and
 * generation min_gen: checks magic, major, size, CRC, binding and ranges, then fills
 * last_used[count], *gen and *probe_until. (A restore ignores a ws.gens that fails.) */
int reap_gens_decode(const uint8_t *buf, size_t len, uint32_t bound, uint64_t count, uint64_t min_gen,
                     uint32_t *last_used, uint64_t *gen, uint64_t *probe_until, struct thaw_error *err);

/* Decodes and checks a ws.pages header (head[0..len), len >= 120) against the file's
 * size, the snapshot's memory size and identity (id may be NULL: not checked). */
int reap_ws_header_decode(const uint8_t *head, size_t len, uint64_t file_size, uint64_t mem_size,
                          const struct snap_identity *id, struct reap_ws_header *h, struct thaw_error *err);
/* Checks the CRC of the header, index and block table (index points at the index, the
 * block table follows it), that the index (h->count entries) holds ascending page
 * addresses inside guest memory, generations not above the header's and zero reserved
 * fields, and that the blocks cover the pages in order, each inside the file after the
 * previous one, with sizes its kind allows. */
int reap_ws_index_check(const uint8_t *head, const struct reap_ws_header *h, const uint8_t *index,
                        struct thaw_error *err);
/* Block k (< h->blocks) of an index reap_ws_index_check accepted. */
void reap_ws_block_at(const uint8_t *index, const struct reap_ws_header *h, uint64_t k, struct reap_ws_block *b);
/* Decodes block b, whose b->bytes stored bytes are at src, into b->pages pages at dst
 * (an lz4 block must decode to exactly that; a raw one is copied). Page checksums are the
 * caller's (reap_page_checksum against the index). */
int reap_ws_block_decode(const uint8_t *src, const struct reap_ws_block *b, uint8_t *dst, struct thaw_error *err);
/* A whole ws.pages in memory (file[0..len)): header, index, blocks and every page's
 * checksum; *pages (count * 4096 bytes, in index order) and *gpa malloc'd. For tests,
 * fuzzing and tools; a restore streams it instead (reap_prefetch_read). */
int reap_ws_decode(const uint8_t *file, size_t len, uint64_t mem_size, const struct snap_identity *id,
                   struct reap_ws_header *h, uint8_t **pages, uint64_t **gpa, struct thaw_error *err);
/* The checksum of one 4 KiB page as ws.pages stores it: XXH3-64 seeded with the page's
 * guest address, so a page moved to another address in the index fails too. */
uint64_t reap_page_checksum(const void *page, uint64_t gpa);

/* Reads ws.pages with O_DIRECT (validating header, identity, index, and every page's
 * checksum before the page is installed; the reads are queued at once and each page is
 * installed as soon as its bytes are in) and
 * installs every page into uffd-registered memory with UFFDIO_COPY, one call per
 * contiguous guest run, without waking anyone. gpa_to_host maps the guest range [gpa, gpa+len)
 * (offsets in the memory file) to the host address it must be installed at, or NULL if it
 * is not mapped contiguously (runs are then retried page by page; unmapped pages are
 * skipped). mem_size and id must equal those recorded in ws.pages. st->pages counts the
 * pages installed, also on failure (a failed page check can come after some verified
 * pages went in). */
int reap_prefetch_into(const char *snap_dir, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                       void *ctx, uint64_t mem_size, const struct snap_identity *id, struct reap_stats *st,
                       struct thaw_error *err);
/* The same for a merging restore: with keep > 0, pages reap_ws_probed() selects are not
 * installed; set (if not NULL) receives the working set (also on failure after pages
 * went in: then it is empty). st->withheld counts the withheld pages. */
int reap_prefetch_merge(const char *snap_dir, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                        void *ctx, uint64_t mem_size, const struct snap_identity *id, unsigned keep,
                        struct reap_ws_set *set, struct reap_stats *st, struct thaw_error *err);

/* A ws.pages read issued ahead: reap_ws_read_begin opens the file and queues all of it as
 * O_DIRECT reads on an io_uring, then returns (the disk works while the caller sets up
 * the VM); reap_prefetch_read does what reap_prefetch_merge does with it, installing
 * the pages as the reads land. reap_ws_read_free waits for reads still in flight and
 * frees (after the prefetch, or instead of it); it takes NULL. */
struct reap_ws_read;
int reap_ws_read_begin(const char *snap_dir, struct reap_ws_read **out, struct thaw_error *err);
/* flags: REAP_PREFETCH_MOVE installs with UFFDIO_MOVE from the read's buffer (no page
 * allocated or copied), which needs guest memory in this process and a userfaultfd with
 * UFFD_FEATURE_MOVE; the install falls back to UFFDIO_COPY wherever a move is refused. */
#define REAP_PREFETCH_MOVE 1u
/* flags: REAP_PREFETCH_INDEX hands the index over in set without merging (ws.gens is not
 * read, nothing is withheld): for a caller that wants the installed pages' addresses. */
#define REAP_PREFETCH_INDEX 2u
int reap_prefetch_read(struct reap_ws_read *r, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                       void *ctx, uint64_t mem_size, const struct snap_identity *id, unsigned keep, unsigned flags,
                       struct reap_ws_set *set, struct reap_stats *st, struct thaw_error *err);
void reap_ws_read_free(struct reap_ws_read *r);

/* Reads and checks the header and index of ws.pages (not its pages) and returns the
 * working set's guest addresses, ascending (*gpa malloc'd). For restores that map the
 * pages from the memory file instead of installing ws.pages' copies (--mem share). */
int reap_ws_read_index(const char *snap_dir, uint64_t mem_size, const struct snap_identity *id, uint64_t **gpa,
                       uint64_t *n, struct thaw_error *err);
/* The same, and *probing: whether a merging restore with this keep (reap_prefetch_merge)
 * would withhold pages to probe them (a probe window is open). */
int reap_ws_read_index_probing(const char *snap_dir, uint64_t mem_size, const struct snap_identity *id, unsigned keep,
                               uint64_t **gpa, uint64_t *n, bool *probing, struct thaw_error *err);

/* Parses ws.trace bytes / a ws.trace file (for tests and `thaw analyze`); *out
 * malloc'd; id (may be NULL) receives the identity it carries. */
int reap_trace_decode(const uint8_t *buf, size_t len, struct page_record **out, size_t *n, uint64_t *mem_size,
                      struct snap_identity *id, struct thaw_error *err);
int reap_read_trace(const char *snap_dir, struct page_record **out, size_t *n, uint64_t *mem_size,
                    struct snap_identity *id, struct thaw_error *err);

/* ws.stale marker: set when a restore missed too many pages. */
int reap_mark_stale(const char *snap_dir, struct thaw_error *err);
int reap_is_stale(const char *snap_dir);
void reap_clear_stale(const char *snap_dir);

#endif
