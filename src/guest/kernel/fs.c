/* The guest's file system: a read-only tree built from the cpio archive the monitor
 * loaded, plus a few device files (/dev/invoke, /dev/null, /dev/urandom) and the
 * console on fds 1 and 2. File data is never copied at boot: nodes point into the
 * archive, which stays in guest memory. */
#include "kernel.h"
#include "common/cpio.h"
#include "fs.h"
#include "rootfs.h"
#include "pipe.h"
#include "syscalls.h"

#define MAX_FDS 256
#define MAX_SYMLINK_DEPTH 8

enum node_kind { NODE_DIR, NODE_FILE, NODE_SYMLINK, NODE_DEV };

struct node {
    const char *name;
    uint32_t name_len;
    uint32_t kind;
    uint32_t mode;
    uint32_t mtime;
    uint32_t parent;
    uint32_t first_child;  /* 0 = none (node 0 is the root, never a child) */
    uint32_t next_sibling;
    uint32_t dev;          /* enum file_type for NODE_DEV */
    uint32_t image_node;   /* 1-based entry in the root-filesystem image, 0 if none */
    uint64_t size;
    const uint8_t *data;
    uint64_t cap;          /* /tmp files: bytes allocated at data */
    bool tmp;              /* in the writable /tmp (guest memory) */
    uint8_t gen;           /* enum gen_kind: contents made afresh at every open */
};

enum gen_kind { GEN_NONE, GEN_MEMINFO, GEN_MAPS };
#define GEN_BYTES (64u << 10) /* the largest generated /proc file */

static struct node *nodes;
static uint32_t node_count, node_cap;
static uint32_t *hash_slots; /* node index + 1, 0 = empty, HASH_GONE = a removed entry */
static uint32_t hash_mask;
static uint32_t cwd_node;

static struct file files[MAX_FDS];

#define TMP_NODES 4096 /* files and directories /tmp can hold */
#define HASH_GONE UINT32_MAX

/* ---- the node tree ------------------------------------------------------------- */

static uint32_t hash_name(uint32_t parent, const char *name, size_t len)
{
    uint32_t h = 2166136261u ^ parent * 16777619u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    return h;
}

static uint32_t lookup_child(uint32_t parent, const char *name, size_t len)
{
    for (uint32_t i = hash_name(parent, name, len) & hash_mask;; i = (i + 1) & hash_mask) {
        uint32_t s = hash_slots[i];
        if (!s)
            return 0;
        if (s == HASH_GONE)
            continue;
        struct node *n = &nodes[s - 1];
        if (n->parent == parent && n->name_len == len && memcmp(n->name, name, len) == 0 && s - 1 != 0)
            return s - 1;
    }
}

/* Enters node idx under its parent and name (first empty or removed slot). */
static void hash_insert(uint32_t idx)
{
    uint32_t i = hash_name(nodes[idx].parent, nodes[idx].name, nodes[idx].name_len) & hash_mask;
    while (hash_slots[i] && hash_slots[i] != HASH_GONE)
        i = (i + 1) & hash_mask;
    hash_slots[i] = idx + 1;
}

/* Takes node idx out of the table (its slot becomes HASH_GONE, so probes go on). */
static void hash_remove(uint32_t idx)
{
    for (uint32_t i = hash_name(nodes[idx].parent, nodes[idx].name, nodes[idx].name_len) & hash_mask;
         hash_slots[i]; i = (i + 1) & hash_mask)
        if (hash_slots[i] == idx + 1) {
            hash_slots[i] = HASH_GONE;
            return;
        }
}

static uint32_t add_node(uint32_t parent, const char *name, size_t len, uint32_t kind, uint32_t mode)
{
    if (node_count >= node_cap || len > 255)
        kpanic("file archive too large: %u nodes", node_count);
    uint32_t idx = node_count++;
    struct node *n = &nodes[idx];
    *n = (struct node){.name = name, .name_len = (uint32_t)len, .kind = kind, .mode = mode, .parent = parent};
    if (idx != 0) {
        n->next_sibling = nodes[parent].first_child;
        nodes[parent].first_child = idx;
        hash_insert(idx);
    }
    return idx;
}

/* True if the relative path names an existing node (no symlinks followed). */
static bool lookup_path_exists(const char *path)
{
    uint32_t cur = 0;
    for (const char *p = path; *p;) {
        const char *e = p;
        while (*e && *e != '/')
            e++;
        if (nodes[cur].kind != NODE_DIR || !(cur = lookup_child(cur, p, (size_t)(e - p))))
            return false;
        p = *e ? e + 1 : e;
    }
    return true;
}

/* Finds or creates each directory of a relative path; returns the last one. */
static uint32_t ensure_dirs(const char *path, size_t len)
{
    uint32_t cur = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        if (j > i && !(j - i == 1 && path[i] == '.')) {
            uint32_t c = lookup_child(cur, path + i, j - i);
            if (!c)
                c = add_node(cur, path + i, j - i, NODE_DIR, S_IFDIR | 0755);
            cur = c;
        }
        i = j + 1;
    }
    return cur;
}

