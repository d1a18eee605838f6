/* SPDX-License-Identifier: MIT */
/*
 * The OAuth client-credentials exchange (token.h): a fresh client assertion
 * posted to the token endpoint, the access token cached, renewed once on a
 * 401, the platform's OAuth error put into the line.
 *
 * Not here: the JWT, the form and the token's lifetime (auth.c, no I/O), the
 * transfer (http.c), the API calls (ers.c).
 */
#include "token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server_text.h"
#include "util.h"

/* Whether two URLs have the same scheme, host and port. */
static bool same_origin(const char *a, const char *b) {
        size_t na = strcspn(a + strcspn(a, ":") + 3, "/") + strcspn(a, ":") + 3;
        size_t nb = strcspn(b + strcspn(b, ":") + 3, "/") + strcspn(b, ":") + 3;

        return na == nb && strncasecmp(a, b, na) == 0;
}

int token_new(const struct config *cfg, const char *base_url, struct token **ret, struct errbuf *e) {
        struct token *tk = calloc(1, sizeof *tk);
        int r;

        if (!tk)
                return err_set(e, -ENOMEM, "out of memory");
        if (pthread_mutex_init(&tk->lock, NULL) != 0) {
                free(tk);
                return err_set(e, -ENOMEM, "out of memory");
        }
        r = auth_new(cfg, &tk->auth, e);
        if (r < 0) {
                token_free(tk);
                return r;
        }
        tk->same_origin = same_origin(base_url, cfg->token_url);
        *ret = tk;
        return 0;
}

void token_free(struct token *tk) {
        if (!tk)
                return;
        auth_free(tk->auth);
        pthread_mutex_destroy(&tk->lock);
        free(tk);
}

/* The token endpoint's error answer as ", <error>: <description>" (RFC 6749
 * §5.2), or what any other answer says (http_answer_says()), or "": server text,
 * scrubbed of our secrets (the platform may quote the assertion's claims,
 * the API key among them). */
static void oauth_error(const struct transfer *t, char *buf, size_t size) {
        char error[SERVER_TEXT_MAX + 4] = "", desc[SERVER_TEXT_MAX + 4] = "";
        struct secrets secrets;
        json_object *root, *v;
        char *text;

        buf[0] = '\0';
        if (!t->errbody || t->errlen == 0 || !(text = strndup(t->errbody, t->errlen)))
                return;
        root = json_tokener_parse(text);
        free(text);
        if (json_object_object_get_ex(root, "error", &v) && json_object_is_type(v, json_type_string))
                server_text(json_object_get_string(v), (size_t) json_object_get_string_len(v),
                            http_secrets(t, &secrets), error, 44);
        if (json_object_object_get_ex(root, "error_description", &v) && json_object_is_type(v, json_type_string))
                server_text(json_object_get_string(v), (size_t) json_object_get_string_len(v),
                            http_secrets(t, &secrets), desc, sizeof desc);
        if (error[0])
                snprintf(buf, size, ", %s%s%s%s", error, desc[0] ? ": " : "", desc,
                         strstr(desc, "exp") ? " (is this machine's clock right?)" : "");
        else
                http_answer_says(t, buf, size);
        json_object_put(root);
}

/* Signed-JWT access: posts a fresh client assertion to the token endpoint and
 * caches the access token it answers with.  The form, the assertion and the
 * token never reach e. */
static int fetch_token(struct token *tk, struct http_link *link, CURL *h, struct errbuf *e) {
        struct transfer t = { .kind = SINK_JSON, .expect_type = "application/json" };
        struct curl_slist *headers = NULL, *n;
        char corr_line[64], what[300], cause[320];
        const char *lines[3];
        struct ers_call call;
        char *form = NULL;
        int r;

        snprintf(what, sizeof what, "token endpoint %s", auth_token_url(tk->auth));
        r = http_new_call(&call, e);
        if (r < 0)
                return r;
        r = auth_token_form(tk->auth, time(NULL), &form, e);
        if (r < 0)
                return err_prefix(e, r, "%s", what);
        t.assertion = strstr(form, "&client_assertion=");
        if (t.assertion)
                t.assertion += strlen("&client_assertion="); /* never quoted back: see http_secrets() */
        snprintf(corr_line, sizeof corr_line, "X-Correlation-ID: %s", call.correlation_id);
        lines[0] = "Accept: application/json";
        lines[1] = "Content-Type: application/x-www-form-urlencoded";
        lines[2] = corr_line;
        for (size_t i = 0; i < 3; i++) {
                n = curl_slist_append(headers, lines[i]);
                if (!n) {
                        r = err_set(e, -ENOMEM, "out of memory");
                        goto out;
                }
                headers = n;
        }
        t.tok = json_tokener_new_ex(16);
        if (!t.tok) {
                r = err_set(e, -ENOMEM, "out of memory");
                goto out;
        }
        json_tokener_set_flags(t.tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        http_setup(link, h, auth_token_url(tk->auth), headers, &t);
        t.ep = EP_TOKEN;
        if (tk->same_origin)
                http_use_client_cert(link, h);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(form));
        r = http_perform(&t, what, call.correlation_id, false, &call, e);
        if (r < 0 && t.status >= 400 && t.status < 500 && t.status != 429 && !t.err) {
                /* The platform says why in OAuth terms: that is the line to log. */
                oauth_error(&t, cause, sizeof cause);
                r = err_set(e, -EACCES, "%s: HTTP %ld%s (correlation id %s)", what, t.status, cause,
                            call.correlation_id);
        }
        if (r == 0 && !t.obj)
                r = err_set(e, -EBADMSG, "%s: HTTP %ld: empty or incomplete JSON (correlation id %s)", what, t.status,
                            call.correlation_id);
        if (r == 0) {
                r = auth_token_accept(tk->auth, t.obj, auth_now_ms(), e);
                if (r < 0)
                        err_prefix(e, r, "%s: HTTP %ld", what, t.status);
        }
out:
        if (form) {
                explicit_bzero(form, strlen(form));
                free(form);
        }
        curl_slist_free_all(headers);
        http_transfer_done(&t);
        return r;
}

int token_ensure(struct token *tk, struct http_link *link, CURL *h, struct errbuf *e) {
        int r = 0;

        if (!tk)
                return 0;
        pthread_mutex_lock(&tk->lock); /* one lane fetches it; the others wait and use it */
        if (!auth_token_fresh(tk->auth, auth_now_ms()))
                r = fetch_token(tk, link, h, e);
        pthread_mutex_unlock(&tk->lock);
        return r;
}

bool token_renew_after_401(struct token *tk, int r, struct ers_call *call, int attempt, struct errbuf *e) {
        char msg[ERRBUF_MAX];

        if (!tk || r != -EACCES || call->http_status != 401)
                return false;
        pthread_mutex_lock(&tk->lock);
        auth_forget(tk->auth);
        pthread_mutex_unlock(&tk->lock);
        if (attempt == 0)
                return uuid_v4(call->correlation_id) == 0;
        snprintf(msg, sizeof msg, "%s", e->msg);
        err_set(e, r, "%s; refused again with a newly issued access token: e-RS does not accept this "
                      "application's tokens (access revoked, or the application not approved for e-RS)", msg);
        return false;
}
