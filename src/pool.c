/*
 * pool.c — the read pool: 5..20 provider connections, checked out with a timeout,
 * health-checked on return, counted (checkouts, waits, wait time, in use).
 * In per-op mode these connections also carry each caller's own write transaction.
 */
#include <errno.h>
#include <stdlib.h>

#include <ck_pr.h>

#include "durq_internal.h"

int durq_pool_init(durq_pool *p, durq_provider *prov, const durq_options *o, durq_counters *c)
{
	pthread_condattr_t ca;
	p->provider = prov;
	p->opts = o;
	p->counters = c;
	p->size = 0;
	p->nfree = 0;
	p->closed = false;
	p->conns = calloc((size_t)o->pool_size, sizeof(*p->conns));
	p->free = calloc((size_t)o->pool_size, sizeof(*p->free));
	if (!p->conns || !p->free) {
		free(p->conns);
		free(p->free);
		return durq_error_set(DURQ_ENOMEM, "pool: out of memory");
	}
	int prc = pthread_mutex_init(&p->mu, NULL);
	if (prc == 0 && (prc = pthread_condattr_init(&ca)) == 0) {
		if ((prc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0 &&
		    (prc = pthread_cond_init(&p->cv, &ca)) != 0)
			pthread_mutex_destroy(&p->mu);
		pthread_condattr_destroy(&ca);
	}
	if (prc != 0) {
		free(p->conns);
		free(p->free);
		p->conns = p->free = NULL;
		return durq_error_set(DURQ_ENOMEM, "pool: cannot create its locks");
	}
	for (int i = 0; i < o->pool_size; i++) {
		int rc = prov->conn_open(prov, &p->conns[i], DURQ_CONN_READ);
		if (rc < 0) {
			durq_pool_destroy(p);
			return rc;
		}
		p->size++;
		p->free[p->nfree++] = p->conns[i];
	}
	return DURQ_OK;
}

int durq_pool_checkout(durq_pool *p, durq_conn **out)
{
	uint64_t start = 0;
	int rc = DURQ_OK;
	pthread_mutex_lock(&p->mu);
	if (p->nfree == 0 && !p->closed) {
		struct timespec ts;
		start = durq_clock_mono_ns();
		durq_deadline_to_timespec(&ts, start + (uint64_t)p->opts->pool_timeout_ms * 1000000ull);
		ck_pr_inc_64(&p->counters->pool_waits);
		while (p->nfree == 0 && !p->closed && rc == DURQ_OK)
			if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT && p->nfree == 0)
				rc = durq_error_set(DURQ_EBUSY, "pool: no read connection free after "
						    "%d ms (pool_size %d)", p->opts->pool_timeout_ms,
						    p->size);
		ck_pr_add_64(&p->counters->pool_wait_ns, durq_clock_mono_ns() - start);
	}
	if (rc == DURQ_OK && p->closed)
		rc = durq_error_set(DURQ_ECLOSED, "pool: closed");
	if (rc == DURQ_OK) {
		*out = p->free[--p->nfree];
		ck_pr_inc_64(&p->counters->pool_checkouts);
		ck_pr_inc_64(&p->counters->pool_in_use);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* A connection that saw an I/O error is replaced so one bad handle can't poison the pool.
 * Runs with no lock held: opening may be slow, and the log callback may call durq. */
static durq_conn *reopen(durq_pool *p, durq_conn *c)
{
	durq_conn *fresh = NULL;
	if (p->provider->conn_open(p->provider, &fresh, DURQ_CONN_READ) < 0)
		return c; /* keep the old one; the next use reports the fault */
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->size; i++)
		if (p->conns[i] == c)
			p->conns[i] = fresh;
	pthread_mutex_unlock(&p->mu);
	p->provider->conn_close(p->provider, c);
	durq_log_emit(p->opts, DURQ_LOG_WARN, "POOL", "replaced a read connection after an error");
	return fresh;
}

void durq_pool_checkin(durq_pool *p, durq_conn *c, bool bad)
{
	if (bad || (p->provider->conn_check && p->provider->conn_check(c) < 0))
		c = reopen(p, c); /* still checked out: nobody else sees it meanwhile */
	pthread_mutex_lock(&p->mu);
	p->free[p->nfree++] = c;
	ck_pr_dec_64(&p->counters->pool_in_use);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void durq_pool_destroy(durq_pool *p)
{
	if (!p->conns)
		return;
	pthread_mutex_lock(&p->mu);
	p->closed = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->size; i++)
		p->provider->conn_close(p->provider, p->conns[i]);
	free(p->conns);
	free(p->free);
	p->conns = NULL;
	p->free = NULL;
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}