static void add_path(const char *path, size_t len, uint32_t kind, uint32_t mode, uint32_t mtime,
                     const uint8_t *data, uint64_t size)
{
    while (len && path[len - 1] == '/')
        len--;
    if (!len)
        return;
    size_t slash = len;
    while (slash && path[slash - 1] != '/')
        slash--;
    uint32_t parent = ensure_dirs(path, slash ? slash - 1 : 0);
    const char *base = path + slash;
    size_t blen = len - slash;
    /* "." (the first entry of `find . | cpio -o`) and ".." name existing directories:
     * they must not become children called "." or "..". */
    if ((blen == 1 && base[0] == '.') || (blen == 2 && base[0] == '.' && base[1] == '.'))
        return;
    uint32_t idx = lookup_child(parent, base, blen);
    if (idx && nodes[idx].kind == NODE_DIR && kind == NODE_DIR) {
        nodes[idx].mode = mode;
        nodes[idx].mtime = mtime;
        return;
    }
    if (idx)
        return; /* duplicate entry: the first one wins */
    idx = add_node(parent, base, blen, kind, mode);
    nodes[idx].mtime = mtime;
    nodes[idx].data = data;
    nodes[idx].size = size;
}

void fs_add_image_entry(const char *path, uint32_t len, uint32_t kind, uint32_t mode, uint32_t mtime,
                        const uint8_t *data, uint64_t size, uint32_t image_node)
{
    uint32_t nk = kind == S_IFDIR ? NODE_DIR : kind == S_IFREG ? NODE_FILE : NODE_SYMLINK;
    uint32_t before = node_count;
    add_path(path, len, nk, (mode & ~S_IFMT) | kind, mtime, data, size);
    if (node_count > before && nodes[node_count - 1].kind == nk)
        nodes[node_count - 1].image_node = image_node;
}

/* The few /proc and /sys answers runtimes ask for: one CPU (glibc's get_nprocs and
 * sysconf read these; OpenBLAS and OpenMP size their pools from them). Read-only
 * and fixed: only what is true of this guest at any time. */
static const char cpu_list[] = "0\n";
static const char cpuinfo[] = "processor\t: 0\nvendor_id\t: thaw\nmodel name\t: thaw vCPU\n"
                              "cpu cores\t: 1\nsiblings\t: 1\n\n";

static void add_static_file(const char *path, const char *text, uint64_t size)
{
    if (!lookup_path_exists(path))
        add_path(path, strlen(path), NODE_FILE, S_IFREG | 0444, 0, (const uint8_t *)text, size);
}

/* /proc/meminfo and /proc/self/maps, which TBB (OpenCV's thread pool and allocator)
 * and glibc's pthread_getattr_np read: made at every open from the allocator's state,
 * so they tell what is true now. */
static void add_generated_file(const char *path, enum gen_kind kind)
{
    if (lookup_path_exists(path))
        return;
    uint32_t before = node_count;
    add_path(path, strlen(path), NODE_FILE, S_IFREG | 0444, 0, 0, 0);
    if (node_count > before)
        nodes[node_count - 1].gen = (uint8_t)kind;
}

/* Fills a generated file's buffer (allocated on first use) with what it says now. */
static int64_t generate(struct node *nd)
{
    if (!nd->data && !(nd->data = mm_alloc_pages(GEN_BYTES)))
        return -ENOMEM;
    char *buf = (char *)(uintptr_t)nd->data;
    if (nd->gen == GEN_MAPS) {
        nd->size = mm_write_maps(buf, GEN_BYTES);
        return 0;
    }
    uint64_t total, free_bytes;
    mm_stats(&total, &free_bytes);
    int n = ksnprintf(buf, GEN_BYTES,
                      "MemTotal:       %lu kB\nMemFree:        %lu kB\nMemAvailable:   %lu kB\n"
                      "Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\n"
                      "SwapFree:              0 kB\nHugePages_Total:       0\nHugePages_Free:        0\n"
                      "Hugepagesize:       2048 kB\n",
                      total >> 10, free_bytes >> 10, free_bytes >> 10);
    nd->size = n > 0 ? (uint64_t)n : 0;
    return 0;
}

/* name: a file in /dev */
static void add_device(const char *name, enum file_type type)
{
    uint32_t dev = ensure_dirs("dev", 3);
    uint32_t n = lookup_child(dev, name, strlen(name));
    if (!n)
        n = add_node(dev, name, strlen(name), NODE_DEV, S_IFCHR | 0666);
    nodes[n].kind = NODE_DEV;
    nodes[n].mode = S_IFCHR | 0666;
    nodes[n].dev = type;
}

void fs_init(const uint8_t *archive, uint64_t size)
{
    /* Size the tables first: an entry adds at most one node per path component (its
     * missing parent directories, then itself), whether or not the archive also
     * has entries for those directories. */
    uint32_t entries = 0;
    struct cpio_entry e;
    size_t off = 0;
    int r;
    while (archive && (r = cpio_next(archive, size, &off, &e)) == 1) {
        entries++;
        for (size_t i = 0; i < e.name_len; i++)
            entries += e.name[i] == '/';
    }
    if (archive && r < 0)
        kpanic("file archive is malformed near offset %lu", (uint64_t)off);
    /* Plus the root filesystem image (each entry adds at most one node: the image lists
     * every parent directory before its children), the root, /dev and its device
     * files, /tmp, with headroom. */
    node_cap = entries + rootfs_node_count() + 64 + TMP_NODES;
    nodes = mm_alloc_pages((uint64_t)node_cap * sizeof *nodes);
    uint32_t slots = 1;
    while (slots < node_cap * 2)
        slots <<= 1;
    hash_slots = mm_alloc_pages((uint64_t)slots * sizeof *hash_slots);
    if (!nodes || !hash_slots)
        kpanic("out of memory for the file table");
    hash_mask = slots - 1;
    add_node(0, "", 0, NODE_DIR, S_IFDIR | 0755);

    for (off = 0; archive && cpio_next(archive, size, &off, &e) == 1;) {
        uint32_t kind;
        switch (e.mode & S_IFMT) {
        case S_IFDIR: kind = NODE_DIR; break;
        case S_IFREG: kind = NODE_FILE; break;
        case S_IFLNK: kind = NODE_SYMLINK; break;
        default: continue;
        }
        add_path(e.name, e.name_len, kind, e.mode, e.mtime, e.data, e.size);
    }
    /* Archive entries come first: a function's own files win over the image's. */
    rootfs_populate();
    add_device("invoke", FT_INVOKE);
    add_device("null", FT_NULL);
    add_device("urandom", FT_URANDOM);
    add_device("random", FT_URANDOM);
    uint32_t tmp = ensure_dirs("tmp", 3);
    nodes[tmp].tmp = true;
    nodes[tmp].mode = S_IFDIR | 01777;
    add_static_file("sys/devices/system/cpu/online", cpu_list, sizeof cpu_list - 1);
    add_static_file("sys/devices/system/cpu/possible", cpu_list, sizeof cpu_list - 1);
    add_static_file("sys/devices/system/cpu/present", cpu_list, sizeof cpu_list - 1);
    add_static_file("proc/cpuinfo", cpuinfo, sizeof cpuinfo - 1);
    add_generated_file("proc/meminfo", GEN_MEMINFO);
    add_generated_file("proc/self/maps", GEN_MAPS);

    files[0] = (struct file){.type = FT_NULL, .flags = O_RDONLY};
    files[1] = (struct file){.type = FT_CONSOLE, .flags = O_WRONLY, .stream = 1};
    files[2] = (struct file){.type = FT_CONSOLE, .flags = O_WRONLY, .stream = 2};
    cwd_node = 0;
}

