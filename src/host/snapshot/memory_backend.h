/* Guest memory for a restored instance, in one of the restore strategies:
 *   copy  read the whole memory file (data extents only) into fresh anonymous memory;
 *   lazy  map the memory file MAP_PRIVATE: every first touch is a host page fault on
 *         the file (the Firecracker/Catalyzer baseline);
 *   uffd  fresh anonymous memory registered with userfaultfd; a handler thread serves
 *         each missing page from the memory file with UFFDIO_COPY (REAP builds on it).
 * The snapshot files are only ever read. Stats are counted by the backend. */
#ifndef THAW_HOST_MEMORY_BACKEND_H
#define THAW_HOST_MEMORY_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"

enum mem_mode { MEM_COPY, MEM_LAZY, MEM_UFFD, MEM_REAP /* uffd + record or prefetch: reap.h */ };

const char *mem_mode_name(enum mem_mode m);
int mem_mode_parse(const char *s, enum mem_mode *out);


struct mem_backend {
    enum mem_mode mode;
    uint8_t *host;
    uint64_t size;
    int file_fd;
    /* uffd mode */
    int uffd;
    int stop_pipe[2];
    pthread_t thread;
    bool thread_running;
    uint8_t *zeroed;            /* bitmap: discarded pages read as zero, not from the file */
    /* statistics */
    _Atomic uint64_t pages_served;   /* uffd: pages installed by the handler */
    _Atomic uint64_t zero_pages;     /* uffd: pages installed as zero (holes, discarded) */
    _Atomic uint64_t fault_ns;       /* uffd: time spent serving faults */
    uint64_t bytes_copied;           /* copy: bytes read */
    char thread_error[256];
    /* REAP recording: every page the handler serves, in fault order. */
    bool recording;
    pthread_mutex_t log_lock;
    struct page_record *log;
    size_t log_len, log_cap;
    uint64_t record_start_ns;
};

struct page_record {
    uint64_t offset; /* guest-physical address of the page */
    uint64_t t_ns;   /* since the restore started */
};

/* Copies the recorded pages so far (malloc'd; caller frees). */
int mem_backend_take_log(struct mem_backend *b, struct page_record **out, size_t *len);

/* Opens memory_path (must be exactly size bytes) and sets up guest memory. */
int mem_backend_open(struct mem_backend *b, enum mem_mode mode, const char *memory_path, uint64_t size,
                     struct thaw_error *err);
/* Makes [gpa, gpa+len) read back as zero (the guest freed it). */
int mem_backend_discard(struct mem_backend *b, uint64_t gpa, uint64_t len, struct thaw_error *err);
/* Stops the handler thread and unmaps. */
void mem_backend_close(struct mem_backend *b);

#endif
