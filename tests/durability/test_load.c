/*
 * test_load.c — load (issue 11 item 6): T threads share one handle on a file database (group
 * commit, durq's default options) and each performs OPS item operations: enqueues of 1-8
 * items (synchronous, or async with a callback), fetches of 1-16 items, and for each item
 * fetched an ack (one by one, durq_work_ack_many of the batch, or durq_work_ack_async) or,
 * 5% of them, an abandon (sync or async) that delivers it again. An item operation is one
 * item enqueued, claimed, acked or abandoned: each item costs 3 (plus 2 per abandon), so a
 * thread produces OPS / 3 items and the threads consume each other's until every item is
 * acked. The backlog of items not yet acked stays under BACKLOG_CAP.
 *
 * Checks: 0 errors of any code reach a caller (counted by code; DURQ_EMPTY from a fetch is
 * not an error), durq_stats busy_surfaced = 0, every item acked exactly once (a counter per
 * item, its id in the payload), the queue empty at the end and the stats' ack count equal to
 * the items. Prints item-ops/s, calls/s, errors by code, busy waits hidden and surfaced,
 * transactions, ops per transaction and the duration.
 *
 * Size: DURQ_LOAD_THREADS (16) x DURQ_LOAD_OPS per thread (20,000; 10,000 under ASan+UBSan,
 * 4,000 under TSan; scripts/load-full.sh runs 10^6), DURQ_LOAD_DIR (default TMPDIR or /tmp).
 * DURQ_LOAD_COMMIT=per-op runs the per-op commit mode instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "durability_util.h"

enum {
	MAXT = 256,           /* most threads */
	MAXB = 16,            /* most items per fetch */
	MAXE = 8,             /* most items per enqueue */
	PAYLOAD = 32,         /* bytes: the item id, then filler */
	LEASE_MS = 600000,    /* nothing expires during the run */
	BACKLOG_CAP = 4096,   /* producers pause (and consume) above this many items not acked */
	NCODES = 16           /* -DURQ_ETIMEDOUT + 2: index = -rc, last = "other" */
};

typedef struct run {
	durq *db;
	int threads;
	long items_per_thread, items;
	_Atomic unsigned char *acks;  /* per item: OK'd acks (saturates at 255) */
	atomic_long enqueued;         /* OK'd enqueues (items) */
	atomic_long acked;            /* OK'd acks */
	atomic_int producers_done;
	atomic_int failed;
	atomic_long errors[NCODES];
	atomic_long contract;         /* a payload of no item, an item acked twice */
	atomic_long item_ops, calls, abandons;
} run;

typedef struct worker {
	run *r;
	int id;
	unsigned int seed;
} worker;

static void count_error(run *r, int rc, const char *what, const char *msg)
{
	int i = rc < 0 && rc >= -(NCODES - 2) ? -rc : NCODES - 1;
	if (atomic_fetch_add(&r->errors[i], 1) < 5)
		fprintf(stderr, "load: %s: %s: %s\n", what, durq_error_name(rc), msg);
	atomic_store(&r->failed, 1);
}

static int ok(run *r, int rc, const char *what, int allowed)
{
	atomic_fetch_add(&r->calls, 1);
	if (rc == DURQ_OK || (allowed && rc == allowed))
		return 1;
	count_error(r, rc, what, durq_error_last());
	return 0;
}

static void acked(run *r, uint64_t id)
{
	atomic_fetch_add(&r->acked, 1);
	atomic_fetch_add(&r->item_ops, 1);
	if (id >= (uint64_t)r->items || atomic_fetch_add(&r->acks[id], 1) != 0) {
		if (atomic_fetch_add(&r->contract, 1) < 5)
			fprintf(stderr, "load: item %llu acked OK twice (or unknown)\n",
				(unsigned long long)id);
		atomic_store(&r->failed, 1);
	}
}

/* Async completions: ctx is a heap cell with the run and what the op was. */
typedef struct op_ctx {
	run *r;
	uint64_t id;   /* ack: the item; enqueue: the number of items */
	int kind;      /* 'e' enqueue, 'k' ack, 'b' abandon */
} op_ctx;

static void op_done(void *ctx, const durq_completion *c)
{
	op_ctx *o = ctx;
	if (c->rc != DURQ_OK)
		count_error(o->r, c->rc, durq_op_kind_name(c->kind), c->message);
	else if (o->kind == 'e')
		atomic_fetch_add(&o->r->enqueued, (long)o->id);
	else if (o->kind == 'k')
		acked(o->r, o->id);
	free(o);
}

static durq_async op_async(run *r, int kind, uint64_t id)
{
	op_ctx *o = malloc(sizeof(*o));
	if (!o)
		abort();
	*o = (op_ctx){r, id, kind};
	return (durq_async){.done = op_done, .ctx = o};
}

