/* The daemon's CLI client (libcurl): thaw deploy | invoke | ls | rm | stats | logs.
 * Every command takes --server URL (default $THAW_SERVER or http://127.0.0.1:8080)
 * and --token-file FILE (default $THAW_TOKEN_FILE). Errors are one line on stderr
 * and a non-zero exit. */
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/cli/cli.h"
#include "host/util/file.h"

struct buf {
    char *data;
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    struct buf *b = ctx;
    size_t add = size * n;
    char *nd = realloc(b->data, b->len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

struct client {
    const char *server;
    char token[300];
    const char *cmd;
    bool show_headers;
};

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    struct client *cl = ctx;
    size_t len = size * n;
    if (cl->show_headers && len > 7 && !strncasecmp(p, "X-Thaw-", 7))
        fprintf(stderr, "%.*s", (int)len, p);
    return len;
}

/* One request; returns the HTTP status (or -1), the body in out. */
static long request(struct client *cl, const char *method, const char *path, const void *body, size_t len,
                    const char *type, struct buf *out)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", cl->server, path);
    struct curl_slist *hdrs = NULL;
    char auth[400];
    if (cl->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", cl->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    char ct[128];
    if (type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", type);
        hdrs = curl_slist_append(hdrs, ct);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, cl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "thaw %s: cannot reach %s: %s\n", cl->cmd, cl->server, curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return status;
}

/* Prints the error of a failed answer in one line; returns 1. */
static int report(struct client *cl, long status, const struct buf *b)
{
    if (status < 0)
        return 1;
    const char *msg = NULL;
    json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    if (j)
        msg = json_string_value(json_object_get(j, "error"));
    fprintf(stderr, "thaw %s: %ld: %s\n", cl->cmd, status, msg ? msg : (b->data ? b->data : "(no body)"));
    json_decref(j);
    return 1;
}

static void print_json(const struct buf *b)
{
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
    if (j) {
        char *t = json_dumps(j, JSON_INDENT(2));
        puts(t ? t : "");
        free(t);
        json_decref(j);
    } else if (b->data) {
        fputs(b->data, stdout);
    }
}

/* ---- a tar of the function directory, in memory ------------------------------------ */

static la_ssize_t tar_write(struct archive *a, void *ctx, const void *p, size_t n)
{
    (void)a;
    return on_data((char *)p, 1, n, ctx) == n ? (la_ssize_t)n : -1;
}

static int add_tree(struct archive *a, const char *root, const char *rel, int depth)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d || depth > 16) {
        fprintf(stderr, "thaw deploy: cannot read %s\n", dir);
        if (d)
            closedir(d);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        /* Hidden files and caches are not part of a function (as in `thaw build`). */
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "__pycache__"))
            continue;
        char sub[PATH_MAX], full[PATH_MAX * 2];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (lstat(full, &st) < 0)
            continue;
        struct archive_entry *en = archive_entry_new();
        archive_entry_copy_stat(en, &st);
        archive_entry_set_pathname(en, sub);
        archive_entry_set_uid(en, 0);
        archive_entry_set_gid(en, 0);
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(full, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            archive_entry_set_symlink(en, target);
        } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
            archive_entry_free(en);
            continue;
        }
        if (archive_write_header(a, en) != ARCHIVE_OK) {
            fprintf(stderr, "thaw deploy: %s: %s\n", full, archive_error_string(a));
            rc = -1;
        } else if (S_ISREG(st.st_mode)) {
            uint8_t *data;
            size_t len;
            struct thaw_error err;
            if (read_file(full, 1u << 30, &data, &len, &err) < 0) {
                fprintf(stderr, "thaw deploy: %s\n", err.msg);
                rc = -1;
            } else {
                if (archive_write_data(a, data, len) != (la_ssize_t)len)
                    rc = -1;
                free(data);
            }
        }
        archive_entry_free(en);
        if (rc == 0 && S_ISDIR(st.st_mode))
            rc = add_tree(a, root, sub, depth + 1);
    }
    closedir(d);
    return rc;
}

