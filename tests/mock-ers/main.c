/* SPDX-License-Identifier: MIT */
/*
 * mock-ers: command line, signals and the READY line.  See README.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: mock-ers [options]\n"
                "  --referrals N           worklisted referrals (default 60)\n"
                "  --attachments K         ordinary attachments per referral (default 2)\n"
                "  --big-attachment BYTES  extra large attachment on referral 0 (default 20971520, 0 = none)\n"
                "  --tail-every N          every Nth ordinary attachment is a large one (default 0 = none)\n"
                "  --tail-max BYTES        the large ones: 300 KiB..BYTES, most near the low end (default 20971520)\n"
                "  --service ID            e-RS service id, repeatable (default 31001)\n"
                "  --service-name TEXT     the next --service's name, as HealthcareService gives it (repeatable,\n"
                "                          up to 8; at most 127 bytes each): hostile names for the output tests\n"
                "  --token TOKEN           require Authorization: Bearer TOKEN on the API\n"
                "  --app-restricted        refuse NHSD-eRS-Business-Function / NHSD-End-User-Organisation-ODS /\n"
                "                          NHSD-eRS-On-Behalf-Of-User-ID (403); A008 needs a service filter\n"
                "  --seed S                data seed (default 1)\n"
                "  --padding BYTES         extra text per A005 answer (ReferralRequest.description)\n"
                "  --stall-seconds S       longest a `stall` fault lasts (default 3600)\n"
                "  --fault-rate P          answer P in 1000 requests with a random fault (default 0)\n"
                "  --duplicate-entry       a worklist lists its first referral twice\n"
                "  --extra-attachment BYTES  an attachment of exactly BYTES on referral 0 (repeatable, up to 8)\n"
                "  --edge-text             referral 0's comment and first title hold 4-byte UTF-8, quotes,\n"
                "                          control characters (and the comment a NUL)\n"
                "  --attachment-id TEXT    referral 0's next attachment has e-RS id TEXT (repeatable, up to 4;\n"
                "                          at most 23 bytes each): hostile ids for the output tests\n"
                "  --attachment-title TEXT referral 0's next attachment has title TEXT (repeatable, up to 4;\n"
                "                          at most 95 bytes each)\n"
                "  --related N             referral 2 also names the N worklisted referrals after it as related\n"
                "                          (at most referrals - 3)\n"
                "  --jwks PEM --kid KID --api-key KEY\n"
                "                          signed-JWT access: POST /oauth2/token checks assertions against the\n"
                "                          public key PEM and issues tokens the API then requires\n"
                "  --token-lifetime S      seconds an issued token lives, sent as expires_in (default 600)\n"
                "  --clock-skew S          the mock's clock runs S seconds (may be negative) off the real one\n"
                "  --tls-cert PEM --tls-key PEM\n"
                "                          serve https on both origins with that certificate\n"
                "  --tls-client-ca PEM     the API origin requires a client certificate issued by that CA\n"
                "  -v, --verbose           log requests to stderr\n"
                "Prints \"READY api=<port> store=<port>\" on stdout when listening on 127.0.0.1;\n"
                "runs until SIGTERM or SIGINT.\n");
}

static int parse_number(const char *opt, const char *s, uint64_t max, uint64_t *ret)
{
        char *end;

        errno = 0;
        if (!s || !*s || *s == '-' || *s == '+') {
                fprintf(stderr, "mock-ers: %s needs a non-negative number\n", opt);
                return -EINVAL;
        }
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > max) {
                fprintf(stderr, "mock-ers: %s: '%s' is not a number in 0..%" PRIu64 "\n", opt, s, max);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

enum { OPT_REFERRALS = 1000, OPT_ATTACHMENTS, OPT_BIG, OPT_SERVICE, OPT_TOKEN, OPT_APP, OPT_SEED, OPT_PADDING,
       OPT_STALL, OPT_TAIL_EVERY, OPT_TAIL_MAX, OPT_FAULT_RATE, OPT_DUPLICATE,
       OPT_EXTRA, OPT_EDGE_TEXT, OPT_ATTACHMENT_ID, OPT_ATTACHMENT_TITLE };

/* Signed-JWT access and TLS (oauth.c, server.c). */
enum { OPT_JWKS = 2000, OPT_KID, OPT_API_KEY, OPT_TOKEN_LIFETIME, OPT_CLOCK_SKEW, OPT_TLS_CERT, OPT_TLS_KEY,
       OPT_TLS_CLIENT_CA };

/* Related referrals. */
enum { OPT_RELATED = 3000 };

/* Services (R4 HealthcareService). */
enum { OPT_SERVICE_NAME = 4000 };