static void make_payload(unsigned char *p, uint64_t id)
{
	memcpy(p, &id, sizeof(id));
	for (size_t k = sizeof(id); k < PAYLOAD; k++)
		p[k] = (unsigned char)(id + k);
}

static int payload_id(const run *r, const durq_work_item *it, uint64_t *id)
{
	unsigned char want[PAYLOAD];
	if (it->payload_len != PAYLOAD)
		return 0;
	memcpy(id, it->payload, sizeof(*id));
	make_payload(want, *id);
	return *id < (uint64_t)r->items && memcmp(want, it->payload, PAYLOAD) == 0;
}

static void produce(worker *w, long *seq)
{
	run *r = w->r;
	unsigned char buf[MAXE][PAYLOAD];
	durq_work items[MAXE];
	int n = 1 + rand_r(&w->seed) % MAXE;
	if (n > r->items_per_thread - *seq)
		n = (int)(r->items_per_thread - *seq);
	for (int i = 0; i < n; i++) {
		uint64_t id = (uint64_t)w->id * (uint64_t)r->items_per_thread + (uint64_t)(*seq)++;
		make_payload(buf[i], id);
		items[i] = (durq_work){.queue = "load", .payload = buf[i], .payload_len = PAYLOAD};
	}
	atomic_fetch_add(&r->item_ops, n);
	if (rand_r(&w->seed) % 2) {
		if (ok(r, durq_work_enqueue(r->db, items, (size_t)n), "enqueue", 0))
			atomic_fetch_add(&r->enqueued, n);
	} else {
		durq_async a = op_async(r, 'e', (uint64_t)n);
		if (!ok(r, durq_work_enqueue_async(r->db, items, (size_t)n, &a), "enqueue_async", 0))
			free(a.ctx);
	}
}

static void consume(worker *w, int timeout_ms)
{
	run *r = w->r;
	durq_work_item *it = NULL;
	size_t n = 0, nreq = 0;
	int rc = durq_work_fetch(r->db, &it, &n, "load", 1 + rand_r(&w->seed) % MAXB, LEASE_MS,
				 timeout_ms);
	if (!ok(r, rc, "fetch", DURQ_EMPTY) || rc == DURQ_EMPTY)
		return;
	atomic_fetch_add(&r->item_ops, (long)n);
	durq_work_ack_req reqs[MAXB];
	uint64_t req_ids[MAXB];
	int style = rand_r(&w->seed) % 3; /* 0 one by one, 1 ack_many, 2 async */
	for (size_t k = 0; k < n && !atomic_load(&r->failed); k++) {
		uint64_t id;
		if (!payload_id(r, &it[k], &id)) {
			atomic_fetch_add(&r->contract, 1);
			atomic_store(&r->failed, 1);
			fprintf(stderr, "load: fetched a payload of no item\n");
			continue;
		}
		if (rand_r(&w->seed) % 20 == 0) { /* abandon: delivered again */
			atomic_fetch_add(&r->item_ops, 1);
			atomic_fetch_add(&r->abandons, 1);
			if (style == 2) {
				durq_async a = op_async(r, 'b', id);
				if (!ok(r, durq_work_abandon_async(r->db, it[k].id, &it[k].token, 0, 0, &a),
					"abandon_async", 0))
					free(a.ctx);
			} else {
				ok(r, durq_work_abandon(r->db, it[k].id, &it[k].token, 0, 0), "abandon", 0);
			}
		} else if (style == 0) {
			if (ok(r, durq_work_ack(r->db, it[k].id, &it[k].token, NULL), "ack", 0))
				acked(r, id);
		} else if (style == 1) {
			reqs[nreq] = (durq_work_ack_req){it[k].id, &it[k].token, NULL};
			req_ids[nreq++] = id;
		} else {
			durq_async a = op_async(r, 'k', id);
			if (!ok(r, durq_work_ack_async(r->db, it[k].id, &it[k].token, NULL, &a),
				"ack_async", 0))
				free(a.ctx);
		}
	}
	if (nreq) {
		int rcs[MAXB];
		rc = durq_work_ack_many(r->db, reqs, nreq, rcs);
		ok(r, rc, "ack_many", 0);
		for (size_t k = 0; k < nreq; k++)
			if (rcs[k] == DURQ_OK)
				acked(r, req_ids[k]);
	}
	durq_work_items_free(it, n);
}

