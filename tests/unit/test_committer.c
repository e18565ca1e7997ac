/*
 * test_committer.c — the group-commit write path: crafted batches where one op fails
 * alone, concurrent ops carried by one transaction (exactly 1 per transaction per-op),
 * backpressure when the backlog is full, and close draining pending ops.
 * Uses the internal pause hook so a batch's contents are known, not hoped for: every
 * figure asserted here is exact on any machine, at any load.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "durq_internal.h"
#include "unit_util.h"

static int setup(void **state)
{
	*state = fx_new("committer.db");
	return 0;
}

static void open_db(fx *f, int mode, int backlog)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = mode;
	o.backlog = backlog;
	o.busy_timeout_ms = 600000; /* per-op writers wait for each other: never EBUSY in a test */
	o.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* batches are counted op by op: none rides */
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
}

/* Wait until n ops sit in the paused committer's ring (no sleeping: yield and re-check). */
static void wait_backlog(durq *db, unsigned int n)
{
	while (durq_committer_backlog(db) < n)
		sched_yield();
}

typedef struct ack_job {
	durq *db;
	durq_work_item item;
	int forge;
	int rc;
} ack_job;

static void *ack_thread(void *arg)
{
	ack_job *j = arg;
	durq_token t = j->item.token;
	if (j->forge)
		t.bytes[0] ^= 0xff;
	j->rc = durq_work_ack(j->db, j->item.id, &t, NULL);
	return NULL;
}

