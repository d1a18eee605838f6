/* SPDX-License-Identifier: MIT */
/*
 * `ersd services` and the networked configuration check (services.h): e-RS
 * services read with A035 and A033, printed for IT.  No PAS, no worklist
 * call.
 *
 * Not here: the calls (ers.c), the parsing of HealthcareService answers
 * (fhir_service.c), the configuration file's own check (commands.c).
 */
#include "services.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "ers.h"
#include "escape.h"
#include "log.h"

/* The configured worklists' service ids, each once, in the order of the file;
 * borrowed from cfg into ids (room for cfg->n_worklists).  How many. */
static size_t configured_ids(const struct config *cfg, const char **ids) {
        size_t n = 0;

        for (size_t i = 0; i < cfg->n_worklists; i++) {
                bool seen = false;
                for (size_t k = 0; k < n && !seen; k++)
                        seen = strcmp(ids[k], cfg->worklists[i].service_id) == 0;
                if (!seen)
                        ids[n++] = cfg->worklists[i].service_id;
        }
        return n;
}

/* An e-RS client for a command, its token fetched (signed-JWT access); the
 * failure logged.  0 or the error. */
static int open_client(const struct config *cfg, const char *what, struct ers_client **ret) {
        struct errbuf e = { { 0 } };
        int r = ers_client_new(cfg, ret, &e);

        if (r == 0) {
                r = ers_prepare_token(*ret, &e);
                if (r < 0) {
                        ers_client_free(*ret);
                        *ret = NULL;
                }
        }
        if (r < 0)
                log_error("%s: e-RS client: %s", what, e.msg);
        return r;
}

/* One line for a call that failed: what it was, and for a 403 what it means. */
static void say_failure(const char *what, const char *why_403, int r, const struct ers_call *call,
                        const struct errbuf *e) {
        if (r == -EACCES && call->http_status == 403)
                log_error("%s: e-RS does not let this application %s: %s", what, why_403, e->msg);
        else
                log_error("%s: %s", what, e->msg);
}

static const char *or_dash(const char *s) {
        return s && *s ? s : "-";
}

static void print_text(const struct ers_service_list *found, const char *const *unknown, size_t n_unknown) {
        printf("%-16s %-8s %-20s %-20s %-8s %s\n", "SERVICE", "VERSION", "TYPE", "FLOW", "SITE", "NAME");
        for (size_t i = 0; i < found->n; i++) {
                const struct ers_service *s = &found->services[i];
                escape_fprintf(stdout, "%-16s %-8s %-20s %-20s %-8s %s", s->id, or_dash(s->version), or_dash(s->type),
                               or_dash(s->flow), or_dash(s->location), or_dash(s->name));
                fputc('\n', stdout);
        }
        for (size_t i = 0; i < n_unknown; i++)
                printf("%-16s not known to e-RS\n", unknown[i]);
}

static json_object *str_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static int print_json(const struct ers_service_list *found, const char *const *unknown, size_t n_unknown) {
        json_object *root = json_object_new_object(), *list = json_object_new_array(), *missing = json_object_new_array();

        if (!root || !list || !missing) {
                json_object_put(root);
                json_object_put(list);
                json_object_put(missing);
                return -ENOMEM;
        }
        for (size_t i = 0; i < found->n; i++) {
                const struct ers_service *s = &found->services[i];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", str_or_null(s->id));
                json_object_object_add(o, "version", str_or_null(s->version));
                json_object_object_add(o, "name", str_or_null(s->name));
                json_object_object_add(o, "type", str_or_null(s->type));
                json_object_object_add(o, "flow", str_or_null(s->flow));
                json_object_object_add(o, "site", str_or_null(s->location));
                json_object_array_add(list, o);
        }
        for (size_t i = 0; i < n_unknown; i++)
                json_object_array_add(missing, json_object_new_string(unknown[i]));
        json_object_object_add(root, "services", list);
        json_object_object_add(root, "not_known", missing);
        escape_json_fputs(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
                          stdout);
        fputc('\n', stdout);
        json_object_put(root);
        return 0;
}

/* Appends the services of `from` to `to` (taken from `from`, which is left
 * empty).  0 or -ENOMEM. */
static int take_services(struct ers_service_list *to, struct ers_service_list *from) {
        struct ers_service *more;

        if (from->n == 0)
                return 0;
        more = realloc(to->services, (to->n + from->n) * sizeof *more);
        if (!more)
                return -ENOMEM;
        memcpy(more + to->n, from->services, from->n * sizeof *more);
        to->services = more;
        to->n += from->n;
        free(from->services);
        from->services = NULL;
        from->n = 0;
        return 0;
}

