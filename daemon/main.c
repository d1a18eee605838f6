/* SPDX-License-Identifier: MIT */
/*
 * ersd: brings NHS e-Referral Service referrals into the PAS database.
 * The entry: the process's safety settings, the command line, the
 * configuration, and the dispatch to a mode, whose exit status it returns
 * (commands.h).  Not here: the sync runs and the daemon's loop (service.c),
 * the commands (commands.c, status.c, services.c, remap.c), the work itself (sync.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "commands.h"
#include "config.h"
#include "escape.h"
#include "log.h"
#include "model.h"
#include "remap.h"
#include "service.h"
#include "services.h"
#include "status.h"

static void usage(FILE *out) {
        fprintf(out,
                "Usage: ersd [-c FILE] [--once [--dry-run] | --check-config [--network] | --init-db] [-v]\n"
                "       ersd [-c FILE] status [--json | --prometheus]\n"
                "       ersd [-c FILE] sync UBRN [-v]\n"
                "       ersd [-c FILE] audit [--json] UBRN\n"
                "       ersd [-c FILE] reconcile\n"
                "       ersd [-c FILE] remap UBRN ... | remap --all\n"
                "       ersd [-c FILE] services [--json] [SERVICE_ID ...]\n"
                "Brings NHS e-Referral Service referrals, their letters and attachments into the PAS database.\n"
                "\n"
                "  -c, --config FILE   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
                "      --once          sync every configured worklist once, print a summary, exit\n"
                "      --dry-run       with --once: read and fetch everything, write nothing to the PAS,\n"
                "                      say per referral what would be written (worklist calls still count)\n"
                "      --check-config  report every problem in the configuration as FILE:LINE: message\n"
                "      --network       with --check-config: also confirm each worklist's service exists in\n"
                "                      e-RS (A033; no worklist call)\n"
                "      --init-db       create the staging schema in the PAS database (idempotent)\n"
                "  -v, --verbose       log debug lines too\n"
                "  -h, --help          this text\n"
                "\n"
                "Commands:\n"
                "  status              what the PAS database says: worklist polls, budget left today,\n"
                "                      referrals waiting, parked and overdue; no e-RS call\n"
                "      --json          the same as one JSON object\n"
                "      --prometheus    the same as Prometheus text (node_exporter textfile collector)\n"
                "  sync UBRN           sync one referral now (A005, related referrals, documents), no worklist call\n"
                "  audit UBRN          print the referral's audit trail (--json: as JSON); exit 1 when the\n"
                "                      PAS does not know the UBRN\n"
                "  reconcile           compare the PAS with the latest worklists (no worklist call is made)\n"
                "                      and list referrals missing, stale or unknown to e-RS; exit 1 if any\n"
                "  remap UBRN ...      derive the referrals' staging rows and run database.mapping again from\n"
                "                      the A005 answer kept of each one's version; no e-RS request\n"
                "      --all           every referral in the PAS\n"
                "  services [SERVICE_ID ...]  e-RS's services (A035): id, version, type, flow, site, name;\n"
                "                      without ids, the configured worklists'; exit 1 if one is unknown\n"
                "      --json          the same as one JSON object\n"
                "\n"
                "Without a mode, reads each worklist at its poll times (within the e-RS budget of\n"
                "worklist calls) and re-reads unfinished referrals in between, until SIGTERM;\n"
                "SIGHUP re-reads the configuration (a file with any problem is refused and the old\n"
                "one kept).  --once reads every worklist now, budget permitting.\n"
                "Exit status: 0 success, 1 something was not synced (see the log), 2 bad usage or configuration;\n"
                "of status: 0 all well, 1 something needs a person, 3 the database cannot be read,\n"
                "4 an URGENT or TWO_WEEK_WAIT referral is overdue.\n");
}

static void report_to_stderr(void *userdata, const char *line) {
        (void) userdata;
        escape_fputs(line, stderr); /* it may quote the file (escape.h) */
        fputc('\n', stderr);
}

