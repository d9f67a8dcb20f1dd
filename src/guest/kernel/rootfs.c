/* The root-filesystem image (include/thaw/rootfs.h), mapped by the monitor into
 * guest-physical memory above RAM. Its files join the file tree (fs.c) with their data
 * pointing into the image, so reading a file touches only the image pages it covers.
 * File mappings are served in place where Linux semantics allow it:
 *   - a read-only mapping of a file returns the file's own pages in the image;
 *   - glibc's loader mapping an ELF shared object (the whole span from the first
 *     segment's offset, then each later segment MAP_FIXED over it, then bss) gets the
 *     object's load layout, and the later mappings are recognised as no-ops. Each
 *     layout is handed out once: its data pages are then written in place (the host
 *     copies them on write); a second mapping of the same object is a copy in RAM.
 * Everything else falls back to copying (mm.c). */
#include "kernel.h"
#include "syscalls.h"
#include "rootfs.h"
#include "thaw/rootfs.h"

#define PAGE THAW_PAGE_SIZE
#define MAX_CLAIMED 1024

static const uint8_t *image;
static uint64_t image_size;
static const struct thaw_rootfs_node *nodes;
static uint32_t node_count;
static const struct thaw_rootfs_seg *segs;
static uint32_t seg_count;
static const char *paths;
static uint64_t paths_size;

/* Layouts handed out to a mapping (node indexes); their data pages may be written. */
static uint32_t claimed[MAX_CLAIMED];
static uint32_t claimed_count;

static bool in_image(uint64_t off, uint64_t len) { return off <= image_size && len <= image_size - off; }

bool rootfs_init(uint64_t base, uint64_t size)
{
    if (!size)
        return false;
    const struct thaw_rootfs_header *h = (const struct thaw_rootfs_header *)(uintptr_t)base;
    if (size < sizeof *h || memcmp(h->magic, THAW_ROOTFS_MAGIC, 8) != 0 || h->version != THAW_ROOTFS_VERSION)
        kpanic("root filesystem image: bad magic or version");
    if (h->image_size > size)
        kpanic("root filesystem image: larger than its mapping");
    image_size = h->image_size;
    if (h->node_count > (1u << 24) || h->seg_count > (1u << 24) ||
        !in_image(h->nodes_off, (uint64_t)h->node_count * sizeof *nodes) ||
        !in_image(h->segs_off, (uint64_t)h->seg_count * sizeof *segs) || !in_image(h->names_off, h->names_size) ||
        (h->nodes_off | h->segs_off) % 8)
        kpanic("root filesystem image: tables lie outside the image");
    image = (const uint8_t *)(uintptr_t)base;
    nodes = (const struct thaw_rootfs_node *)(image + h->nodes_off);
    node_count = h->node_count;
    segs = (const struct thaw_rootfs_seg *)(image + h->segs_off);
    seg_count = h->seg_count;
    paths = (const char *)(image + h->names_off);
    paths_size = h->names_size;
    return true;
}

uint32_t rootfs_node_count(void) { return node_count; }

uint64_t rootfs_end(void) { return image ? (uint64_t)(uintptr_t)image + image_size : 0; }
uint64_t rootfs_size(void) { return image ? image_size : 0; }

bool rootfs_contains(uint64_t addr, uint64_t len)
{
    uint64_t base = (uint64_t)(uintptr_t)image;
    return image && addr >= base && addr - base <= image_size && len <= image_size - (addr - base);
}

/* A node whose offsets are all inside the image, or NULL. */
static const struct thaw_rootfs_node *node_ok(uint32_t i)
{
    if (i >= node_count)
        return 0;
    const struct thaw_rootfs_node *n = &nodes[i];
    if (n->path_off > paths_size || n->path_len > paths_size - n->path_off || n->path_len == 0)
        return 0;
    if (n->kind != THAW_ROOTFS_DIR && !in_image(n->data_off, n->size))
        return 0;
    if (n->kind == THAW_ROOTFS_FILE && n->data_off % PAGE)
        return 0;
    if (n->load_off && (n->load_off % PAGE || n->load_size % PAGE || !in_image(n->load_off, n->load_size) ||
                        n->first_seg > seg_count || n->seg_count > seg_count - n->first_seg))
        return 0;
    return n;
}

