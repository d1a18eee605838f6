/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP's reload (reload.h): everything the new configuration needs built
 * first, then swapped in at once.  Not here: the signal, when the reload is
 * applied, the round's context (service.c).
 */
#include "reload.h"

#include <errno.h>

#include "log.h"

static void report_to_log(void *userdata, const char *line) {
        (void) userdata;
        log_error("%s", line);
}

int reload_config(struct config *cfg, struct ers_client **ers, struct poll_schedule *polls, time_t now,
                  void (*on_progress)(void *userdata), const volatile sig_atomic_t *stop) {
        struct config next;
        struct ers_client *next_ers = NULL;              /* owned until swapped in */
        struct poll_schedule next_polls = { .n = 0 };    /* owned until swapped in */
        struct errbuf e = { { 0 } };
        int r;

        if (config_load(cfg->path, report_to_log, NULL, &next) < 0) {
                log_error("%s: reload refused; the running configuration is kept", cfg->path);
                return -EINVAL;
        }
        if (config_check_reload(cfg, &next, report_to_log, NULL) > 0) {
                log_error("%s: reload refused (restart needed); the running configuration is kept", cfg->path);
                config_free(&next);
                return -EINVAL;
        }
        r = ers_client_new(&next, &next_ers, &e);
        if (r < 0) {
                log_error("%s: reload refused: e-RS client: %s; the running configuration is kept", cfg->path, e.msg);
                config_free(&next);
                return r;
        }
        /* From the poll times alone: the PAS is not read (polls.h). */
        r = poll_schedule_init(&next_polls, &next, NULL, now, false, &e);
        if (r < 0) {
                log_error("%s: reload refused: poll schedule: %s; the running configuration is kept", cfg->path,
                          e.msg);
                ers_client_free(next_ers);
                config_free(&next);
                return r;
        }

        /* Everything built: nothing below can fail. */
        ers_client_on_progress(next_ers, on_progress, NULL);
        ers_client_on_stop(next_ers, stop);
        ers_client_free(*ers);
        *ers = next_ers;
        poll_schedule_free(polls);
        *polls = next_polls;
        config_free(cfg);
        *cfg = next;
        log_set_level(cfg->log_level);
        log_notice("%s: configuration reloaded (%zu worklist%s)", cfg->path, cfg->n_worklists,
                   cfg->n_worklists == 1 ? "" : "s");
        return 0;
}