/* Resolves path (relative to dir) to a node. follow_last: resolve a final symlink. */
static int64_t resolve(uint32_t dir, const char *path, bool follow_last, int depth, uint32_t *out)
{
    if (depth > MAX_SYMLINK_DEPTH)
        return -ELOOP;
    uint32_t cur = path[0] == '/' ? 0 : dir;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *c = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - c);
        bool last = true;
        for (const char *q = p; *q; q++)
            if (*q != '/') {
                last = false;
                break;
            }
        if (len > 255)
            return -ENAMETOOLONG;
        if (nodes[cur].kind != NODE_DIR)
            return -ENOTDIR;
        if (len == 1 && c[0] == '.')
            continue;
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            cur = nodes[cur].parent;
            continue;
        }
        uint32_t child = lookup_child(cur, c, len);
        if (!child)
            return -ENOENT;
        if (nodes[child].kind == NODE_SYMLINK && (!last || follow_last)) {
            char target[256];
            size_t tl = MIN(nodes[child].size, sizeof target - 1);
            memcpy(target, nodes[child].data, tl);
            target[tl] = 0;
            int64_t r = resolve(cur, target, true, depth + 1, &child);
            if (r < 0)
                return r;
        }
        cur = child;
        if (last && *p == '/' && nodes[cur].kind != NODE_DIR)
            return -ENOTDIR;
    }
    *out = cur;
    return 0;
}

struct file *fs_file(int fd)
{
    if (fd < 0 || fd >= MAX_FDS || files[fd].type == FT_NONE)
        return 0;
    return &files[fd];
}

static int alloc_fd(int min);

int64_t fs_install(enum file_type type, uint32_t node, uint32_t flags, bool cloexec)
{
    int fd = alloc_fd(0);
    if (fd < 0)
        return fd;
    files[fd] = (struct file){.type = type, .node = node, .flags = O_RDWR | flags, .cloexec = cloexec};
    return fd;
}

static int alloc_fd(int min)
{
    for (int fd = min < 0 ? 0 : min; fd < MAX_FDS; fd++)
        if (files[fd].type == FT_NONE)
            return fd;
    return -EMFILE;
}

static int64_t base_dir(int dirfd, uint32_t *out)
{
    if (dirfd == AT_FDCWD) {
        *out = cwd_node;
        return 0;
    }
    struct file *f = fs_file(dirfd);
    if (!f)
        return -EBADF;
    if (f->type != FT_DIR)
        return -ENOTDIR;
    *out = f->node;
    return 0;
}

static int64_t check_path(const char *path)
{
    int64_t len = user_string_len(path, 4096);
    if (len < 0)
        return len;
    return len == 0 ? -ENOENT : 0;
}

/* ---- the writable /tmp: files in guest memory --------------------------------------- */

/* The directory a path's last component lives in, and that component. */
static int64_t resolve_parent(int dirfd, const char *path, uint32_t *parent, const char **name, size_t *len)
{
    int64_t r = check_path(path);
    uint32_t dir;
    if (r < 0 || (r = base_dir(dirfd, &dir)) < 0)
        return r;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t s = n;
    while (s && path[s - 1] != '/')
        s--;
    *name = path + s;
    *len = n - s;
    if (*len == 0 || (*len == 1 && path[s] == '.') || (*len == 2 && path[s] == '.' && path[s + 1] == '.'))
        return -EINVAL;
    if (*len > 255)
        return -ENAMETOOLONG;
    if (s == 0) {
        *parent = dir;
    } else {
        char prefix[4096];
        memcpy(prefix, path, s);
        prefix[s] = 0;
        if ((r = resolve(dir, prefix, true, 0, parent)) < 0)
            return r;
    }
    return nodes[*parent].kind == NODE_DIR ? 0 : -ENOTDIR;
}

/* Names of /tmp entries are copied into guest memory (the caller's string is not ours). */
static const char *tmp_name(const char *name, size_t len)
{
    static char *arena;
    static uint64_t arena_left;
    if (arena_left < len) {
        arena = mm_alloc_pages(64 << 10);
        arena_left = arena ? 64 << 10 : 0;
        if (!arena)
            return 0;
    }
    memcpy(arena, name, len);
    const char *p = arena;
    arena += len;
    arena_left -= len;
    return p;
}

