/* Progress of a run: a bar redrawn in place on a terminal, a plain line every few
 * seconds otherwise (logs, CI). */
#include "host/load/load.h"

void load_progress_update(struct load_progress *p, double now_s, uint64_t sent, uint64_t done, uint64_t errors,
                          uint64_t total, double elapsed_s, bool final)
{
    if (!p->out)
        return;
    double every = p->tty ? 0.2 : p->every_s;
    if (!final && now_s - p->last_s < every)
        return;
    p->last_s = now_s;
    double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    if (p->tty) {
        enum { WIDTH = 30 };
        int fill = total ? (int)((double)done * WIDTH / (double)total) : 0;
        if (fill > WIDTH)
            fill = WIDTH;
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[WIDTH] = 0;
        fprintf(p->out, "\r[%s] %llu/%llu sent, %llu done, %llu errors, %.1f rps, %.0f s%s", bar,
                (unsigned long long)sent, (unsigned long long)total, (unsigned long long)done,
                (unsigned long long)errors, rate, elapsed_s, final ? "\n" : "");
    } else {
        fprintf(p->out, "progress: %.0f s, %llu sent, %llu done of %llu, %llu errors, %.1f rps\n", elapsed_s,
                (unsigned long long)sent, (unsigned long long)done, (unsigned long long)total,
                (unsigned long long)errors, rate);
    }
    fflush(p->out);
}