static void *work(void *arg)
{
	worker *w = arg;
	run *r = w->r;
	long seq = 0;
	int produced = 0;
	while (!atomic_load(&r->failed)) {
		long backlog = atomic_load(&r->enqueued) - atomic_load(&r->acked);
		if (seq < r->items_per_thread && backlog < BACKLOG_CAP && rand_r(&w->seed) % 2)
			produce(w, &seq);
		if (seq == r->items_per_thread && !produced) {
			produced = 1;
			ok(r, durq_flush(r->db, -1), "durq_flush", 0); /* its async enqueues counted */
			atomic_fetch_add(&r->producers_done, 1);
		}
		if (produced && atomic_load(&r->producers_done) == r->threads &&
		    atomic_load(&r->acked) >= r->items)
			break;
		consume(w, seq < r->items_per_thread ? 1 : 10);
	}
	ok(r, durq_flush(r->db, -1), "durq_flush", 0);
	return NULL;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_load(void **state)
{
	(void)state;
	run r = {0};
	const char *base = getenv("DURQ_LOAD_DIR");
	char *dir = base ? strdup(base) : test_tmpdir(), url[PATH_MAX + 16];
	const char *mode = getenv("DURQ_LOAD_COMMIT");
	int per_op = mode && !strcmp(mode, "per-op");
	long ops = dur_env_long("DURQ_LOAD_OPS", DUR_BY_BUILD(20000, 10000, 4000));
	r.threads = (int)dur_env_long("DURQ_LOAD_THREADS", 16);
	assert_non_null(dir);
	assert_true(r.threads > 0 && r.threads <= MAXT && ops >= 3);
	r.items_per_thread = ops / 3;
	r.items = r.items_per_thread * r.threads;
	r.acks = calloc((size_t)r.items, 1);
	assert_non_null(r.acks);
	snprintf(url, sizeof(url), "sqlite:%s/load.db", dir);
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = per_op ? DURQ_COMMIT_PER_OP : DURQ_COMMIT_GROUP;
	assert_int_equal(durq_open(&r.db, url, &o), DURQ_OK);

	pthread_t th[MAXT];
	worker w[MAXT];
	double t0 = mono_s();
	for (int i = 0; i < r.threads; i++) {
		w[i] = (worker){&r, i, 0x9e3779b9u * (unsigned int)(i + 1)};
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < r.threads; i++)
		pthread_join(th[i], NULL);
	double secs = mono_s() - t0;

	durq_stats s;
	durq_queue_depths d;
	assert_int_equal(durq_stats_get(r.db, &s), DURQ_OK);
	assert_int_equal(durq_queue_depths_get(r.db, &d, NULL), DURQ_OK);
	long errors = 0, item_ops = atomic_load(&r.item_ops), calls = atomic_load(&r.calls);
	fprintf(stderr, "load: %d threads x %ld item-ops (%s commit, file %s): %.1f s, %ld item-ops "
		"(%.0f/s), %ld calls (%.0f/s), %ld items, %ld abandons\n", r.threads, ops,
		per_op ? "per-op" : "group", url + 7, secs, item_ops, item_ops / secs, calls,
		calls / secs, r.items, atomic_load(&r.abandons));
	fprintf(stderr, "load: %llu transactions, %.1f ops/txn (max %llu), %llu busy waits hidden, "
		"%llu busy errors surfaced, %llu backlog waits, WAL %llu bytes\n",
		(unsigned long long)s.transactions, s.mean_ops_per_txn,
		(unsigned long long)s.max_ops_per_txn, (unsigned long long)s.busy_retries,
		(unsigned long long)s.busy_surfaced, (unsigned long long)s.backlog_waits,
		(unsigned long long)s.wal_bytes);
	fprintf(stderr, "load: errors by code:");
	for (int i = 1; i < NCODES; i++) {
		long n = atomic_load(&r.errors[i]);
		errors += n;
		if (n)
			fprintf(stderr, " %s %ld", i == NCODES - 1 ? "(other)" : durq_error_name(-i), n);
	}
	fprintf(stderr, "%s (total %ld)\n", errors ? "" : " none", errors);
	assert_int_equal(errors, 0);
	assert_int_equal(atomic_load(&r.contract), 0);
	assert_int_equal(s.busy_surfaced, 0);
	assert_int_equal(atomic_load(&r.enqueued), r.items);
	assert_int_equal(atomic_load(&r.acked), r.items);
	for (long i = 0; i < r.items; i++)
		if (atomic_load(&r.acks[i]) != 1)
			fail_msg("item %ld acked OK %d times", i, atomic_load(&r.acks[i]));
	assert_int_equal(d.work_ready + d.work_leased + d.work_delayed, 0);
	assert_int_equal(s.ops[DURQ_OP_WORK_ACK], (uint64_t)r.items);
	durq_free(r.db);
	free(r.acks);
	if (base)
		free(dir);
	else
		test_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