static int64_t tmp_create(uint32_t parent, const char *name, size_t len, uint32_t kind, uint32_t mode)
{
    if (!nodes[parent].tmp)
        return -EROFS;
    if (node_count >= node_cap)
        return -ENOSPC;
    const char *copy = tmp_name(name, len);
    if (!copy)
        return -ENOSPC;
    uint32_t n = add_node(parent, copy, len, kind, mode);
    nodes[n].tmp = true;
    nodes[n].mtime = (uint32_t)(time_realtime_ns() / 1000000000u);
    return n;
}

/* Writes into a /tmp file at off, growing it (doubling, in guest memory). */
static int64_t tmp_write(struct node *nd, const void *buf, uint64_t len, uint64_t off)
{
    if (off + len < off || off + len > (1ull << 32))
        return -EFBIG;
    if (off + len > nd->cap) {
        uint64_t cap = nd->cap ? nd->cap : 4096;
        while (cap < off + len)
            cap *= 2;
        uint8_t *d = mm_alloc_pages(cap);
        if (!d)
            return -ENOSPC;
        if (nd->data) {
            memcpy(d, nd->data, nd->size);
            mm_free_pages((void *)(uintptr_t)nd->data, nd->cap);
        }
        nd->data = d;
        nd->cap = cap;
    }
    uint8_t *d = (uint8_t *)(uintptr_t)nd->data;
    if (off > nd->size)
        memset(d + nd->size, 0, off - nd->size);
    memcpy(d + off, buf, len);
    if (off + len > nd->size)
        nd->size = off + len;
    nd->mtime = (uint32_t)(time_realtime_ns() / 1000000000u);
    return (int64_t)len;
}

static void tmp_truncate(struct node *nd, uint64_t size)
{
    if (size > nd->size) {
        static const uint8_t zero[1];
        if (tmp_write(nd, zero, 0, size) < 0)
            return;
        memset((uint8_t *)(uintptr_t)nd->data + nd->size, 0, size - nd->size);
    }
    nd->size = size;
}

/* Takes node n out of its directory and the lookup table (parent UINT32_MAX); open
 * descriptors keep its data. */
static void tmp_unlink_node(uint32_t n)
{
    hash_remove(n);
    uint32_t p = nodes[n].parent;
    uint32_t *link = &nodes[p].first_child;
    while (*link && *link != n)
        link = &nodes[*link].next_sibling;
    if (*link)
        *link = nodes[n].next_sibling;
    nodes[n].parent = UINT32_MAX;
}

int64_t sys_unlinkat(int dirfd, const char *path, uint64_t flags)
{
    enum { AT_REMOVEDIR = 0x200 };
    uint32_t parent, n;
    const char *name;
    size_t len;
    int64_t r = resolve_parent(dirfd, path, &parent, &name, &len);
    if (r < 0)
        return r;
    if (!(n = lookup_child(parent, name, len)))
        return -ENOENT;
    if (!nodes[n].tmp || n == 0 || !nodes[parent].tmp)
        return -EROFS;
    if (flags & AT_REMOVEDIR) {
        if (nodes[n].kind != NODE_DIR)
            return -ENOTDIR;
        if (nodes[n].first_child)
            return -ENOTEMPTY;
    } else if (nodes[n].kind == NODE_DIR) {
        return -EISDIR;
    }
    tmp_unlink_node(n);
    return 0;
}

/* rename, renameat, renameat2 (flags 0 or RENAME_NOREPLACE) within /tmp: what atomic
 * writes (write a temporary name, rename over the real one) need. A replaced target
 * goes as if unlinked (its open descriptors keep its data); a directory may replace
 * only an empty directory and never move beneath itself. */
int64_t sys_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, uint64_t flags)
{
    enum { RENAME_NOREPLACE = 1 };
    uint32_t op, np, o, n;
    const char *oname, *nname;
    size_t olen, nlen;
    if (flags & ~(uint64_t)RENAME_NOREPLACE)
        return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT: not needed here */
    int64_t r = resolve_parent(olddirfd, oldpath, &op, &oname, &olen);
    if (r < 0 || (r = resolve_parent(newdirfd, newpath, &np, &nname, &nlen)) < 0)
        return r == -EINVAL ? -EBUSY : r; /* "/", "." or ".." */
    if (!(o = lookup_child(op, oname, olen)))
        return -ENOENT;
    if (!nodes[o].tmp || !nodes[op].tmp || !nodes[np].tmp)
        return -EROFS;
    n = lookup_child(np, nname, nlen);
    if (n == o)
        return 0; /* the same entry: nothing to do, as on Linux */
    if (n && (flags & RENAME_NOREPLACE))
        return -EEXIST;
    if (nodes[o].kind == NODE_DIR) {
        for (uint32_t d = np; d != UINT32_MAX && d != 0; d = nodes[d].parent)
            if (d == o)
                return -EINVAL; /* into its own subtree */
        if (n && nodes[n].kind != NODE_DIR)
            return -ENOTDIR;
        if (n && nodes[n].first_child)
            return -ENOTEMPTY;
    } else if (n && nodes[n].kind == NODE_DIR) {
        return -EISDIR;
    }
    const char *copy = nname;
    if (np != op || nlen != olen || memcmp(nname, oname, nlen)) {
        if (!(copy = tmp_name(nname, nlen))) /* the caller's string is not ours */
            return -ENOSPC;
    } else {
        copy = nodes[o].name;
    }
    if (n)
        tmp_unlink_node(n);
    tmp_unlink_node(o);
    nodes[o].name = copy;
    nodes[o].name_len = (uint32_t)nlen;
    nodes[o].parent = np;
    nodes[o].next_sibling = nodes[np].first_child;
    nodes[np].first_child = o;
    hash_insert(o);
    nodes[np].mtime = nodes[op].mtime = (uint32_t)(time_realtime_ns() / 1000000000u);
    return 0;
}

