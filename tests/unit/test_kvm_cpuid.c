/* The kept KVM CPUID answer (host/vmm/kvm_cpuid.h): its file round-trips, every damaged
 * or foreign file is refused, and, with /dev/kvm, the second ask comes from the file
 * with the same entries as KVM's. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/vmm/kvm_cpuid.h"

static struct kvm_cpuid2 *new_cpuid(void)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + KVM_CPUID_MAX * sizeof(struct kvm_cpuid_entry2));
    assert_non_null(c);
    return c;
}

static const struct kvm_cpuid_key KEY = {.boot_id = "ab08ba6a-23c1-4d7b-ad8b-6550abc2b771", .ino = 82,
                                         .ctime_ns = 1796182201000000000ull};

static struct kvm_cpuid2 *sample(void)
{
    struct kvm_cpuid2 *c = new_cpuid();
    c->nent = 3;
    c->entries[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd, .ebx = 0x756e6547};
    c->entries[1] = (struct kvm_cpuid_entry2){.function = 1, .eax = 0x806f8, .ecx = 0xfffa3223, .edx = 0x1f8bfbff};
    c->entries[2] = (struct kvm_cpuid_entry2){.function = 7, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                              .ebx = 0x12345678};
    return c;
}

static void same_entries(const struct kvm_cpuid2 *a, const struct kvm_cpuid2 *b)
{
    assert_int_equal(a->nent, b->nent);
    for (uint32_t i = 0; i < a->nent; i++)
        assert_memory_equal(&a->entries[i], &b->entries[i], sizeof a->entries[i]);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct kvm_cpuid2 *c = sample(), *out = new_cpuid();
    uint8_t buf[KVM_CPUID_FILE_MAX];
    size_t len = kvm_cpuid_encode(&KEY, c, buf);
    assert_int_equal(len, 80 + 3 * 40 + 4);
    struct thaw_error err;
    assert_int_equal(kvm_cpuid_decode(buf, len, &KEY, out, &err), 0);
    same_entries(c, out);
    free(c);
    free(out);
}

static void refused(const uint8_t *buf, size_t len, const struct kvm_cpuid_key *k, const char *why)
{
    struct kvm_cpuid2 *out = new_cpuid();
    struct thaw_error err;
    assert_int_equal(kvm_cpuid_decode(buf, len, k, out, &err), -1);
    if (!strstr(err.msg, why))
        fail_msg("expected '%s' in '%s'", why, err.msg);
    free(out);
}

static void test_damaged_and_foreign_files_refused(void **state)
{
    (void)state;
    struct kvm_cpuid2 *c = sample();
    uint8_t buf[KVM_CPUID_FILE_MAX], bad[KVM_CPUID_FILE_MAX];
    size_t len = kvm_cpuid_encode(&KEY, c, buf);
    refused(buf, 10, &KEY, "not a thaw CPUID file");
    refused(buf, len - 1, &KEY, "bytes for 3 entries");
    memcpy(bad, buf, len);
    bad[0] ^= 1;
    refused(bad, len, &KEY, "not a thaw CPUID file");
    memcpy(bad, buf, len);
    bad[8] = 2;
    refused(bad, len, &KEY, "version 2");
    memcpy(bad, buf, len);
    bad[12] = 0; /* no entries */
    refused(bad, len, &KEY, "for 0 entries");
    memcpy(bad, buf, len);
    bad[13] = 1; /* 259 entries claimed */
    refused(bad, len, &KEY, "for 259 entries");
    memcpy(bad, buf, len);
    bad[80 + 12] ^= 0x40; /* an eax bit */
    refused(bad, len, &KEY, "checksum");
    struct kvm_cpuid_key other = KEY;
    other.boot_id[0] = 'b';
    refused(buf, len, &other, "another boot");
    other = KEY;
    other.ctime_ns++;
    refused(buf, len, &other, "another boot or KVM module");
    other = KEY;
    other.ino++;
    refused(buf, len, &other, "another boot or KVM module");
    free(c);
}

static char dir[] = "/tmp/thaw-cpuid-XXXXXX";

static void test_second_ask_comes_from_the_file(void **state)
{
    (void)state;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        fprintf(stderr, "\n*** SKIP: /dev/kvm is not usable here: the CPUID file's KVM test did not run ***\n\n");
        skip();
    }
    char path[256];
    snprintf(path, sizeof path, "%s/sub/kvm-cpuid", dir);
    setenv("THAW_CPUID_CACHE", path, 1);
    struct kvm_cpuid2 *a = new_cpuid(), *b = new_cpuid(), *c = new_cpuid();
    struct thaw_error err;
    bool cached = true;
    assert_int_equal(kvm_cpuid_supported(kvm, a, &cached, &err), 0);
    assert_false(cached);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(kvm_cpuid_supported(kvm, b, &cached, &err), 0);
    assert_true(cached);
    same_entries(a, b);
    /* A damaged file: asked again, and replaced. */
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 100), 1);
    close(fd);
    assert_int_equal(kvm_cpuid_supported(kvm, c, &cached, &err), 0);
    assert_false(cached);
    assert_int_equal(kvm_cpuid_supported(kvm, c, &cached, &err), 0);
    assert_true(cached);
    /* A file others may write is not trusted. */
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(kvm_cpuid_supported(kvm, c, &cached, &err), 0);
    assert_false(cached);
    /* Off: always KVM, no file read. */
    setenv("THAW_CPUID_CACHE", "off", 1);
    assert_int_equal(kvm_cpuid_supported(kvm, c, &cached, &err), 0);
    assert_false(cached);
    assert_true(c->nent > 0);
    unsetenv("THAW_CPUID_CACHE");
    close(kvm);
    free(a);
    free(b);
    free(c);
}

static int cleanup(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damaged_and_foreign_files_refused),
        cmocka_unit_test(test_second_ask_comes_from_the_file),
    };
    return cmocka_run_group_tests_name("kvm_cpuid", tests, NULL, cleanup);
}
