/* Snapshots of instances with a root-filesystem image (host/vmm/rootfs_map.h).
 *
 * The image is not part of the memory file: after a restore, file pages live in the
 * host page cache of the image file, mapped MAP_PRIVATE into the VM again, and are
 * read when first touched, exactly as at boot. What the snapshot keeps:
 *   rootfs      which image (path and identity: a changed image refuses to restore);
 *   rootfs.cow  the image pages the guest wrote (relocated library data, in place),
 *               with a checksum per page and the snapshot's identity (rootfs_pack.h),
 *               stored raw and mapped MAP_PRIVATE from the file over the fresh mapping:
 *               a page is read when the guest first touches it (a first invocation
 *               touches a few percent; REAP's rootfs.ws names those and they are read
 *               ahead with the file working set), copied when it writes it, shared in
 *               the page cache by the instances of the snapshot until then. With
 *               THAW_ROOTFS_COW=packed at snapshot time, lz4-compressed and decoded
 *               whole into anonymous memory before the vCPU runs, checked page by page
 *               (the layout before; older snapshots restore this way). A header, index
 *               or block of another format or snapshot fails the restore with one line
 *               naming it;
 *   rootfs.ws   REAP: the image pages the first invocation touched (recorded from
 *               the page tables after it) and their contents, read from the image and
 *               packed the same way (cnn_serving: 15 MiB of pages in 7.5 MiB). A REAP
 *               prefetch restore reads those pages ahead from the image into its page
 *               cache and maps them before the vCPU runs (only the file's index is
 *               read). With THAW_ROOTFS_WS=packed it decodes them from rootfs.ws into
 *               private anonymous copies over the image mapping instead: one sequential
 *               read of half the bytes, but the decompression and the private pages
 *               cost more CPU than the disk time saved on this machine (measured in
 *               docs/benchmarks-topics.md, "Compressed image pages": neutral for one cold
 *               start, 1.1-1.4x slower for four at once), and each instance then holds
 *               its file working set privately (as its memory working set) instead of
 *               sharing the page cache: 4 cnn_serving instances, 45 MiB more PSS. A
 *               rootfs.ws that fails its checks (or another snapshot's) is not used:
 *               file pages then fault in lazily (packed: after a bad block, it and the
 *               later pages go back to the image mapping; verified ones stay).
 *               A merging REAP restore merges what its input read into it
 *               (rootfs_snapshot_merge);
 *   rootfs.gens REAP: the generations of rootfs.ws's pages, bound to it (reap.h's
 *               ws.gens layout): a page no input read for keep generations is dropped
 *               when probed.
 * Both files are read in one pipeline: 256 KiB O_DIRECT chunks a few at a time on an
 * io_uring, each decoded as it lands, so the disk reads ahead while the kernel
 * allocates the pages and lz4 decompresses (a file up to 1 MiB in one read).
 *
 * Lazy, uffd and share restores read file pages from the image's page cache, shared.
 * The lazy baseline reads file pages on demand from the same file; `thaw restore
 * --drop-cache` drops the image from the page cache too, so neither mode finds file
 * pages warm that the other lacks. No globals: restores may run in parallel threads. */
#ifndef THAW_HOST_ROOTFS_SNAPSHOT_H
#define THAW_HOST_ROOTFS_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/util/gpa_run.h"
#include "host/util/snap_identity.h"
#include "host/vmm/rootfs_map.h"

struct rootfs_restore_stats {
    uint64_t cow_pages;       /* written pages copied back */
    uint64_t cow_bytes;       /* bytes of rootfs.cow read (its index only when its pages are mapped) */
    uint64_t cow_ns;          /* time the copy-back took (read and decode) */
    uint64_t ws_pages;        /* REAP: image pages prefetched */
    uint64_t ws_bytes;        /* rootfs.ws's size (read whole) */
    uint64_t ws_ns;           /* time the prefetch took (read and decode) */
    uint64_t ws_withheld;     /* REAP merging: pages of rootfs.ws probed, not read ahead */
    bool ws_refused;          /* rootfs.ws was malformed or another snapshot's: not used */
    char ws_error[256];       /* why */
};

/* Where an instance's image is mapped: in this process (pid 0) or in a worker's. */
struct rootfs_pages {
    int pid;
    uint64_t addr;            /* the mapping's address in that process */
    uint64_t size;            /* 0: no image */
};

/* Writes rootfs and rootfs.cow for an instance whose image is m (no-op without one). */
int rootfs_snapshot_save(const struct rootfs_map *m, const char *dir, const struct snap_identity *id,
                         struct thaw_error *err);
/* The same for an image mapped at addr in a worker process (m describes it: path, gpa,
 * size, identity; m->host unused): its written pages are read from /proc/<pid>/mem. */
int rootfs_snapshot_save_remote(const struct rootfs_map *m, int pid, uint64_t addr, const char *dir,
                                const struct snap_identity *id, struct thaw_error *err);
/* Copies in the written pages a restore mapped from rootfs.cow (m->lazy), as private
 * pages of the instance: call before a snapshot of it (in the process that maps the
 * image), whose rootfs.cow is taken from its private pages. */
int rootfs_snapshot_materialize(struct rootfs_map *m, struct thaw_error *err);
/* True if the snapshot in dir has an image. */
bool rootfs_snapshot_present(const char *dir);
/* Maps the snapshot's image into m (at the recorded address) and puts its written
 * pages back; with prefetch, also reads and maps the pages of rootfs.ws, if any and if
 * it carries the identity id of the snapshot being restored (else st->ws_refused), and
 * appends their guest addresses to ws_runs (if not NULL). */
int rootfs_snapshot_restore(struct rootfs_map *m, const char *dir, const struct snap_identity *id, bool prefetch,
                            bool probe, struct rootfs_restore_stats *st, struct gpa_runs *ws_runs,
                            struct thaw_error *err);
/* REAP recording: writes rootfs.ws from the image pages mapped now in the process that
 * runs the instance (read from its /proc/<pid>/pagemap; call after the first invocation
 * of a fresh restore), with the identity of the snapshot in dir (its memory file's
 * trailer): their numbers only, or with THAW_ROOTFS_WS=packed their contents too (read
 * from the image). No-op without an image. */
int rootfs_snapshot_record(const struct rootfs_pages *where, const char *dir, struct thaw_error *err);
/* What a merge of the file working set did (rootfs_snapshot_merge). */
struct rootfs_merge_stats {
    uint64_t added, dropped, kept, generation;
    bool written;             /* rootfs.ws or rootfs.gens rewritten */
    bool recorded;            /* there was no usable rootfs.ws: this restore's pages recorded */
};
/* REAP merging (a prefetch that holds ws.lock), after the first invocation: merges the
 * image pages this input touched into rootfs.ws by the memory working set's rules
 * (pages outside it join; probed pages, which a restore with probe did not read ahead,
 * stay if touched and go if not; generations in rootfs.gens, bound to that rootfs.ws);
 * rewrites the files atomically only if something changed. An index-only rootfs.ws
 * only (a packed one stays as recorded); none, or one that fails its checks, is
 * recorded from this restore. */
int rootfs_snapshot_merge(const struct rootfs_pages *where, const char *dir, struct rootfs_merge_stats *ms,
                          struct thaw_error *err);
/* The image path of the snapshot in dir, for dropping it from the page cache. */
int rootfs_snapshot_image_path(const char *dir, char *buf, size_t len);

#endif