int64_t sys_mkdirat(int dirfd, const char *path, uint64_t mode)
{
    uint32_t parent;
    const char *name;
    size_t len;
    int64_t r = resolve_parent(dirfd, path, &parent, &name, &len);
    if (r == -EINVAL)
        return -EEXIST; /* "/", "." or ".." */
    if (r < 0)
        return r;
    if (lookup_child(parent, name, len))
        return -EEXIST;
    r = tmp_create(parent, name, len, NODE_DIR, S_IFDIR | (mode & 07777));
    return r < 0 ? r : 0;
}

int64_t sys_ftruncate(int fd, int64_t size)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (f->type != FT_REGULAR || (f->flags & O_ACCMODE) == O_RDONLY)
        return -EINVAL;
    if (!nodes[f->node].tmp)
        return -EROFS;
    if (size < 0 || (uint64_t)size > (1ull << 32))
        return -EINVAL;
    tmp_truncate(&nodes[f->node], (uint64_t)size);
    return 0;
}

int64_t sys_pwrite64(int fd, const void *buf, uint64_t len, int64_t off)
{
    struct file *f = fs_file(fd);
    if (!f || (f->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    if (off < 0)
        return -EINVAL;
    if (!user_range_ok((uint64_t)(uintptr_t)buf, len))
        return -EFAULT;
    if (f->type != FT_REGULAR)
        return -ESPIPE;
    return tmp_write(&nodes[f->node], buf, len, (uint64_t)off);
}

int64_t sys_openat(int dirfd, const char *path, uint64_t flags, uint64_t mode)
{
    int64_t r = check_path(path);
    uint32_t dir, n;
    if (r < 0 || (r = base_dir(dirfd, &dir)) < 0)
        return r;
    r = resolve(dir, path, !(flags & O_NOFOLLOW), 0, &n);
    if (r == -ENOENT && (flags & O_CREAT)) {
        uint32_t parent;
        const char *name;
        size_t len;
        if ((r = resolve_parent(dirfd, path, &parent, &name, &len)) < 0)
            return r;
        if ((r = tmp_create(parent, name, len, NODE_FILE, S_IFREG | (mode & 0777))) < 0)
            return r;
        n = (uint32_t)r;
        flags &= ~(uint64_t)O_EXCL;
    } else if (r < 0) {
        return r;
    } else if ((flags & O_CREAT) && (flags & O_EXCL)) {
        return -EEXIST;
    }
    struct node *nd = &nodes[n];
    if ((flags & O_DIRECTORY) && nd->kind != NODE_DIR)
        return -ENOTDIR;
    if (nd->kind == NODE_SYMLINK)
        return -ELOOP;
    bool writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    if (nd->kind == NODE_DIR && writing)
        return -EISDIR;
    if (nd->kind == NODE_FILE && writing && !nd->tmp)
        return -EROFS;
    if (nd->kind == NODE_FILE && nd->tmp && (flags & O_TRUNC))
        tmp_truncate(nd, 0);
    if (nd->gen && (r = generate(nd)) < 0)
        return r;
    int fd = alloc_fd(0);
    if (fd < 0)
        return fd;
    struct file *f = &files[fd];
    *f = (struct file){.node = n, .flags = (uint32_t)flags, .cloexec = !!(flags & O_CLOEXEC)};
    f->type = nd->kind == NODE_DIR ? FT_DIR : nd->kind == NODE_DEV ? (enum file_type)nd->dev : FT_REGULAR;
    return fd;
}

int64_t sys_close(int fd)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    pipe_unref(f);
    f->type = FT_NONE;
    return 0;
}

static int64_t file_pread(struct file *f, void *buf, uint64_t len, uint64_t off)
{
    switch (f->type) {
    case FT_REGULAR: {
        struct node *n = &nodes[f->node];
        if (off >= n->size)
            return 0;
        uint64_t c = MIN(len, n->size - off);
        memcpy(buf, n->data + off, c);
        return (int64_t)c;
    }
    case FT_DIR:
        return -EISDIR;
    case FT_NULL:
        return 0;
    case FT_URANDOM:
        random_bytes(buf, len);
        return (int64_t)len;
    case FT_INVOKE:
        return invoke_read(buf, len);
    case FT_PIPE:
        return pipe_read(f, buf, len);
    case FT_CONSOLE:
        return -EBADF;
    default:
        return -EBADF;
    }
}

int64_t sys_pread64(int fd, void *buf, uint64_t len, int64_t off)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (off < 0)
        return -EINVAL;
    if (!user_range_ok((uint64_t)(uintptr_t)buf, len))
        return -EFAULT;
    if (f->type != FT_REGULAR)
        return -ESPIPE;
    return file_pread(f, buf, len, (uint64_t)off);
}

int64_t sys_read(int fd, void *buf, uint64_t len)
{
    struct file *f = fs_file(fd);
    if (!f || (f->flags & O_ACCMODE) == O_WRONLY)
        return -EBADF;
    if (!user_range_ok((uint64_t)(uintptr_t)buf, len))
        return -EFAULT;
    int64_t r = file_pread(f, buf, len, f->offset);
    if (r > 0 && f->type == FT_REGULAR)
        f->offset += (uint64_t)r;
    return r;
}

