#include "host/sandbox/sandbox_json.h"

#include "host/pager/huge_chunks.h"

static double us(uint64_t ns) { return (double)ns / 1e3; }

static int set(json_t *o, const char *k, json_t *v) { return json_object_set_new(o, k, v); }

json_t *sandbox_stats_to_json(const struct sandbox_stats *st)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool restore = st->start != SANDBOX_START_BOOT;
    int bad = 0;
    bad |= set(o, "id", json_string(st->id));
    bad |= set(o, "function", json_string(st->function));
    bad |= set(o, "start", json_string(sandbox_start_name(st->start)));
    bad |= set(o, "in_worker", json_boolean(st->in_worker));
    if (!restore) {
        bad |= set(o, "boot_to_ready_us", json_real(us(st->boot_ns)));
    } else {
        bad |= set(o, "mode", json_string(mem_mode_name(st->mode)));
        bad |= set(o, "state_load_us", json_real(us(st->state_load_ns)));
        bad |= set(o, "memory_setup_us", json_real(us(st->memory_setup_ns)));
        bad |= set(o, "vm_create_us", json_real(us(st->vm_create_ns)));
        bad |= set(o, "image_restore_us", json_real(us(st->image_restore_ns)));
        bad |= set(o, "restore_us", json_real(us(st->restore_ns)));
        bad |= set(o, "cold_start_us", json_real(us(st->restore_ns + st->first_invoke_ns)));
    }
    bad |= set(o, "invocations", json_integer((json_int_t)st->invocations));
    bad |= set(o, "first_response_us", json_real(us(st->first_invoke_ns)));
    bad |= set(o, "last_response_us", json_real(us(st->last_invoke_ns)));
    bad |= set(o, "vm_exits", json_integer((json_int_t)st->vm_exits));
    bad |= set(o, "hypercalls", json_integer((json_int_t)st->hypercalls));
    if (st->kvm_first_ok && st->invocations) {
        json_t *k = json_object();
        if (!k) {
            json_decref(o);
            return NULL;
        }
        bad |= set(k, "exits", json_integer((json_int_t)st->kvm_first_exits));
        bad |= set(k, "page_faults", json_integer((json_int_t)st->kvm_first_faults));
        bad |= set(k, "page_faults_fixed", json_integer((json_int_t)st->kvm_first_faults_fixed));
        bad |= set(k, "emulated", json_integer((json_int_t)st->kvm_first_emulated));
        bad |= set(o, "kvm_first_invocation", k);
    }
    bad |= set(o, "memory_bytes", json_integer((json_int_t)st->memory_bytes));
    bad |= set(o, "rss_kb", json_integer((json_int_t)st->rss_kb));
    bad |= set(o, "pss_kb", json_integer((json_int_t)st->pss_kb));
    bad |= set(o, "host_page_faults", json_integer((json_int_t)st->host_page_faults));
    if (restore) {
        bad |= set(o, "pages_served", json_integer((json_int_t)st->pages_served));
        bad |= set(o, "zero_pages", json_integer((json_int_t)st->zero_pages));
        bad |= set(o, "bytes_copied", json_integer((json_int_t)st->bytes_copied));
        json_t *r = json_object();
        if (!r) {
            json_decref(o);
            return NULL;
        }
        bad |= set(r, "recorded", json_boolean(st->reap_recorded));
        bad |= set(r, "prefetched", json_boolean(st->reap_prefetched));
        bad |= set(r, "ws_pages", json_integer((json_int_t)st->ws_pages));
        bad |= set(r, "regions", json_integer((json_int_t)st->ws_regions));
        bad |= set(r, "ws_bytes", json_integer((json_int_t)st->ws_bytes));
        bad |= set(r, "read_us", json_real(us(st->ws_read_ns)));
        bad |= set(r, "read_mb_s", json_real(st->ws_read_ns ? (double)st->ws_bytes / ((double)st->ws_read_ns / 1e9) / 1e6 : 0.0));
        bad |= set(r, "install_us", json_real(us(st->ws_install_ns)));
        bad |= set(r, "huge_chunks", json_integer((json_int_t)st->ws_huge_chunks));
        bad |= set(r, "huge_ws_pages", json_integer((json_int_t)st->ws_huge_ws_pages));
        bad |= set(r, "huge_data_pages", json_integer((json_int_t)st->ws_huge_data_pages));
        bad |= set(r, "huge_us", json_real(us(st->ws_huge_ns)));
        bad |= set(r, "huge_policy", json_string(huge_choice_name((enum huge_choice)st->ws_huge_policy)));
        json_t *hc = json_object(); /* auto: the host's costs the chunks were weighed with (0: unmeasured) */
        if (hc) {
            const struct reap_costs *c = &st->host_costs;
            bad |= set(hc, "touch_us", json_real(us(c->touch_ns)));
            bad |= set(hc, "install_us", json_real(us(c->install_ns)));
            bad |= set(hc, "read_us", json_real(us(c->read_ns)));
            bad |= set(hc, "huge_fault_us", c->chunk_ns == UINT64_MAX ? json_null() : json_real(us(c->chunk_ns)));
            bad |= set(hc, "samples", json_integer((json_int_t)c->samples));
        }
        bad |= set(r, "host_costs", hc);
        bad |= set(r, "misses", json_integer((json_int_t)st->reap_misses));
        bad |= set(r, "probed", json_integer((json_int_t)st->ws_probed));
        bad |= set(r, "merged", json_boolean(st->ws_merged));
        bad |= set(r, "merge_added", json_integer((json_int_t)st->ws_merge_added));
        bad |= set(r, "merge_dropped", json_integer((json_int_t)st->ws_merge_dropped));
        bad |= set(r, "generation", json_integer((json_int_t)st->ws_generation));
        bad |= set(r, "note", json_string(st->reap_note));
        json_t *pf = json_object();
        if (pf) {
            bad |= set(pf, "pages", json_integer((json_int_t)st->prefault_pages));
            bad |= set(pf, "touched", json_integer((json_int_t)st->prefault_touched));
            bad |= set(pf, "busy_us", json_real(us(st->prefault_ns)));
            bad |= set(pf, "setup_us", json_real(us(st->prefault_setup_ns)));
            bad |= set(pf, "note", json_string(st->prefault_note));
        }
        bad |= set(r, "prefault", pf);
        bad |= set(o, "reap", r);
    }
    if (st->rootfs_bytes) {
        json_t *f = json_object();
        if (!f) {
            json_decref(o);
            return NULL;
        }
        bad |= set(f, "image_bytes", json_integer((json_int_t)st->rootfs_bytes));
        bad |= set(f, "cow_pages", json_integer((json_int_t)st->rootfs_cow_pages));
        bad |= set(f, "ws_pages", json_integer((json_int_t)st->rootfs_ws_pages));
        bad |= set(f, "ws_read_us", json_real(us(st->rootfs_ws_ns)));
        bad |= set(f, "ws_bytes", json_integer((json_int_t)st->rootfs_ws_bytes));
        bad |= set(f, "cow_read_us", json_real(us(st->rootfs_cow_ns)));
        bad |= set(f, "cow_bytes", json_integer((json_int_t)st->rootfs_cow_bytes));
        bad |= set(f, "ws_withheld", json_integer((json_int_t)st->rootfs_ws_withheld));
        bad |= set(f, "ws_merged", json_boolean(st->rootfs_ws_merged));
        bad |= set(f, "ws_merge_added", json_integer((json_int_t)st->rootfs_ws_merge_added));
        bad |= set(f, "ws_merge_dropped", json_integer((json_int_t)st->rootfs_ws_merge_dropped));
        bad |= set(f, "ws_generation", json_integer((json_int_t)st->rootfs_ws_generation));
        bad |= set(o, "rootfs", f);
    }
    if (st->exited)
        bad |= set(o, "exit_status", json_integer((json_int_t)st->exit_status));
    if (st->save_ns) {
        bad |= set(o, "save_us", json_real(us(st->save_ns)));
        bad |= set(o, "memory_allocated_bytes", json_integer((json_int_t)st->snapshot_allocated_bytes));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
