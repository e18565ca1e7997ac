/*
 * stats.c — counters updated with Concurrency Kit atomics (ck_pr) and their snapshot:
 * op and transaction counts, the ops-per-transaction histogram, and the commit and ack
 * latency histograms (fixed log-spaced buckets, DURQ_LATENCY_BOUNDS_US).
 * The committer and callers update; durq_stats_get() reads without locks. Also a
 * histogram's quantile (durq_latency_quantile_ns, for `durq top`).
 * Does not own: the text exposition (api.c, durq_stats_prometheus).
 */
#include <string.h>

#include <ck_pr.h>

#include "durq_internal.h"

void durq_stats_add(uint64_t *counter, uint64_t v)
{
	ck_pr_add_64(counter, v);
}

void durq_stats_max(uint64_t *counter, uint64_t v)
{
	uint64_t cur = ck_pr_load_64(counter);
	while (v > cur && !ck_pr_cas_64_value(counter, cur, v, &cur))
		;
}

static int bucket_of(uint64_t n)
{
	int b = 0;
	while (n > 1 && b < DURQ_STATS_BUCKETS - 1) {
		n >>= 1;
		b++;
	}
	return b;
}

static const uint64_t latency_bounds_us[DURQ_LATENCY_BUCKETS - 1] = DURQ_LATENCY_BOUNDS_US;

static void latency_add(durq_latency_counters *h, uint64_t ns)
{
	int b = 0;
	while (b < DURQ_LATENCY_BUCKETS - 1 && ns > latency_bounds_us[b] * 1000)
		b++;
	ck_pr_inc_64(&h->buckets[b]);
	ck_pr_add_64(&h->sum_ns, ns);
}

/* count is the sum of the buckets read, so a snapshot's histogram is consistent with itself
 * even while the committer adds to it */
static void latency_load(durq_latency_counters *h, durq_latency *out)
{
	out->count = 0;
	for (int i = 0; i < DURQ_LATENCY_BUCKETS; i++) {
		out->buckets[i] = ck_pr_load_64(&h->buckets[i]);
		out->count += out->buckets[i];
	}
	out->sum_ns = ck_pr_load_64(&h->sum_ns);
}

void durq_stats_txn(durq_counters *c, uint64_t nops, uint64_t ns, int ok)
{
	if (!ok) {
		ck_pr_inc_64(&c->commit_failures);
		return;
	}
	ck_pr_inc_64(&c->transactions);
	ck_pr_add_64(&c->txn_ops, nops);
	ck_pr_inc_64(&c->hist[bucket_of(nops)]);
	ck_pr_add_64(&c->commit_ns_total, ns);
	durq_stats_max(&c->max_ops_per_txn, nops);
	durq_stats_max(&c->commit_ns_max, ns);
	latency_add(&c->commit_latency, ns);
}

void durq_stats_ack(durq_counters *c, int kind, uint64_t ns)
{
	if (kind == DURQ_OP_WORK_ACK)
		latency_add(&c->ack_latency[0], ns);
	else if (kind == DURQ_OP_ORCH_ACK)
		latency_add(&c->ack_latency[1], ns);
}

void durq_stats_op(durq_counters *c, int kind, int rc)
{
	if (kind >= 0 && kind < DURQ_OP__COUNT)
		ck_pr_inc_64(&c->ops[kind]);
	if (rc < 0 && rc != DURQ_EMPTY)
		ck_pr_inc_64(&c->op_failures);
	if (rc == DURQ_EBUSY)
		ck_pr_inc_64(&c->busy_surfaced);
}

void durq_stats_snapshot(const durq_counters *c, durq_stats *out)
{
	durq_counters *m = (durq_counters *)c; /* ck_pr_load takes non-const */
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < DURQ_OP__COUNT; i++)
		out->ops[i] = ck_pr_load_64(&m->ops[i]);
	for (int i = 0; i < DURQ_STATS_BUCKETS; i++)
		out->ops_per_txn_hist[i] = ck_pr_load_64(&m->hist[i]);
	out->op_failures = ck_pr_load_64(&m->op_failures);
	out->transactions = ck_pr_load_64(&m->transactions);
	out->txn_ops = ck_pr_load_64(&m->txn_ops);
	out->max_ops_per_txn = ck_pr_load_64(&m->max_ops_per_txn);
	out->mean_ops_per_txn =
		out->transactions ? (double)out->txn_ops / (double)out->transactions : 0.0;
	out->commit_failures = ck_pr_load_64(&m->commit_failures);
	out->commit_ns_total = ck_pr_load_64(&m->commit_ns_total);
	out->commit_ns_max = ck_pr_load_64(&m->commit_ns_max);
	out->busy_retries = ck_pr_load_64(&m->busy_retries);
	out->busy_surfaced = ck_pr_load_64(&m->busy_surfaced);
	out->backlog_waits = ck_pr_load_64(&m->backlog_waits);
	out->pool_checkouts = ck_pr_load_64(&m->pool_checkouts);
	out->pool_waits = ck_pr_load_64(&m->pool_waits);
	out->pool_wait_ns = ck_pr_load_64(&m->pool_wait_ns);
	out->pool_in_use = ck_pr_load_64(&m->pool_in_use);
	latency_load(&m->commit_latency, &out->commit_latency);
	latency_load(&m->ack_latency[0], &out->work_ack_latency);
	latency_load(&m->ack_latency[1], &out->orch_ack_latency);
}

uint64_t durq_latency_quantile_ns(const durq_latency *l, double q)
{
	uint64_t total = 0, seen = 0;
	if (!l)
		return 0;
	for (int i = 0; i < DURQ_LATENCY_BUCKETS; i++)
		total += l->buckets[i];
	if (!total)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	double at = q * (double)total;
	uint64_t want = (uint64_t)at; /* the ceil(q * total)-th sample, at least the first */
	if ((double)want < at || want < 1)
		want++;
	for (int i = 0; i < DURQ_LATENCY_BUCKETS - 1; i++) {
		seen += l->buckets[i];
		if (seen >= want)
			return latency_bounds_us[i] * 1000;
	}
	return latency_bounds_us[DURQ_LATENCY_BUCKETS - 2] * 1000;
}
