/* image_rotate_c: the native twin of image_rotate. Decodes a shipped PNG
 * (/app/<image>.png) with libpng (static), rotates it 90 degrees clockwise `turns`
 * times, re-encodes it with libpng (PNG_IMAGE_FLAG_FAST: no row filtering, as
 * pypng does by default). Answers the output dimensions, the
 * CRC-32 of the rotated RGB8 pixels (must equal image_rotate's "pixels_crc32") and
 * the size and CRC-32 of the output PNG (libpng's encoder differs from pypng's, so
 * the PNG bytes differ from image_rotate's).
 *
 * Payload: {"image": "small"|"large", "turns": 1|2|3} (defaults "small", 1).
 * Serves /dev/invoke; with THAW_INVOKE_PATH set, answers the one request in that
 * file on stdout and exits (host testing).
 */
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thaw_function.h"
#include <zlib.h>

#define RESP_CAP 4096

/* The string value of "key" into out, or def if absent. */
static void json_str(const char *req, const char *key, const char *def, char *out, size_t cap)
{
    if (thaw_json_string(req, key, out, cap) < 0)
        snprintf(out, cap, "%s", def);
}

static size_t error(char *resp, const char *msg)
{
    return (size_t)snprintf(resp, RESP_CAP, "{\"error\": \"%s\"}", msg);
}

/* Rotates w x h RGB8 pixels 90 degrees clockwise into dst (h x w). */
static void rotate_cw(const unsigned char *src, unsigned char *dst, unsigned w, unsigned h)
{
    for (unsigned x = 0; x < w; x++)        /* destination row x ... */
        for (unsigned y = 0; y < h; y++)    /* ... column y = source row h-1-y */
            memcpy(dst + ((size_t)x * h + y) * 3, src + ((size_t)(h - 1 - y) * w + x) * 3, 3);
}

static size_t handle(const char *req, char *resp)
{
    char name[16], path[64];
    json_str(req, "image", "small", name, sizeof name);
    if (strcmp(name, "small") != 0 && strcmp(name, "large") != 0)
        return error(resp, "ValueError: unknown image");
    long turns = thaw_json_int(req, "turns", 1);
    if (turns < 0)
        return error(resp, "ValueError: bad turns");
    turns %= 4;
    snprintf(path, sizeof path, "/app/%s.png", name);

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return error(resp, "OSError: cannot read image");
    img.format = PNG_FORMAT_RGB;
    size_t size = PNG_IMAGE_SIZE(img);
    unsigned char *pix = malloc(size), *tmp = malloc(size);
    if (!pix || !tmp || !png_image_finish_read(&img, NULL, pix, 0, NULL)) {
        png_image_free(&img);
        free(pix), free(tmp);
        return error(resp, "OSError: cannot decode image");
    }
    unsigned w = img.width, h = img.height;
    for (long t = 0; t < turns; t++) {
        rotate_cw(pix, tmp, w, h);
        unsigned char *s = pix;
        pix = tmp, tmp = s;
        unsigned u = w;
        w = h, h = u;
    }
    uLong pixels_crc = crc32(crc32(0, Z_NULL, 0), pix, (uInt)size);

    png_image out;
    memset(&out, 0, sizeof out);
    out.version = PNG_IMAGE_VERSION;
    out.width = w;
    out.height = h;
    out.format = PNG_FORMAT_RGB;
    out.flags = PNG_IMAGE_FLAG_FAST; /* no row filters, like pypng's default */
    png_alloc_size_t png_len = PNG_IMAGE_PNG_SIZE_MAX(out); /* encode once */
    unsigned char *png = malloc(png_len);
    int ok = png && png_image_write_to_memory(&out, png, &png_len, 0, pix, 0, NULL);
    size_t len;
    if (ok) {
        uLong png_crc = crc32(crc32(0, Z_NULL, 0), png, (uInt)png_len);
        len = (size_t)snprintf(resp, RESP_CAP,
                               "{\"image\": \"%s\", \"turns\": %ld, \"width\": %u, "
                               "\"height\": %u, \"pixels_crc32\": %lu, \"bytes\": %lu, "
                               "\"crc32\": %lu}",
                               name, turns, w, h, pixels_crc, (unsigned long)png_len, png_crc);
    } else {
        len = error(resp, "OSError: cannot encode image");
    }
    free(png), free(pix), free(tmp);
    return len;
}

int main(void)
{
    return thaw_serve(handle, RESP_CAP);
}
