/* cpio "newc" reader; see cpio.h. Built for the host and for the freestanding guest
 * kernel, hence the tiny local helpers instead of libc calls. */
#include "common/cpio.h"

#include <stdbool.h>

/* newc header layout: 6-byte magic, then 13 fields of 8 ASCII hex digits. */
enum {
    F_INO,
    F_MODE,
    F_UID,
    F_GID,
    F_NLINK,
    F_MTIME,
    F_FILESIZE,
    F_DEVMAJOR,
    F_DEVMINOR,
    F_RDEVMAJOR,
    F_RDEVMINOR,
    F_NAMESIZE,
    F_CHECK,
};

static bool bytes_eq(const uint8_t *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != (uint8_t)b[i])
            return false;
    return true;
}

/* Parses one 8-digit hex field; false on any non-hex digit. */
static bool parse_field(const uint8_t *hdr, int field, uint32_t *out)
{
    const uint8_t *p = hdr + 6 + 8 * (size_t)field;
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t c = p[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

/* pos + n, or false if that overflows or passes size. */
static bool advance(size_t pos, uint64_t n, size_t size, size_t *out)
{
    if (pos > size || n > (uint64_t)(size - pos))
        return false;
    *out = pos + (size_t)n;
    return true;
}

/* Rounds pos (<= size) up to a multiple of 4. Padding cut off by the end of the
 * archive is tolerated (the result is clamped to size): only real name or data bytes
 * past the end make an archive malformed. */
static size_t pad4(size_t pos, size_t size)
{
    size_t rem = pos & 3;
    if (rem == 0)
        return pos;
    size_t pad = 4 - rem;
    return size - pos < pad ? size : pos + pad;
}

int cpio_next(const uint8_t *archive, size_t size, size_t *offset, struct cpio_entry *out)
{
    size_t off = *offset;

    for (;;) {
        if (off == size) {
            *offset = size;
            return 0;
        }
        if (archive == NULL || off > size || size - off < CPIO_NEWC_HDR_SIZE)
            return -1;

        const uint8_t *hdr = archive + off;
        if (!bytes_eq(hdr, "07070", 5) || (hdr[5] != '1' && hdr[5] != '2'))
            return -1;

        /* Every field must be hex, even the ones we ignore: a corrupt header is a
         * sign we are out of sync with the stream. */
        uint32_t f[13];
        for (int i = 0; i < 13; i++)
            if (!parse_field(hdr, i, &f[i]))
                return -1;

        uint32_t namesize = f[F_NAMESIZE];
        size_t name_pos = off + CPIO_NEWC_HDR_SIZE; /* cannot overflow: checked above */
        size_t name_end, data_pos, data_end;
        if (namesize == 0 || !advance(name_pos, namesize, size, &name_end))
            return -1;
        const char *name = (const char *)(archive + name_pos);
        size_t name_len = namesize - 1;
        if (name[name_len] != '\0')
            return -1;
        /* An embedded NUL would make name_len and C-string views of the name disagree. */
        for (size_t i = 0; i < name_len; i++)
            if (name[i] == '\0')
                return -1;

        data_pos = pad4(name_end, size);
        if (!advance(data_pos, f[F_FILESIZE], size, &data_end))
            return -1;
        size_t next = pad4(data_end, size);

        if (name_len == sizeof(CPIO_TRAILER_NAME) - 1 &&
            bytes_eq((const uint8_t *)name, CPIO_TRAILER_NAME, name_len)) {
            /* End of this archive. Skip zero padding; anything else must be another
             * archive starting on a 4-byte boundary (as the kernel's initramfs
             * unpacker requires). */
            off = next;
            while (off < size && archive[off] == 0)
                off++;
            if (off < size && (off & 3) != 0)
                return -1;
            continue;
        }

        /* Strip leading "/" and "./" so names are relative to the archive root. */
        for (;;) {
            if (name_len >= 1 && name[0] == '/') {
                name++;
                name_len--;
            } else if (name_len >= 2 && name[0] == '.' && name[1] == '/') {
                name += 2;
                name_len -= 2;
            } else {
                break;
            }
        }

        out->name = name;
        out->name_len = name_len;
        out->mode = f[F_MODE];
        out->mtime = f[F_MTIME];
        out->size = f[F_FILESIZE];
        out->data = archive + data_pos;
        *offset = next;
        return 1;
    }
}