static bool found_id(const struct ers_service_list *l, const char *id) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->services[i].id, id) == 0)
                        return true;
        return false;
}

int command_services(const struct config *cfg, const char *const *ids, size_t n, bool json) {
        struct ers_service_list found = { 0 };
        struct ers_client *ers = NULL;
        const char **asked = NULL, **unknown = NULL;
        int status = EXIT_SYNC_FAILED, r = 0;
        size_t n_unknown = 0;

        asked = calloc(n > 0 ? n : cfg->n_worklists, sizeof *asked);
        unknown = calloc(n > 0 ? n : cfg->n_worklists, sizeof *unknown);
        if (!asked || !unknown) {
                log_error("services: out of memory");
                goto out;
        }
        if (n > 0)
                memcpy(asked, ids, n * sizeof *asked);
        else
                n = configured_ids(cfg, asked);
        if (open_client(cfg, "services", &ers) < 0)
                goto out;
        for (size_t at = 0; at < n && r == 0; at += ERS_SERVICES_PER_SEARCH) {
                size_t k = n - at < ERS_SERVICES_PER_SEARCH ? n - at : ERS_SERVICES_PER_SEARCH;
                struct ers_service_list part = { 0 };
                struct errbuf e = { { 0 } };
                struct ers_call call;

                r = ers_search_services(ers, asked + at, k, &part, &call, &e);
                if (r < 0) {
                        say_failure("services", "search services (A035 is for referring clinicians, "
                                                "user-restricted access, only)",
                                    r, &call, &e);
                        goto out;
                }
                r = take_services(&found, &part);
                ers_service_list_free(&part);
                if (r < 0) {
                        log_error("services: out of memory");
                        goto out;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (!found_id(&found, asked[i]))
                        unknown[n_unknown++] = asked[i];
        if (json) {
                if (print_json(&found, unknown, n_unknown) < 0) {
                        log_error("services: out of memory");
                        goto out;
                }
        } else
                print_text(&found, unknown, n_unknown);
        fflush(stdout);
        status = n_unknown == 0 ? EXIT_SUCCESS : EXIT_SYNC_FAILED;
out:
        ers_service_list_free(&found);
        ers_client_free(ers);
        free(asked);
        free(unknown);
        return status;
}

int command_check_services(const struct config *cfg) {
        struct ers_client *ers = NULL;
        const char **ids = calloc(cfg->n_worklists, sizeof *ids);
        unsigned unknown = 0;
        int status = EXIT_SYNC_FAILED;
        size_t n;

        if (!ids) {
                log_error("--check-config --network: out of memory");
                return EXIT_SYNC_FAILED;
        }
        n = configured_ids(cfg, ids);
        if (open_client(cfg, "--check-config --network: the worklists' services not checked", &ers) < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                struct ers_service s = { 0 };
                struct errbuf e = { { 0 } };
                struct ers_call call;
                int r = ers_read_service(ers, ids[i], &s, &call, &e);

                for (size_t w = 0; w < cfg->n_worklists; w++) {
                        const struct worklist_conf *wl = &cfg->worklists[w];
                        if (strcmp(wl->service_id, ids[i]) != 0)
                                continue;
                        if (r == 0) {
                                escape_fprintf(stdout, "worklist %s: service %s \"%s\" (%s) is in e-RS, version %s",
                                               wl->name, s.id, or_dash(s.name), or_dash(s.flow), or_dash(s.version));
                                fputc('\n', stdout);
                        } else if (r == -ENOENT) {
                                escape_fprintf(stderr, "%s: worklists[%zu].service: service %s is not known to e-RS: %s",
                                               wl->service_at ? wl->service_at : cfg->path, w, ids[i], e.msg);
                                fputc('\n', stderr);
                                unknown++;
                        }
                }
                ers_service_free(&s);
                if (r < 0 && r != -ENOENT) {
                        say_failure("--check-config --network: the worklists' services not checked",
                                    "read services (A033 is for applications of a referring organisation)", r, &call,
                                    &e);
                        goto out;
                }
        }
        status = unknown > 0 ? EXIT_USAGE : EXIT_SUCCESS;
out:
        ers_client_free(ers);
        free(ids);
        return status;
}