int64_t sys_write(int fd, const void *buf, uint64_t len)
{
    struct file *f = fs_file(fd);
    if (!f || (f->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    if (!user_range_ok((uint64_t)(uintptr_t)buf, len))
        return -EFAULT;
    switch (f->type) {
    case FT_CONSOLE:
        console_write(f->stream, buf, len);
        return (int64_t)len;
    case FT_NULL:
    case FT_URANDOM:
        return (int64_t)len;
    case FT_INVOKE:
        return invoke_write(buf, len);
    case FT_PIPE:
        return pipe_write(f, buf, len);
    case FT_REGULAR: {
        struct node *nd = &nodes[f->node];
        int64_t r = tmp_write(nd, buf, len, (f->flags & O_APPEND) ? nd->size : f->offset);
        if (r > 0)
            f->offset = ((f->flags & O_APPEND) ? nd->size - (uint64_t)r : f->offset) + (uint64_t)r;
        return r;
    }
    default:
        return -EBADF;
    }
}

int64_t sys_readv(int fd, const struct linux_iovec *iov, int64_t cnt)
{
    if (cnt < 0 || cnt > 1024 || !user_range_ok((uint64_t)(uintptr_t)iov, (uint64_t)cnt * sizeof *iov))
        return -EINVAL;
    int64_t total = 0;
    for (int64_t i = 0; i < cnt; i++) {
        if (!iov[i].iov_len)
            continue;
        int64_t r = sys_read(fd, (void *)(uintptr_t)iov[i].iov_base, iov[i].iov_len);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((uint64_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

int64_t sys_writev(int fd, const struct linux_iovec *iov, int64_t cnt)
{
    if (cnt < 0 || cnt > 1024 || !user_range_ok((uint64_t)(uintptr_t)iov, (uint64_t)cnt * sizeof *iov))
        return -EINVAL;
    struct file *f = fs_file(fd);
    /* Console output gathered into one hypercall: a VM exit costs ~25 us. */
    if (f && f->type == FT_CONSOLE && cnt > 1) {
        char buf[1024];
        uint64_t used = 0, total = 0;
        bool fits = true;
        for (int64_t i = 0; i < cnt && fits; i++)
            fits = (used += iov[i].iov_len) <= sizeof buf;
        if (fits) {
            for (int64_t i = 0; i < cnt; i++) {
                if (!user_range_ok(iov[i].iov_base, iov[i].iov_len))
                    return -EFAULT;
                memcpy(buf + total, (const void *)(uintptr_t)iov[i].iov_base, iov[i].iov_len);
                total += iov[i].iov_len;
            }
            return sys_write(fd, buf, total);
        }
    }
    int64_t total = 0;
    for (int64_t i = 0; i < cnt; i++) {
        if (!iov[i].iov_len)
            continue;
        int64_t r = sys_write(fd, (const void *)(uintptr_t)iov[i].iov_base, iov[i].iov_len);
        if (r < 0)
            return total ? total : r;
        total += r;
    }
    return total;
}

int64_t sys_lseek(int fd, int64_t off, int whence)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (f->type != FT_REGULAR && f->type != FT_DIR)
        return -ESPIPE;
    int64_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)f->offset; break;
    case SEEK_END: base = (int64_t)nodes[f->node].size; break;
    default: return -EINVAL;
    }
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
        return -EINVAL;
    f->offset = (uint64_t)(base + off);
    return (int64_t)f->offset;
}

static void fill_stat(uint32_t n, struct linux_stat *st)
{
    struct node *nd = &nodes[n];
    memset(st, 0, sizeof *st);
    st->st_dev = 1;
    st->st_ino = n + 1;
    st->st_nlink = nd->kind == NODE_DIR ? 2 : 1;
    st->st_mode = nd->mode;
    st->st_size = (int64_t)nd->size;
    st->st_blksize = 4096;
    st->st_blocks = (int64_t)((nd->size + 511) / 512);
    st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = nd->mtime;
}

static int64_t stat_file(struct file *f, struct linux_stat *st)
{
    if (f->type == FT_PIPE || f->type == FT_EPOLL) {
        memset(st, 0, sizeof *st);
        st->st_dev = 2;
        st->st_ino = 100000 + f->node;
        st->st_mode = f->type == FT_EPOLL ? 0600 : pipe_is_socket(f) ? 0140777 : (S_IFIFO | 0600);
        st->st_nlink = 1;
        st->st_blksize = 4096;
        return 0;
    }
    if (f->type != FT_REGULAR && f->type != FT_DIR) {
        /* Console and device files: character devices. */
        memset(st, 0, sizeof *st);
        st->st_dev = 1;
        st->st_ino = f->type == FT_CONSOLE ? 0 : f->node + 1;
        st->st_rdev = f->type;
        st->st_mode = S_IFCHR | (f->type == FT_CONSOLE ? 0620 : 0666);
        st->st_nlink = 1;
        st->st_blksize = 4096;
        return 0;
    }
    fill_stat(f->node, st);
    return 0;
}

int64_t sys_fstat(int fd, struct linux_stat *st)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (!user_range_ok((uint64_t)(uintptr_t)st, sizeof *st))
        return -EFAULT;
    return stat_file(f, st);
}

int64_t sys_newfstatat(int dirfd, const char *path, struct linux_stat *st, uint64_t flags)
{
    if (!user_range_ok((uint64_t)(uintptr_t)st, sizeof *st))
        return -EFAULT;
    if ((flags & AT_EMPTY_PATH) && path && user_string_len(path, 1) == 0) {
        if (dirfd == AT_FDCWD) {
            fill_stat(cwd_node, st);
            return 0;
        }
        return sys_fstat(dirfd, st);
    }
    int64_t r = check_path(path);
    uint32_t dir, n;
    if (r < 0 || (r = base_dir(dirfd, &dir)) < 0)
        return r;
    if ((r = resolve(dir, path, !(flags & AT_SYMLINK_NOFOLLOW), 0, &n)) < 0)
        return r;
    fill_stat(n, st);
    return 0;
}

int64_t sys_statx(int dirfd, const char *path, uint64_t flags, uint64_t mask, struct linux_statx *sx)
{
    (void)mask;
    struct linux_stat st;
    if (!user_range_ok((uint64_t)(uintptr_t)sx, sizeof *sx))
        return -EFAULT;
    int64_t r = sys_newfstatat(dirfd, path, &st, flags);
    if (r < 0)
        return r;
    memset(sx, 0, sizeof *sx);
    sx->stx_mask = 0x7ff; /* STATX_BASIC_STATS */
    sx->stx_blksize = (uint32_t)st.st_blksize;
    sx->stx_nlink = (uint32_t)st.st_nlink;
    sx->stx_mode = (uint16_t)st.st_mode;
    sx->stx_ino = st.st_ino;
    sx->stx_size = (uint64_t)st.st_size;
    sx->stx_blocks = (uint64_t)st.st_blocks;
    sx->stx_atime.tv_sec = sx->stx_mtime.tv_sec = sx->stx_ctime.tv_sec = st.st_mtim.tv_sec;
    sx->stx_dev_minor = 1;
    return 0;
}

int64_t sys_faccessat(int dirfd, const char *path, uint64_t mode)
{
    enum { W_OK = 2 };
    int64_t r = check_path(path);
    uint32_t dir, n;
    if (r < 0 || (r = base_dir(dirfd, &dir)) < 0)
        return r;
    if ((r = resolve(dir, path, true, 0, &n)) < 0)
        return r;
    if ((mode & W_OK) && nodes[n].kind != NODE_DEV && !nodes[n].tmp)
        return -EROFS;
    return 0;
}

int64_t sys_readlinkat(int dirfd, const char *path, char *buf, uint64_t size)
{
    int64_t r = check_path(path);
    uint32_t dir, n;
    if (r < 0 || (r = base_dir(dirfd, &dir)) < 0)
        return r;
    if (!user_range_ok((uint64_t)(uintptr_t)buf, size))
        return -EFAULT;
    if ((r = resolve(dir, path, false, 0, &n)) < 0)
        return r;
    if (nodes[n].kind != NODE_SYMLINK)
        return -EINVAL;
    uint64_t c = MIN(size, nodes[n].size);
    memcpy(buf, nodes[n].data, c);
    return (int64_t)c;
}

int64_t sys_getdents64(int fd, void *buf, uint64_t size)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (f->type != FT_DIR)
        return -ENOTDIR;
    if (!user_range_ok((uint64_t)(uintptr_t)buf, size))
        return -EFAULT;
    /* offset counts entries: 0 ".", 1 "..", then children in list order. */
    uint64_t pos = 0, used = 0;
    uint32_t child = nodes[f->node].first_child;
    for (;; pos++) {
        const char *name;
        size_t nlen;
        uint32_t ino, type;
        if (pos == 0) {
            name = ".", nlen = 1, ino = f->node + 1, type = DT_DIR;
        } else if (pos == 1) {
            name = "..", nlen = 2, ino = nodes[f->node].parent + 1, type = DT_DIR;
        } else {
            if (!child)
                break;
            struct node *c = &nodes[child];
            name = c->name, nlen = c->name_len, ino = child + 1;
            type = c->kind == NODE_DIR ? DT_DIR : c->kind == NODE_SYMLINK ? DT_LNK
                 : c->kind == NODE_DEV ? DT_CHR : DT_REG;
            child = c->next_sibling;
        }
        if (pos < f->offset)
            continue;
        uint64_t reclen = ALIGN_UP(sizeof(struct linux_dirent64) + nlen + 1, 8);
        if (used + reclen > size) {
            if (used == 0)
                return -EINVAL;
            break;
        }
        struct linux_dirent64 *d = (void *)((uint8_t *)buf + used);
        d->d_ino = ino;
        d->d_off = (int64_t)pos + 1;
        d->d_reclen = (uint16_t)reclen;
        d->d_type = (uint8_t)type;
        memcpy(d->d_name, name, nlen);
        memset(d->d_name + nlen, 0, reclen - sizeof *d - nlen);
        used += reclen;
        f->offset = pos + 1;
    }
    return (int64_t)used;
}

static int64_t path_of(uint32_t n, char *buf, uint64_t size)
{
    /* Build "/a/b/c" from the leaf up, then shift it to the front. */
    char tmp[4096];
    size_t pos = sizeof tmp;
    tmp[--pos] = 0;
    if (n == 0)
        tmp[--pos] = '/';
    for (; n != 0; n = nodes[n].parent) {
        if (pos < nodes[n].name_len + 2)
            return -ENAMETOOLONG;
        pos -= nodes[n].name_len;
        memcpy(tmp + pos, nodes[n].name, nodes[n].name_len);
        tmp[--pos] = '/';
    }
    uint64_t len = sizeof tmp - pos;
    if (len > size)
        return -ERANGE;
    memcpy(buf, tmp + pos, len);
    return (int64_t)len;
}

int64_t sys_getcwd(char *buf, uint64_t size)
{
    if (!user_range_ok((uint64_t)(uintptr_t)buf, size))
        return -EFAULT;
    return path_of(cwd_node, buf, size);
}

int64_t sys_chdir(const char *path)
{
    int64_t r = check_path(path);
    uint32_t n;
    if (r < 0 || (r = resolve(cwd_node, path, true, 0, &n)) < 0)
        return r;
    if (nodes[n].kind != NODE_DIR)
        return -ENOTDIR;
    cwd_node = n;
    return 0;
}

int64_t sys_dup3(int oldfd, int newfd, uint64_t flags, bool any_slot)
{
    struct file *f = fs_file(oldfd);
    if (!f)
        return -EBADF;
    if (any_slot) {
        newfd = alloc_fd(newfd);
        if (newfd < 0)
            return newfd;
    } else if (newfd < 0 || newfd >= MAX_FDS) {
        return -EBADF;
    }
    if (newfd == oldfd)
        return newfd;
    if (files[newfd].type != FT_NONE)
        sys_close(newfd); /* dup2 onto an open descriptor closes it first */
    pipe_ref(f);
    files[newfd] = *f;
    files[newfd].cloexec = !!(flags & O_CLOEXEC);
    return newfd;
}

int64_t sys_fcntl(int fd, int cmd, uint64_t arg)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    switch (cmd) {
    case F_DUPFD: return sys_dup3(fd, (int)arg, 0, true);
    case F_DUPFD_CLOEXEC: return sys_dup3(fd, (int)arg, O_CLOEXEC, true);
    case 5: case 36: /* F_GETLK, F_OFD_GETLK: one process, so no lock ever conflicts */
        if (!user_range_ok(arg, 2))
            return -EFAULT;
        *(int16_t *)(uintptr_t)arg = 2; /* F_UNLCK */
        return 0;
    case 6: case 7: case 37: case 38: /* F_SETLK(W), F_OFD_SETLK(W): always granted */
        return user_range_ok(arg, 2) ? 0 : -EFAULT;
    case F_GETFD: return f->cloexec ? FD_CLOEXEC : 0;
    case F_SETFD: f->cloexec = arg & FD_CLOEXEC; return 0;
    case F_GETFL: return f->flags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
    case F_SETFL: f->flags = (f->flags & ~(uint32_t)(O_APPEND | O_NONBLOCK)) | (arg & (O_APPEND | O_NONBLOCK)); return 0;
    default: return -EINVAL;
    }
}