static void test_failing_op_in_batch_fails_alone(void **state)
{
	fx *f = *state;
	enum { N = 6 };
	open_db(f, DURQ_COMMIT_GROUP, 0);
	durq_work w[N];
	for (int i = 0; i < N; i++)
		w[i] = (durq_work){.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(f->db, w, N), DURQ_OK);
	durq_work_item *items;
	size_t n;
	assert_int_equal(durq_work_fetch(f->db, &items, &n, NULL, N, 60000, 0), DURQ_OK);
	assert_int_equal(n, N);

	durq_stats before, after;
	assert_int_equal(durq_stats_get(f->db, &before), DURQ_OK);
	durq_committer_pause(f->db, 1);
	pthread_t th[N];
	ack_job jobs[N];
	for (int i = 0; i < N; i++) {
		jobs[i] = (ack_job){f->db, items[i], i == 2, 99};
		pthread_create(&th[i], NULL, ack_thread, &jobs[i]);
	}
	wait_backlog(f->db, N);
	durq_committer_pause(f->db, 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(durq_stats_get(f->db, &after), DURQ_OK);

	assert_int_equal(after.transactions - before.transactions, 1); /* one crafted batch */
	assert_int_equal(after.max_ops_per_txn, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(jobs[i].rc, i == 2 ? DURQ_ELOCKLOST : DURQ_OK);
	/* the five good acks committed; the forged one left its item leased */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_leased, 1);
	assert_int_equal(d.work_ready, 0);
	assert_int_equal(durq_work_ack(f->db, items[2].id, &items[2].token, NULL), DURQ_OK);
	durq_work_items_free(items, n);
}

typedef struct cycle_job {
	durq *db;
	int cycles;
	int errors;
} cycle_job;

static void *cycle_thread(void *arg)
{
	cycle_job *j = arg;
	for (int i = 0; i < j->cycles; i++) {
		durq_work w = {.payload = "p", .payload_len = 1};
		durq_work_item *it;
		size_t n;
		if (durq_work_enqueue(j->db, &w, 1) != DURQ_OK ||
		    durq_work_fetch(j->db, &it, &n, NULL, 1, 60000, 1000) != DURQ_OK) {
			j->errors++;
			continue;
		}
		if (durq_work_ack(j->db, it[0].id, &it[0].token, NULL) != DURQ_OK)
			j->errors++;
		durq_work_items_free(it, n);
	}
	return NULL;
}

static durq_stats run_cycles(durq *db, int threads, int cycles)
{
	pthread_t th[16];
	cycle_job jobs[16];
	durq_stats s;
	for (int i = 0; i < threads; i++) {
		jobs[i] = (cycle_job){db, cycles, 0};
		pthread_create(&th[i], NULL, cycle_thread, &jobs[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].errors, 0);
	}
	assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
	return s;
}

typedef struct acker {
	durq *db;
	pthread_barrier_t *go;
	size_t rounds;
	durq_work_item *items;
	size_t n;
	int errors;
} acker;

/* Each thread leases its share first, then acks one item per round, between two barriers. */
static void *ack_rounds_thread(void *arg)
{
	acker *a = arg;
	if (durq_work_fetch(a->db, &a->items, &a->n, NULL, a->rounds, 600000, 0) != DURQ_OK ||
	    a->n != a->rounds)
		a->errors++;
	pthread_barrier_wait(a->go); /* leased */
	for (size_t i = 0; i < a->rounds; i++) {
		pthread_barrier_wait(a->go); /* round i: the committer is paused */
		if (i >= a->n || durq_work_ack(a->db, a->items[i].id, &a->items[i].token, NULL) != DURQ_OK)
			a->errors++;
		pthread_barrier_wait(a->go); /* round i: every ack returned */
	}
	durq_work_items_free(a->items, a->n);
	return NULL;
}

/* Group commit carries the ops that are pending together in one transaction. Each round the
 * committer is paused, T threads post one ack each, the test waits until all T sit in the
 * ring and resumes: that round is exactly one transaction of T acks. The batch is built,
 * not hoped for, so the figures are exact on any machine (throughput is the bench's job). */
static void test_group_commit_batches_concurrent_acks(void **state)
{
	fx *f = *state;
	enum { T = 8, ROUNDS = 40 };
	open_db(f, DURQ_COMMIT_GROUP, 0);
	durq_work w[T * ROUNDS];
	for (int i = 0; i < T * ROUNDS; i++)
		w[i] = (durq_work){.payload = "p", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(f->db, w, T * ROUNDS), DURQ_OK);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, T + 1);
	pthread_t th[T];
	acker a[T];
	for (int i = 0; i < T; i++) {
		a[i] = (acker){.db = f->db, .go = &go, .rounds = ROUNDS};
		pthread_create(&th[i], NULL, ack_rounds_thread, &a[i]);
	}
	pthread_barrier_wait(&go); /* all items leased */
	for (int i = 0; i < T; i++)
		assert_int_equal(a[i].n, ROUNDS);
	durq_stats start, before, after;
	assert_int_equal(durq_stats_get(f->db, &start), DURQ_OK);
	for (int r = 0; r < ROUNDS; r++) {
		assert_int_equal(durq_stats_get(f->db, &before), DURQ_OK);
		durq_committer_pause(f->db, 1);
		pthread_barrier_wait(&go);
		wait_backlog(f->db, T);
		durq_committer_pause(f->db, 0);
		pthread_barrier_wait(&go);
		assert_int_equal(durq_stats_get(f->db, &after), DURQ_OK);
		assert_int_equal(after.transactions - before.transactions, 1);
		assert_int_equal(after.txn_ops - before.txn_ops, T);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].errors, 0);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(after.ops[DURQ_OP_WORK_ACK], T * ROUNDS);
	assert_int_equal(after.transactions - start.transactions, ROUNDS);
	assert_int_equal(after.max_ops_per_txn, T);
	assert_int_equal(after.ops_per_txn_hist[3] - start.ops_per_txn_hist[3], ROUNDS); /* 8-15 */
	assert_int_equal(after.busy_surfaced, 0);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_leased, 0);
}

static void test_per_op_mode_is_one_op_per_txn(void **state)
{
	fx *f = *state;
	open_db(f, DURQ_COMMIT_PER_OP, 0);
	durq_stats s = run_cycles(f->db, 8, 100);
	assert_int_equal(s.max_ops_per_txn, 1);
	assert_int_equal(s.transactions, s.txn_ops);
	assert_int_equal(s.ops[DURQ_OP_WORK_ACK], 800);
	assert_int_equal(s.busy_surfaced, 0);
}