static int make_tar(const char *dir, struct buf *out)
{
    char manifest[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/function.json", dir);
    if (access(manifest, R_OK) != 0) {
        fprintf(stderr, "thaw deploy: %s has no function.json\n", dir);
        return -1;
    }
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    int rc = archive_write_open(a, out, NULL, tar_write, NULL) == ARCHIVE_OK ? add_tree(a, dir, "", 0) : -1;
    if (archive_write_close(a) != ARCHIVE_OK)
        rc = -1;
    archive_write_free(a);
    return rc;
}

/* ---- the commands -------------------------------------------------------------------- */

static int load_token(struct client *cl, const char *file)
{
    if (!file)
        return 0;
    uint8_t *t;
    size_t len;
    struct thaw_error err;
    if (read_file(file, sizeof cl->token - 1, &t, &len, &err) < 0) {
        fprintf(stderr, "thaw %s: %s\n", cl->cmd, err.msg);
        return -1;
    }
    while (len && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
        len--;
    memcpy(cl->token, t, len);
    cl->token[len] = 0;
    free(t);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw deploy <name> <dir> [--restore reap|lazy|copy|boot|share] [--keep-alive MS] [--min N]\n"
            "                   [--max N] [--queue N] [--queue-timeout MS] [--timeout MS] [--memory MIB]\n"
            "                   [--keep-alive-policy fixed|hybrid] [--hybrid-bin MS] [--warmup N]\n"
            "       (--warmup N: N invocations with the files of <dir>/payloads before the snapshot)\n"
            "       thaw invoke <name> [JSON | @FILE] [-i]   (-i: print the X-Thaw-* headers on stderr)\n"
            "       thaw ls | thaw rm <name> | thaw stats <name> | thaw logs <name> [-n N]\n"
            "common: --server URL (default $THAW_SERVER or http://127.0.0.1:8080), --token-file FILE\n");
}

int cmd_client(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, 0, 'S'},   {"token-file", required_argument, 0, 'T'},
        {"restore", required_argument, 0, 'R'},  {"keep-alive", required_argument, 0, 'K'},
        {"min", required_argument, 0, 'm'},      {"max", required_argument, 0, 'M'},
        {"queue", required_argument, 0, 'q'},    {"queue-timeout", required_argument, 0, 'Q'},
        {"timeout", required_argument, 0, 'o'},  {"memory", required_argument, 0, 'y'},
        {"keep-alive-policy", required_argument, 0, 'P'}, {"hybrid-bin", required_argument, 0, 'B'},
        {"warmup", required_argument, 0, 'w'},
        {"headers", no_argument, 0, 'i'},        {"lines", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    struct client cl = {.cmd = argv[0]};
    cl.server = getenv("THAW_SERVER") && *getenv("THAW_SERVER") ? getenv("THAW_SERVER") : "http://127.0.0.1:8080";
    const char *token_file = getenv("THAW_TOKEN_FILE");
    char query[1024] = "";
    const char *lines = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "S:T:R:K:P:B:m:M:q:Q:o:y:w:in:h", opts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'S': cl.server = optarg; break;
        case 'T': token_file = optarg; break;
        case 'R': key = "restore"; break;
        case 'K': key = "keep_alive_ms"; break;
        case 'P': key = "keep_alive_policy"; break;
        case 'B': key = "hybrid_bin_ms"; break;
        case 'm': key = "min_instances"; break;
        case 'M': key = "max_instances"; break;
        case 'q': key = "queue_max"; break;
        case 'Q': key = "queue_timeout_ms"; break;
        case 'o': key = "timeout_ms"; break;
        case 'y': key = "memory_mib"; break;
        case 'w': key = "warmup"; break;
        case 'i': cl.show_headers = true; break;
        case 'n': lines = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (key) {
            size_t n = strlen(query);
            char *esc = curl_easy_escape(NULL, optarg, 0);
            snprintf(query + n, sizeof query - n, "%c%s=%s", n ? '&' : '?', key, esc ? esc : "");
            curl_free(esc);
        }
    }
    if (load_token(&cl, token_file) < 0)
        return 1;
    size_t len = strlen(cl.server);
    char server[1024];
    snprintf(server, sizeof server, "%.*s", (int)(len && cl.server[len - 1] == '/' ? len - 1 : len), cl.server);
    cl.server = server;
    int nargs = argc - optind;
    char **args = argv + optind;
    const char *cmd = cl.cmd;
    struct buf b = {0};
    char path[512];
    long st;
    int rc = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!strcmp(cmd, "deploy") && nargs == 2) {
        struct buf tar = {0};
        if (make_tar(args[1], &tar) < 0) {
            rc = 1;
        } else {
            snprintf(path, sizeof path, "/functions/%s%s", args[0], query);
            st = request(&cl, "PUT", path, tar.data, tar.len, "application/x-tar", &b);
            if (st != 200 && st != 201) {
                rc = report(&cl, st, &b);
            } else {
                json_t *j = json_loadb(b.data, b.len, 0, NULL);
                printf("deployed %s version %lld (build %.0f ms, boot %.0f ms, snapshot %.0f ms)\n", args[0],
                       (long long)json_integer_value(json_object_get(j, "version")),
                       json_real_value(json_object_get(j, "build_ms")), json_real_value(json_object_get(j, "boot_ms")),
                       json_real_value(json_object_get(j, "snapshot_ms")));
                json_decref(j);
            }
        }
        free(tar.data);
    } else if (!strcmp(cmd, "invoke") && (nargs == 1 || nargs == 2)) {
        uint8_t *body = (uint8_t *)"";
        size_t blen = 0;
        bool owned = false;
        if (nargs == 2 && args[1][0] == '@') {
            struct thaw_error err;
            if (read_file(args[1] + 1, 1u << 30, &body, &blen, &err) < 0) {
                fprintf(stderr, "thaw invoke: %s\n", err.msg);
                curl_global_cleanup();
                return 1;
            }
            owned = true;
        } else if (nargs == 2) {
            body = (uint8_t *)args[1];
            blen = strlen(args[1]);
        }
        snprintf(path, sizeof path, "/invoke/%s", args[0]);
        st = request(&cl, "POST", path, body, blen, "application/json", &b);
        if (st == 200) {
            fwrite(b.data ? b.data : "", 1, b.len, stdout);
            if (!b.len || b.data[b.len - 1] != '\n')
                putchar('\n');
        } else {
            rc = report(&cl, st, &b);
        }
        if (owned)
            free(body);
    } else if (!strcmp(cmd, "ls") && nargs == 0) {
        st = request(&cl, "GET", "/functions", NULL, 0, NULL, &b);
        if (st != 200) {
            rc = report(&cl, st, &b);
        } else {
            json_t *j = json_loadb(b.data, b.len, 0, NULL);
            json_t *arr = json_object_get(j, "functions");
            size_t i;
            json_t *f;
            printf("%-24s %7s %-7s %5s %5s %10s %12s\n", "NAME", "VERSION", "RESTORE", "IDLE", "BUSY", "INVOKED",
                   "SNAPSHOT");
            json_array_foreach(arr, i, f) {
                json_t *in = json_object_get(f, "instances");
                printf("%-24s %7lld %-7s %5lld %5lld %10lld %10.1fM\n",
                       json_string_value(json_object_get(f, "name")),
                       (long long)json_integer_value(json_object_get(f, "version")),
                       json_string_value(json_object_get(json_object_get(f, "config"), "restore")),
                       (long long)json_integer_value(json_object_get(in, "idle")),
                       (long long)json_integer_value(json_object_get(in, "busy")),
                       (long long)json_integer_value(json_object_get(f, "invocations")),
                       (double)json_integer_value(json_object_get(f, "snapshot_bytes")) / (1 << 20));
            }
            json_decref(j);
        }
    } else if (!strcmp(cmd, "rm") && nargs == 1) {
        snprintf(path, sizeof path, "/functions/%s", args[0]);
        st = request(&cl, "DELETE", path, NULL, 0, NULL, &b);
        if (st != 200)
            rc = report(&cl, st, &b);
        else
            printf("removed %s\n", args[0]);
    } else if (!strcmp(cmd, "stats") && nargs == 1) {
        snprintf(path, sizeof path, "/functions/%s", args[0]);
        st = request(&cl, "GET", path, NULL, 0, NULL, &b);
        if (st != 200)
            rc = report(&cl, st, &b);
        else
            print_json(&b);
    } else if (!strcmp(cmd, "logs") && nargs == 1) {
        snprintf(path, sizeof path, "/functions/%s/logs%s%s", args[0], lines ? "?n=" : "", lines ? lines : "");
        st = request(&cl, "GET", path, NULL, 0, NULL, &b);
        if (st != 200)
            rc = report(&cl, st, &b);
        else
            fwrite(b.data ? b.data : "", 1, b.len, stdout);
    } else {
        usage(stderr);
        rc = 2;
    }
    free(b.data);
    curl_global_cleanup();
    return rc;
}
