/* SPDX-License-Identifier: MIT */
/*
 * The fetch pool (pool.h): ers.parallel_fetches threads, each with its own
 * e-RS lane, taking referral jobs from a queue and handing them back fetched,
 * in the order they finish; the owner waits with a timeout.  Not here: what a
 * fetch does (fetch.c), how many jobs are in flight (round.c).
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fetcher {
        pthread_t thread;
        struct fetch_env env;  /* env.ers is the lane, owned */
        struct fetch_pool *pool; /* borrowed */
};

struct fetch_pool {
        pthread_mutex_t lock;
        pthread_cond_t work;    /* a job queued, or quitting */
        pthread_cond_t done;    /* a job fetched */
        struct referral_job *queue, *queue_tail; /* borrowed: submitted, not started */
        struct referral_job *finished, *finished_tail; /* borrowed: fetched, not yet returned */
        bool quit;
        unsigned in_flight;     /* the owner's count: submitted, not yet returned */
        struct fetch_env env;   /* the owner's: used when there is no thread */
        struct fetcher *fetchers; /* owned array */
        unsigned n_fetchers;    /* started */
};

static void push(struct referral_job **head, struct referral_job **tail, struct referral_job *j) {
        j->next = NULL;
        if (*tail)
                (*tail)->next = j;
        else
                *head = j;
        *tail = j;
}

static struct referral_job *pop(struct referral_job **head, struct referral_job **tail) {
        struct referral_job *j = *head;

        if (j) {
                *head = j->next;
                if (!*head)
                        *tail = NULL;
                j->next = NULL;
        }
        return j;
}

static void *fetcher_main(void *arg) {
        struct fetcher *f = arg;
        struct fetch_pool *p = f->pool;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                struct referral_job *j;
                while (!p->queue && !p->quit)
                        pthread_cond_wait(&p->work, &p->lock);
                j = pop(&p->queue, &p->queue_tail);
                if (!j)
                        break; /* quitting, and nothing queued */
                pthread_mutex_unlock(&p->lock);
                fetch_referral(&f->env, j);
                pthread_mutex_lock(&p->lock);
                push(&p->finished, &p->finished_tail, j);
                pthread_cond_signal(&p->done);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

int fetch_pool_new(const struct fetch_env *env, unsigned threads, struct fetch_pool **ret, struct errbuf *e) {
        struct fetch_pool *p = calloc(1, sizeof *p);
        pthread_condattr_t ca;
        int r;

        if (!p)
                return err_set(e, -ENOMEM, "out of memory");
        p->env = *env;
        r = pthread_condattr_init(&ca);
        if (r == 0) {
                r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                if (r == 0)
                        r = pthread_cond_init(&p->done, &ca);
                pthread_condattr_destroy(&ca);
        }
        if (r != 0) {
                free(p);
                return err_set(e, -r, "fetch pool: %s", strerror(r));
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->work, NULL);
        if (threads > 1) {
                p->fetchers = calloc(threads, sizeof *p->fetchers);
                if (!p->fetchers) {
                        fetch_pool_free(p);
                        return err_set(e, -ENOMEM, "out of memory");
                }
                for (unsigned i = 0; i < threads; i++) {
                        struct fetcher *f = &p->fetchers[i];
                        f->pool = p;
                        f->env = *env;
                        r = ers_client_lane(env->ers, &f->env.ers, e);
                        if (r < 0) {
                                fetch_pool_free(p);
                                return r;
                        }
                        r = pthread_create(&f->thread, NULL, fetcher_main, f);
                        if (r != 0) {
                                ers_client_free(f->env.ers);
                                fetch_pool_free(p);
                                return err_set(e, -r, "fetch pool: cannot start a thread: %s", strerror(r));
                        }
                        p->n_fetchers++;
                }
        }
        *ret = p;
        return 0;
}

void fetch_pool_submit(struct fetch_pool *p, struct referral_job *j) {
        p->in_flight++;
        if (p->n_fetchers == 0) {
                fetch_referral(&p->env, j);
                push(&p->finished, &p->finished_tail, j);
                return;
        }
        pthread_mutex_lock(&p->lock);
        push(&p->queue, &p->queue_tail, j);
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->lock);
}

unsigned fetch_pool_in_flight(const struct fetch_pool *p) {
        return p->in_flight;
}

struct referral_job *fetch_pool_wait(struct fetch_pool *p, double timeout_s) {
        struct referral_job *j;
        struct timespec until;

        if (p->in_flight == 0)
                return NULL;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t) timeout_s;
        until.tv_nsec += (long) ((timeout_s - (double) (time_t) timeout_s) * 1e9);
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->lock);
        while (!p->finished && p->n_fetchers > 0)
                if (pthread_cond_timedwait(&p->done, &p->lock, &until) == ETIMEDOUT)
                        break;
        j = pop(&p->finished, &p->finished_tail);
        pthread_mutex_unlock(&p->lock);
        if (j)
                p->in_flight--;
        return j;
}

void fetch_pool_free(struct fetch_pool *p) {
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->quit = true;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_fetchers; i++) {
                pthread_join(p->fetchers[i].thread, NULL);
                ers_client_free(p->fetchers[i].env.ers);
        }
        free(p->fetchers);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->done);
        pthread_mutex_destroy(&p->lock);
        free(p);
}