int main(int argc, char **argv) {
        enum { OPT_ONCE = 0x100, OPT_CHECK, OPT_INIT_DB, OPT_DRY_RUN, OPT_JSON, OPT_PROMETHEUS, OPT_NETWORK, OPT_ALL };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' }, { "once", no_argument, NULL, OPT_ONCE },
                { "check-config", no_argument, NULL, OPT_CHECK }, { "init-db", no_argument, NULL, OPT_INIT_DB },
                { "dry-run", no_argument, NULL, OPT_DRY_RUN }, { "json", no_argument, NULL, OPT_JSON },
                { "prometheus", no_argument, NULL, OPT_PROMETHEUS }, { "network", no_argument, NULL, OPT_NETWORK },
                { "all", no_argument, NULL, OPT_ALL },
                { "verbose", no_argument, NULL, 'v' },      { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        const char *path = CONFIG_DEFAULT_PATH;
        int mode = 0, verbose = 0, c, status;
        bool dry_run = false, json = false, prometheus = false, network = false, all = false;
        struct config cfg;

        /* Before anything is created: the PAS (SQLite, its -wal and -shm), the
         * state directory and the spool hold patient data, and are never for
         * group or others, whatever umask ersd was started with (runuser,
         * sudo and a shell leave 022). */
        umask(0077);
        /* A file size limit (RLIMIT_FSIZE, LimitFSIZE=) reached must fail the
         * write with EFBIG, taken like a full disk (the referral waits, nothing
         * half-written), not kill ersd mid-transaction. */
        signal(SIGXFSZ, SIG_IGN);
        /* Before a secret is read: no core dump (it would hold the bearer token
         * and NHS numbers), and no other process of our user may read our
         * memory (/proc/PID/mem, ptrace).  The unit also sets LimitCORE=0. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                fprintf(stderr, "ersd: cannot stop core dumps (prctl PR_SET_DUMPABLE): %s; not starting\n",
                        strerror(errno));
                return EXIT_USAGE;
        }

        while ((c = getopt_long(argc, argv, "c:vh", options, NULL)) != -1) {
                switch (c) {
                case 'c':
                        path = optarg;
                        break;
                case 'v':
                        verbose = 1;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                case OPT_ONCE:
                case OPT_CHECK:
                case OPT_INIT_DB:
                        if (mode && mode != c) {
                                fprintf(stderr, "ersd: --once, --check-config and --init-db exclude each other\n");
                                return EXIT_USAGE;
                        }
                        mode = c;
                        break;
                case OPT_DRY_RUN:
                        dry_run = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_PROMETHEUS:
                        prometheus = true;
                        break;
                case OPT_NETWORK:
                        network = true;
                        break;
                case OPT_ALL:
                        all = true;
                        break;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }

        /* The commands: status, sync UBRN, audit UBRN, reconcile, services [ID …], remap [UBRN …]. */
        const char *command = optind < argc ? argv[optind++] : NULL;
        const char *ubrn = NULL;
        const char *const *args = NULL;
        size_t n_args = 0;
        if (command && strcmp(command, "services") == 0) {
                args = (const char *const *) argv + optind;
                for (; optind < argc; optind++, n_args++)
                        if (!service_id_valid(argv[optind])) {
                                escape_fprintf(stderr, "ersd: services takes e-RS service ids (" SERVICE_ID_RULE
                                               "): '%.40s' is not one", argv[optind]);
                                fputc('\n', stderr);
                                return EXIT_USAGE;
                        }
        } else if (command && strcmp(command, "remap") == 0) {
                args = (const char *const *) argv + optind; /* the UBRNs */
                for (; optind < argc; optind++, n_args++)
                        if (!ubrn_valid(argv[optind])) {
                                escape_fprintf(stderr, "ersd: remap takes UBRNs (12 digits): '%.40s' is not one",
                                               argv[optind]);
                                fputc('\n', stderr);
                                return EXIT_USAGE;
                        }
                if (!all == !n_args) {
                        fprintf(stderr, "ersd: remap takes UBRNs or --all\n");
                        return EXIT_USAGE;
                }
        } else if (command && (strcmp(command, "sync") == 0 || strcmp(command, "audit") == 0)) {
                ubrn = optind < argc ? argv[optind++] : NULL;
                if (!ubrn || !ubrn_valid(ubrn)) {
                        escape_fprintf(stderr, "ersd: %s needs a UBRN (12 digits)%s%.40s%s", command,
                                       ubrn ? ": '" : "", ubrn ? ubrn : "", ubrn ? "' is not one" : "");
                        fputc('\n', stderr);
                        return EXIT_USAGE;
                }
        } else if (command && strcmp(command, "status") != 0 && strcmp(command, "reconcile") != 0) {
                escape_fprintf(stderr, "ersd: unexpected argument '%.80s'", command);
                fputc('\n', stderr);
                usage(stderr);
                return EXIT_USAGE;
        }
        if (optind < argc) {
                escape_fprintf(stderr, "ersd: unexpected argument '%.80s'", argv[optind]);
                fputc('\n', stderr);
                usage(stderr);
                return EXIT_USAGE;
        }
        bool is_status = command && strcmp(command, "status") == 0;
        if (command && mode) {
                fprintf(stderr, "ersd: %s takes none of --once, --check-config, --init-db\n", command);
                return EXIT_USAGE;
        }
        if (dry_run && mode != OPT_ONCE) {
                fprintf(stderr, "ersd: --dry-run goes with --once\n");
                return EXIT_USAGE;
        }
        bool is_services = command && strcmp(command, "services") == 0;
        if (json && !(is_status || is_services || (command && strcmp(command, "audit") == 0))) {
                fprintf(stderr, "ersd: --json goes with status, audit or services\n");
                return EXIT_USAGE;
        }
        if (all && !(command && strcmp(command, "remap") == 0)) {
                fprintf(stderr, "ersd: --all goes with remap\n");
                return EXIT_USAGE;
        }
        if (network && mode != OPT_CHECK) {
                fprintf(stderr, "ersd: --network goes with --check-config\n");
                return EXIT_USAGE;
        }
        if (prometheus && (!is_status || json)) {
                fprintf(stderr, "ersd: --prometheus goes with status, without --json\n");
                return EXIT_USAGE;
        }

        if (config_load(path, report_to_stderr, NULL, &cfg) < 0) {
                fprintf(stderr, "ersd: %s: configuration refused\n", path);
                return EXIT_USAGE;
        }
        if (mode == OPT_CHECK) {
                status = command_check_config(path, &cfg, network);
                config_free(&cfg);
                return status;
        }
        log_set_level(verbose ? LOG_DEBUG : cfg.log_level);
        if (is_status) { /* reads the database only, prints, exits */
                status = status_run(&cfg, json ? STATUS_FORMAT_JSON : prometheus ? STATUS_FORMAT_PROMETHEUS
                                                                                 : STATUS_FORMAT_TEXT,
                                    stdout);
                config_free(&cfg);
                return status;
        }

        service_catch_signals();

        if (is_services)
                status = command_services(&cfg, args, n_args, json);
        else if (command && strcmp(command, "audit") == 0)
                status = command_audit(&cfg, ubrn, json);
        else if (command && strcmp(command, "reconcile") == 0)
                status = command_reconcile(&cfg);
        else if (command && strcmp(command, "remap") == 0)
                status = command_remap(&cfg, args, n_args, all);
        else if (mode == OPT_INIT_DB)
                status = command_init_db(&cfg);
        else {
                struct run_mode run = { .once = mode == OPT_ONCE, .dry_run = dry_run,
                                        .sync_ubrn = command ? ubrn : NULL };
                status = service_run(&cfg, &run, verbose ? LOG_DEBUG : -1);
        }
        config_free(&cfg);
        return status;
}