typedef struct enq_job {
	durq *db;
	int i;
	int rc;
} enq_job;

static void *enqueue_thread(void *arg)
{
	enq_job *j = arg;
	char p[16];
	snprintf(p, sizeof(p), "item-%d", j->i);
	durq_work w = {.payload = p, .payload_len = strlen(p)};
	j->rc = durq_work_enqueue(j->db, &w, 1);
	return NULL;
}

static void test_full_backlog_blocks_then_drains(void **state)
{
	fx *f = *state;
	enum { N = 10 };
	open_db(f, DURQ_COMMIT_GROUP, 4); /* ring of 4 holds 3 ops */
	durq_committer_pause(f->db, 1);
	pthread_t th[N];
	enq_job jobs[N];
	for (int i = 0; i < N; i++) {
		jobs[i] = (enq_job){f->db, i, 99};
		pthread_create(&th[i], NULL, enqueue_thread, &jobs[i]);
	}
	wait_backlog(f->db, 3);
	durq_stats s;
	/* the other 7 callers block: they were counted as backlog waits */
	while (durq_stats_get(f->db, &s) == DURQ_OK && s.backlog_waits < N - 3)
		sched_yield();
	assert_int_equal(durq_committer_backlog(f->db), 3);
	durq_committer_pause(f->db, 0);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].rc, DURQ_OK);
	}
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, N);
}

static void test_close_completes_pending_ops(void **state)
{
	fx *f = *state;
	enum { N = 8 };
	open_db(f, DURQ_COMMIT_GROUP, 0);
	durq_committer_pause(f->db, 1);
	pthread_t th[N];
	enq_job jobs[N];
	for (int i = 0; i < N; i++) {
		jobs[i] = (enq_job){f->db, i, 99};
		pthread_create(&th[i], NULL, enqueue_thread, &jobs[i]);
	}
	wait_backlog(f->db, N);
	assert_int_equal(durq_close(f->db), DURQ_OK); /* unpauses, drains, joins */
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].rc, DURQ_OK);
	}
	durq_work w = {.payload = "late", .payload_len = 4};
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_ECLOSED);
	assert_int_equal(durq_close(f->db), DURQ_OK); /* twice is fine */
	durq_free(f->db);
	f->db = NULL;
	open_db(f, DURQ_COMMIT_GROUP, 0);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, N); /* none lost */
}

static void test_commit_time_and_histogram_recorded(void **state)
{
	fx *f = *state;
	open_db(f, DURQ_COMMIT_GROUP, 0);
	durq_stats s = run_cycles(f->db, 2, 50);
	uint64_t hist_total = 0;
	for (int i = 0; i < DURQ_STATS_BUCKETS; i++)
		hist_total += s.ops_per_txn_hist[i];
	assert_int_equal(hist_total, s.transactions);
	assert_true(s.commit_ns_total > 0);
	assert_true(s.commit_ns_max > 0);
	char buf[32768];
	size_t need;
	assert_int_equal(durq_stats_prometheus(f->db, buf, sizeof(buf), &need), DURQ_OK);
	assert_non_null(strstr(buf, "durq_transactions_total"));
	assert_non_null(strstr(buf, "durq_wal_bytes"));
	assert_true(s.db_bytes > 0);      /* the file database has pages */
	assert_true(s.wal_bytes > 0);     /* and a live WAL while open */
	assert_non_null(strstr(buf, "durq_ops_total{op=\"work_ack\"} 100"));
	assert_int_equal(durq_stats_prometheus(f->db, buf, 16, &need), DURQ_ETOOBIG);
	assert_true(need > 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_failing_op_in_batch_fails_alone, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_batches_concurrent_acks, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_per_op_mode_is_one_op_per_txn, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_full_backlog_blocks_then_drains, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_close_completes_pending_ops, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_commit_time_and_histogram_recorded, setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