int64_t sys_ioctl(int fd, uint64_t req, uint64_t arg)
{
    (void)arg;
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (req == FIONREAD && f->type == FT_INVOKE) {
        /* The size of the request a read() refused with EMSGSIZE; EPIPE once the host
         * has no more requests (an empty read is then the end, not an empty request). */
        if (invoke_ended())
            return -EPIPE;
        if (!user_range_ok(arg, sizeof(int)))
            return -EFAULT;
        *(int *)(uintptr_t)arg = (int)MIN(invoke_pending(), (uint64_t)INT32_MAX);
        return 0;
    }
    if (req == FIONREAD && f->type == FT_REGULAR) {
        if (!user_range_ok(arg, sizeof(int)))
            return -EFAULT;
        uint64_t size = nodes[f->node].size;
        *(int *)(uintptr_t)arg = (int)(f->offset < size ? MIN(size - f->offset, (uint64_t)INT32_MAX) : 0);
        return 0;
    }
    if (req == FIONBIO) {
        if (!user_range_ok(arg, sizeof(int)))
            return -EFAULT;
        f->flags = *(const int *)(uintptr_t)arg ? f->flags | O_NONBLOCK : f->flags & ~(uint32_t)O_NONBLOCK;
        return 0;
    }
    if (req == FIONREAD && f->type == FT_PIPE) {
        if (!user_range_ok(arg, sizeof(int)))
            return -EFAULT;
        *(int *)(uintptr_t)arg = (int)pipe_pending(f);
        return 0;
    }
    /* No terminals here: stdio then picks full buffering, which means fewer exits. */
    return -ENOTTY;
}

