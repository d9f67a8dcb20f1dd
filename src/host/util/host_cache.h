/* Small per-host files that thaw learns once and keeps for the boot (under /run/thaw):
 * KVM's CPUID (vmm/kvm_cpuid.c) and REAP's measured costs (pager/reap_costs.c).
 *
 * Each is named by an environment variable (a path, or "off") with a default path, read
 * only if it is a regular file of this user that nobody else may write (it steers what
 * the monitor does), and replaced atomically. What a file holds, and its checks, are
 * the caller's. */
#ifndef THAW_HOST_HOST_CACHE_H
#define THAW_HOST_HOST_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The file's directory and name from env_var (or default_path when unset or empty):
 * false when it is "off" or not a usable path. */
bool host_cache_path(const char *env_var, const char *default_path, char *dir, size_t cap, const char **name);
/* Up to cap bytes of dir/name into buf: the count, or -1 (missing, not ours, writable by
 * others, not a regular file, unreadable). */
ssize_t host_cache_read(const char *dir, const char *name, void *buf, size_t cap);
/* Replaces dir/name with buf[0..len) atomically (dir made 0700 if missing); silent on
 * failure: the next run learns again. */
void host_cache_store(const char *dir, const char *name, const void *buf, size_t len);

#endif