static int parse_options(int argc, char **argv, struct options *o)
{
        static const struct option longopts[] = {
                { "referrals", required_argument, NULL, OPT_REFERRALS },
                { "attachments", required_argument, NULL, OPT_ATTACHMENTS },
                { "big-attachment", required_argument, NULL, OPT_BIG },
                { "tail-every", required_argument, NULL, OPT_TAIL_EVERY },
                { "tail-max", required_argument, NULL, OPT_TAIL_MAX },
                { "service", required_argument, NULL, OPT_SERVICE },
                { "token", required_argument, NULL, OPT_TOKEN },
                { "app-restricted", no_argument, NULL, OPT_APP },
                { "seed", required_argument, NULL, OPT_SEED },
                { "padding", required_argument, NULL, OPT_PADDING },
                { "stall-seconds", required_argument, NULL, OPT_STALL },
                { "fault-rate", required_argument, NULL, OPT_FAULT_RATE },
                { "duplicate-entry", no_argument, NULL, OPT_DUPLICATE },
                { "extra-attachment", required_argument, NULL, OPT_EXTRA },
                { "edge-text", no_argument, NULL, OPT_EDGE_TEXT },
                { "attachment-id", required_argument, NULL, OPT_ATTACHMENT_ID },
                { "attachment-title", required_argument, NULL, OPT_ATTACHMENT_TITLE },
                { "jwks", required_argument, NULL, OPT_JWKS },
                { "kid", required_argument, NULL, OPT_KID },
                { "api-key", required_argument, NULL, OPT_API_KEY },
                { "token-lifetime", required_argument, NULL, OPT_TOKEN_LIFETIME },
                { "clock-skew", required_argument, NULL, OPT_CLOCK_SKEW },
                { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
                { "tls-key", required_argument, NULL, OPT_TLS_KEY },
                { "tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA },
                { "related", required_argument, NULL, OPT_RELATED },
                { "service-name", required_argument, NULL, OPT_SERVICE_NAME },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        static const char *default_service[] = { "31001" };
        uint64_t v;
        int c;

        o->referrals = 60;
        o->attachments = 2;
        o->big_attachment = 20971520;
        o->tail_max = 20971520;
        o->seed = 1;
        o->stall_seconds = 3600;
        o->token_lifetime = 600;
        o->services = calloc((size_t)argc + 1, sizeof *o->services);
        if (!o->services)
                return -ENOMEM;

        while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_REFERRALS:
                        if (parse_number("--referrals", optarg, 500000, &v) < 0)
                                return -EINVAL;
                        o->referrals = (size_t)v;
                        break;
                case OPT_ATTACHMENTS:
                        if (parse_number("--attachments", optarg, 100, &v) < 0)
                                return -EINVAL;
                        o->attachments = (size_t)v;
                        break;
                case OPT_BIG:
                        if (parse_number("--big-attachment", optarg, UINT64_C(1) << 40, &v) < 0)
                                return -EINVAL;
                        o->big_attachment = v;
                        break;
                case OPT_TAIL_EVERY:
                        if (parse_number("--tail-every", optarg, 1000000, &v) < 0)
                                return -EINVAL;
                        o->tail_every = (size_t)v;
                        break;
                case OPT_TAIL_MAX:
                        if (parse_number("--tail-max", optarg, UINT64_C(1) << 40, &v) < 0)
                                return -EINVAL;
                        if (v < 300 * 1024) {
                                fprintf(stderr, "mock-ers: --tail-max must be at least 307200\n");
                                return -EINVAL;
                        }
                        o->tail_max = v;
                        break;
                case OPT_SERVICE:
                        if (!*optarg || strlen(optarg) > 63) {
                                fprintf(stderr, "mock-ers: --service needs an id of 1..63 characters\n");
                                return -EINVAL;
                        }
                        o->services[o->n_services++] = optarg;
                        break;
                case OPT_SERVICE_NAME:
                        if (o->n_service_names == sizeof o->service_names / sizeof o->service_names[0] ||
                            !*optarg || strlen(optarg) > 127) {
                                fprintf(stderr, "mock-ers: --service-name: up to 8, each 1..127 bytes\n");
                                return -EINVAL;
                        }
                        o->service_names[o->n_service_names++] = optarg;
                        break;
                case OPT_TOKEN:
                        if (!*optarg) {
                                fprintf(stderr, "mock-ers: --token must not be empty\n");
                                return -EINVAL;
                        }
                        o->token = optarg;
                        break;
                case OPT_APP:
                        o->app_restricted = true;
                        break;
                case OPT_SEED:
                        if (parse_number("--seed", optarg, UINT64_MAX, &v) < 0)
                                return -EINVAL;
                        o->seed = v;
                        break;
                case OPT_PADDING:
                        if (parse_number("--padding", optarg, 64 * 1024 * 1024, &v) < 0)
                                return -EINVAL;
                        o->padding = (size_t)v;
                        break;
                case OPT_STALL:
                        if (parse_number("--stall-seconds", optarg, 86400, &v) < 0)
                                return -EINVAL;
                        o->stall_seconds = (unsigned)v;
                        break;
                case OPT_FAULT_RATE:
                        if (parse_number("--fault-rate", optarg, 1000, &v) < 0)
                                return -EINVAL;
                        o->fault_permille = (unsigned)v;
                        break;
                case OPT_DUPLICATE:
                        o->duplicate_entry = true;
                        break;
                case OPT_EXTRA:
                        if (parse_number("--extra-attachment", optarg, UINT64_C(1) << 40, &v) < 0)
                                return -EINVAL;
                        if (o->n_extra == sizeof o->extra_sizes / sizeof o->extra_sizes[0]) {
                                fprintf(stderr, "mock-ers: at most 8 --extra-attachment\n");
                                return -EINVAL;
                        }
                        o->extra_sizes[o->n_extra++] = v;
                        break;
                case OPT_EDGE_TEXT:
                        o->edge_text = true;
                        break;
                case OPT_ATTACHMENT_ID:
                case OPT_ATTACHMENT_TITLE: {
                        bool id = c == OPT_ATTACHMENT_ID;
                        size_t *n = id ? &o->n_attachment_ids : &o->n_attachment_titles;
                        if (*n == 4 || !*optarg || strlen(optarg) > (id ? 23 : 95)) {
                                fprintf(stderr, "mock-ers: at most 4 --%s, each 1..%d bytes\n",
                                        id ? "attachment-id" : "attachment-title", id ? 23 : 95);
                                return -EINVAL;
                        }
                        (id ? o->attachment_ids : o->attachment_titles)[(*n)++] = optarg;
                        break;
                }
                case OPT_JWKS:
                        o->jwks = optarg;
                        break;
                case OPT_KID:
                        o->kid = optarg;
                        break;
                case OPT_API_KEY:
                        o->api_key = optarg;
                        break;
                case OPT_TOKEN_LIFETIME:
                        if (parse_number("--token-lifetime", optarg, 86400, &v) < 0 || v == 0)
                                return -EINVAL;
                        o->token_lifetime = (unsigned)v;
                        break;
                case OPT_CLOCK_SKEW: {
                        char *end;
                        errno = 0;
                        o->clock_skew = strtol(optarg, &end, 10);
                        if (errno || end == optarg || *end || o->clock_skew < -86400 || o->clock_skew > 86400) {
                                fprintf(stderr, "mock-ers: --clock-skew needs seconds in -86400..86400\n");
                                return -EINVAL;
                        }
                        break;
                }
                case OPT_TLS_CERT:
                        o->tls_cert = optarg;
                        break;
                case OPT_TLS_KEY:
                        o->tls_key = optarg;
                        break;
                case OPT_TLS_CLIENT_CA:
                        o->tls_client_ca = optarg;
                        break;
                case OPT_RELATED:
                        if (parse_number("--related", optarg, 500000, &v) < 0)
                                return -EINVAL;
                        o->related_more = (size_t)v;
                        break;
                case 'v':
                        o->verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "mock-ers: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (o->n_attachment_ids > o->attachments || o->n_attachment_titles > o->attachments) {
                fprintf(stderr, "mock-ers: more --attachment-id or --attachment-title than --attachments\n");
                return -EINVAL;
        }
        if (o->related_more > 0 && (o->referrals < 3 || o->related_more > o->referrals - 3)) {
                fprintf(stderr, "mock-ers: --related %zu needs at least %zu referrals\n", o->related_more,
                        o->related_more + 3);
                return -EINVAL;
        }
        if (o->n_services == 0) {
                o->services[0] = default_service[0];
                o->n_services = 1;
        }
        if (o->n_service_names > o->n_services) {
                fprintf(stderr, "mock-ers: more --service-name than services\n");
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char **argv)
{
        static struct mock m; /* large (token table): not on the stack */
        sigset_t stop;
        int sig = 0, r;

        if (parse_options(argc, argv, &m.opt) < 0) {
                free(m.opt.services);
                return 2;
        }
        if (pthread_mutex_init(&m.lock, NULL) != 0 || pthread_cond_init(&m.wake, NULL) != 0) {
                fprintf(stderr, "mock-ers: cannot initialise locks\n");
                return 1;
        }
        r = mock_build(&m);
        if (r < 0) {
                fprintf(stderr, "mock-ers: cannot build the synthetic data: %s\n", strerror(-r));
                mock_free(&m);
                free(m.opt.services);
                return 1;
        }

        /* Every thread (MHD's included) inherits this mask; only sigwait() below takes them. */
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = oauth_init(&m);
        if (r == 0)
                r = server_start(&m);
        if (r < 0) {
                fprintf(stderr, "mock-ers: cannot listen on 127.0.0.1: %s\n", strerror(-r));
                server_stop(&m);
                mock_free(&m);
                free(m.opt.services);
                return 1;
        }
        printf("READY api=%u store=%u\n", m.api_port, m.store_port);
        fflush(stdout);
        if (m.opt.verbose)
                fprintf(stderr, "mock-ers: %zu referrals (+%zu related), %zu attachments, base URL "
                                "http://127.0.0.1:%u/referrals\n",
                        m.n_worklisted, m.n_referrals - m.n_worklisted, m.n_attachments, m.api_port);

        while (sigwait(&stop, &sig) != 0)
                ;
        if (m.opt.verbose)
                fprintf(stderr, "mock-ers: signal %d, stopping\n", sig);
        server_stop(&m);
        world_free(&m);
        mock_free(&m);
        free(m.opt.services);
        pthread_cond_destroy(&m.wake);
        pthread_mutex_destroy(&m.lock);
        return 0;
}