int64_t fs_map_check(int fd, uint64_t prot, bool shared, uint64_t off, uint64_t len)
{
    (void)off, (void)len;
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (f->type != FT_REGULAR && f->type != FT_NULL && f->type != FT_URANDOM)
        return -ENODEV;
    if ((f->flags & O_ACCMODE) == O_WRONLY)
        return -EACCES;
    /* Files are read-only: a shared writable mapping could never write back. */
    if (shared && (prot & PROT_WRITE) && f->type == FT_REGULAR)
        return -EACCES;
    return 0;
}

int64_t fs_map_in_place(int fd, uint64_t len, uint64_t prot, bool shared, uint64_t off)
{
    struct file *f = fs_file(fd);
    if (!f || f->type != FT_REGULAR || !nodes[f->node].image_node)
        return 0;
    return rootfs_map(nodes[f->node].image_node, len, prot, shared, off);
}

int64_t fs_map_fixed_in_image(int fd, uint64_t addr, uint64_t len, uint64_t off)
{
    if (fd < 0)
        return rootfs_map_fixed(addr, len, 0, 0, 0, 0);
    struct file *f = fs_file(fd);
    if (f && f->type == FT_REGULAR) {
        struct node *n = &nodes[f->node];
        return rootfs_map_fixed(addr, len, n->image_node, n->data, n->size, off);
    }
    return rootfs_map_fixed(addr, len, 0, 0, 0, 0); /* /dev/null and friends: zeros */
}

int64_t fs_map_file(int fd, void *dst, uint64_t len, uint64_t off)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (f->type == FT_NULL || f->type == FT_URANDOM)
        return 0;
    if (f->type != FT_REGULAR)
        return -EACCES;
    struct node *n = &nodes[f->node];
    if (off < n->size)
        memcpy(dst, n->data + off, MIN(len, n->size - off));
    return 0;
}