void rootfs_populate(void)
{
    for (uint32_t i = 0; i < node_count; i++) {
        const struct thaw_rootfs_node *n = node_ok(i);
        if (!n)
            kpanic("root filesystem image: entry %u is malformed", i);
        uint32_t kind = n->kind == THAW_ROOTFS_DIR ? S_IFDIR : n->kind == THAW_ROOTFS_FILE ? S_IFREG : S_IFLNK;
        fs_add_image_entry(paths + n->path_off, n->path_len, kind, n->mode, n->mtime,
                           n->kind == THAW_ROOTFS_DIR ? 0 : image + n->data_off, n->size, i + 1);
    }
}

static bool is_claimed(uint32_t node)
{
    for (uint32_t i = 0; i < claimed_count; i++)
        if (claimed[i] == node)
            return true;
    return false;
}

int64_t rootfs_map(uint32_t image_node, uint64_t len, uint64_t prot, bool shared, uint64_t off)
{
    const struct thaw_rootfs_node *n = node_ok(image_node - 1);
    if (!n || n->kind != THAW_ROOTFS_FILE)
        return 0;
    uint64_t span = ALIGN_UP(len, PAGE);
    /* The loader's first mapping of a shared object. */
    if (n->load_off && n->seg_count && off == segs[n->first_seg].file_off && span <= n->load_size &&
        !is_claimed(image_node) && claimed_count < MAX_CLAIMED && !shared) {
        claimed[claimed_count++] = image_node;
        return (int64_t)(uintptr_t)(image + n->load_off);
    }
    /* Read-only views of the file itself (shared or private: nobody writes them). */
    if (!(prot & PROT_WRITE) && off < n->size && span <= ALIGN_UP(n->size, PAGE) - off)
        return (int64_t)(uintptr_t)(image + n->data_off + off);
    return 0;
}

/* The claimed layout containing addr, or NULL. */
static const struct thaw_rootfs_node *claimed_layout_at(uint64_t addr, uint32_t *node)
{
    for (uint32_t i = 0; i < claimed_count; i++) {
        const struct thaw_rootfs_node *n = &nodes[claimed[i] - 1];
        uint64_t base = (uint64_t)(uintptr_t)(image + n->load_off);
        if (addr >= base && addr - base < n->load_size) {
            *node = claimed[i];
            return n;
        }
    }
    return 0;
}

int64_t rootfs_map_fixed(uint64_t addr, uint64_t len, uint32_t image_node, const uint8_t *data, uint64_t size,
                         uint64_t off)
{
    uint64_t span = ALIGN_UP(len, PAGE);
    if (!rootfs_contains(addr, span))
        return -ENOMEM;
    uint32_t at_node = 0;
    const struct thaw_rootfs_node *n = claimed_layout_at(addr, &at_node);
    if (n) {
        uint64_t rel = addr - (uint64_t)(uintptr_t)(image + n->load_off);
        for (uint32_t s = n->first_seg; s < n->first_seg + n->seg_count; s++) {
            const struct thaw_rootfs_seg *g = &segs[s];
            /* A segment mapped over its own place in the layout: already there. */
            if (data && at_node == image_node && rel == g->at && off == g->file_off && span == g->len)
                return (int64_t)addr;
            /* bss over the layout's zero pages: zero until the program writes them, and
             * the loader maps bss before anyone could have. */
            if (!data && rel >= g->at + g->len && rel + span <= g->at + g->len + g->zero_len)
                return (int64_t)addr;
        }
    }
    /* Anything else: the mapping's contents, written in place. */
    uint8_t *dst = (uint8_t *)(uintptr_t)addr;
    uint64_t copy = data && off < size ? MIN(span, size - off) : 0;
    if (copy)
        memcpy(dst, data + off, copy);
    memset(dst + copy, 0, span - copy);
    return (int64_t)addr;
}
