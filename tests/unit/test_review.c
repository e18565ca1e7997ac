/*
 * test_review.c — the bugs a code review found (issue 7), each pinned by a test that failed
 * before its fix: the timer cache race, binds over SQLite's length limit stored as NULL,
 * an out-of-memory column copy returned as a leased item, one slow commit stalling later
 * batches, a log callback that calls back into durq (pool mutex, committer thread), and a
 * second concurrent durq_close returning while the first still runs.
 * Internal headers on purpose: some of these are only observable from inside.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "durq_internal.h"
#include "sqlite/sqlite_internal.h"
#include "sqlite/sqlite_provider.h"
#include "unit_util.h"

#define T0 1000000

static durq_options opts_with_clock(test_clock *clk)
{
	durq_options o = DURQ_OPTIONS_INIT;
	clk->now = T0;
	o.clock = test_clock_read;
	o.clock_ctx = clk;
	o.poll_interval_ms = 60000; /* the fallback poll must not hide what we look at */
	return o;
}

/* ---- bug 1: a refresh whose snapshot missed a commit must not store "no timer" ------- */

static durq *race_db;
static int race_armed;
static int (*real_next_due)(durq_conn *, int64_t *, int64_t);

/* The provider's query runs (its snapshot sees no timer), then — before the refresh stores
 * the result — a commit adds a timer later than the stale cached one. */
static int next_due_then_commit(durq_conn *c, int64_t *due, int64_t now)
{
	int rc = real_next_due(c, due, now);
	if (race_armed) {
		race_armed = 0;
		durq_message m = {.instance_id = "late", .payload = "t", .payload_len = 1,
				  .delay_ms = 5000};
		if (durq_orch_enqueue(race_db, &m, 1) != DURQ_OK)
			return DURQ_EIO;
	}
	return rc;
}

static void test_refresh_keeps_a_timer_committed_during_its_query(void **state)
{
	fx *f = *state;
	test_clock clk;
	durq_options o = opts_with_clock(&clk);
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	durq_message early = {.instance_id = "early", .payload = "e", .payload_len = 1,
			      .delay_ms = 1000};
	assert_int_equal(durq_orch_enqueue(f->db, &early, 1), DURQ_OK);
	assert_int_equal(f->db->next_due_ms, T0 + 1000);
	test_clock_advance(&clk, 1000); /* the cached timer fires and is consumed: now stale */
	durq_turn *t;
	assert_int_equal(durq_orch_fetch(f->db, &t, 60000, 0), DURQ_OK);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	assert_int_equal(durq_orch_ack(f->db, t->instance_id, &t->token, &r), DURQ_OK);
	durq_turn_free(t);

	race_db = f->db;
	real_next_due = f->db->provider->next_due;
	f->db->provider->next_due = next_due_then_commit;
	race_armed = 1;
	durq_next_due_refresh(f->db);
	f->db->provider->next_due = real_next_due;
	assert_int_equal(race_armed, 0);
	/* the timer committed during the query is still known */
	assert_int_equal(f->db->next_due_ms, T0 + 1000 + 5000);
}

/* ---- bug 2: a bind SQLite refuses fails the op; nothing is stored as NULL ------------ */

static void limit_writers(durq *db, int bytes)
{
	if (db->committer.conn)
		sqlite3_limit(sq_conn_of(db->committer.conn)->db, SQLITE_LIMIT_LENGTH, bytes);
	for (int i = 0; i < db->pool.size; i++) /* per-op mode writes on pool connections */
		sqlite3_limit(sq_conn_of(db->pool.conns[i])->db, SQLITE_LIMIT_LENGTH, bytes);
}

static void oversize_bind_fails(fx *f, int mode)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = mode;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	limit_writers(f->db, 1000);
	char big[2000];
	memset(big, 'x', sizeof(big));
	durq_work w = {.payload = big, .payload_len = sizeof(big)};
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_ETOOBIG);
	assert_non_null(strstr(durq_error_last(), "too big"));
	durq_message m = {.instance_id = "i", .payload = big, .payload_len = sizeof(big)};
	assert_int_equal(durq_orch_enqueue(f->db, &m, 1), DURQ_ETOOBIG);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, 0);
	assert_int_equal(d.orch_ready, 0);
	w.payload_len = 10; /* the connection still works */
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
}

static void test_oversize_bind_fails_the_op_group(void **state)
{
	oversize_bind_fails(*state, DURQ_COMMIT_GROUP);
}

static void test_oversize_bind_fails_the_op_per_op(void **state)
{
	oversize_bind_fails(*state, DURQ_COMMIT_PER_OP);
}

static void test_max_payload_over_the_provider_limit_is_refused_at_open(void **state)
{
	fx *f = *state;
	durq_options o = DURQ_OPTIONS_INIT;
	o.max_payload = (size_t)1 << 30; /* accepted by durq's range, not storable by SQLite */
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_EINVAL);
	assert_null(f->db);
	assert_non_null(strstr(durq_error_last(), "max_payload"));
	o.max_payload = 100u << 20;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
}

/* ---- bug 3: a column copy that runs out of memory fails the claim -------------------- */

/* Fails allocations of exactly this many bytes (0 = none): the payload copies, not the
 * queue name or instance id copies beside them, so the test sees the blob path alone. */
static int alloc_fails;

static void *maybe_malloc(size_t n)
{
	return (size_t)ck_pr_load_int(&alloc_fails) == n ? NULL : malloc(n);
}

static void open_with_failing_alloc(fx *f, test_clock *clk)
{
	durq_options o = opts_with_clock(clk);
	durq_provider *p;
	assert_int_equal(durq_sqlite_provider_new(&p, strchr(f->url, ':') + 1, &o), DURQ_OK);
	((sq_provider *)p)->alloc = maybe_malloc;
	assert_int_equal(durq_open_provider(&f->db, p, &o), DURQ_OK);
}

static void test_work_claim_out_of_memory_fails_and_leaves_items_ready(void **state)
{
	fx *f = *state;
	test_clock clk;
	open_with_failing_alloc(f, &clk);
	durq_work w[3] = {{.payload = "pay0", .payload_len = 4}, {.payload = "pay1", .payload_len = 4},
			  {.payload = "pay2", .payload_len = 4}};
	assert_int_equal(durq_work_enqueue(f->db, w, 3), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	ck_pr_store_int(&alloc_fails, 4);
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 3, 60000, 0), DURQ_ENOMEM);
	ck_pr_store_int(&alloc_fails, 0);
	assert_null(it);
	assert_int_equal(n, 0);
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 3, 60000, 0), DURQ_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(it[i].payload);
		assert_int_equal(it[i].payload_len, 4);
		assert_int_equal(it[i].attempt, 1); /* the failed claim took nothing */
		assert_int_equal(((char *)it[i].payload)[3], (char)('0' + i));
	}
	durq_work_items_free(it, n);
}

static void test_orch_claim_out_of_memory_fails_and_leaves_the_turn_ready(void **state)
{
	fx *f = *state;
	test_clock clk;
	open_with_failing_alloc(f, &clk);
	durq_message m = {.instance_id = "i", .payload = "hello", .payload_len = 5};
	assert_int_equal(durq_orch_enqueue(f->db, &m, 1), DURQ_OK);
	durq_turn *t = NULL;
	ck_pr_store_int(&alloc_fails, 5);
	assert_int_equal(durq_orch_fetch(f->db, &t, 60000, 0), DURQ_ENOMEM);
	ck_pr_store_int(&alloc_fails, 0);
	assert_null(t);
	assert_int_equal(durq_orch_fetch(f->db, &t, 60000, 0), DURQ_OK);
	assert_int_equal(t->n_messages, 1);
	assert_non_null(t->messages[0].payload);
	assert_int_equal(t->messages[0].payload_len, 5);
	assert_int_equal(t->attempt, 1);
	durq_turn_free(t);
}

/* ---- bug 5: one slow commit must not make later batches wait for stragglers ---------- */

static void test_one_slow_commit_does_not_stall_later_batches(void **state)
{
	(void)state;
	durq_committer c;
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 50; i++)
		durq_committer_note_commit(&c, 150000); /* 150 us commits */
	uint64_t before = durq_committer_straggler_wait_ns(&c);
	assert_true(before <= 80000);
	durq_committer_note_commit(&c, 400000000ull); /* one 400 ms checkpoint */
	/* before the fix: (7 * 150 us + 400 ms) / 8 / 2 = 25 ms per batch */
	assert_true(durq_committer_straggler_wait_ns(&c) <= 500000);
	assert_true(durq_committer_straggler_wait_ns(&c) <= 2 * before + 1);
	assert_true(ck_pr_load_64(&c.spin_ns) <= 1000000);
	for (int i = 0; i < 10; i++)
		durq_committer_note_commit(&c, 150000);
	assert_true(durq_committer_straggler_wait_ns(&c) <= before + before / 4);
	/* even a mean that is slow for real caps the wait */
	for (int i = 0; i < 200; i++)
		durq_committer_note_commit(&c, 50000000ull);
	assert_true(durq_committer_straggler_wait_ns(&c) <= 500000);
}

/* ---- log callback: may call durq; never under a durq lock; writes on the writer fail -- */

typedef struct log_probe {
	durq *db;
	int calls;
	int rc;
	char msg[DURQ_ERRMSG_MAX];
	const char *tag;
} log_probe;

static void log_reads_stats(void *ctx, int level, const char *tag, const char *message)
{
	log_probe *lp = ctx;
	(void)level;
	(void)message;
	if (strcmp(tag, lp->tag) != 0 || !lp->db)
		return;
	durq_stats s;
	lp->rc = durq_stats_get(lp->db, &s);
	lp->calls++;
}

static void test_log_callback_may_read_while_the_pool_replaces_a_connection(void **state)
{
	fx *f = *state;
	log_probe lp = {.tag = "POOL"};
	durq_options o = DURQ_OPTIONS_INIT;
	o.log = log_reads_stats;
	o.log_ctx = &lp;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	lp.db = f->db;
	durq_conn *c;
	assert_int_equal(durq_pool_checkout(&f->db->pool, &c), DURQ_OK);
	durq_pool_checkin(&f->db->pool, c, true); /* bad: replaced, logged at WARN "POOL" */
	assert_int_equal(lp.calls, 1);
	assert_int_equal(lp.rc, DURQ_OK); /* before the fix: deadlock on the pool mutex */
}

static void log_writes(void *ctx, int level, const char *tag, const char *message)
{
	log_probe *lp = ctx;
	(void)level;
	(void)message;
	if (strcmp(tag, lp->tag) != 0 || !lp->db)
		return;
	durq_work w = {.queue = "alerts", .payload = "x", .payload_len = 1};
	lp->rc = durq_work_enqueue(lp->db, &w, 1);
	snprintf(lp->msg, sizeof(lp->msg), "%s", durq_error_last());
	lp->calls++;
}

static void log_callback_write_on_the_writer_fails(fx *f, int mode)
{
	test_clock clk;
	log_probe lp = {.tag = "POISON"};
	durq_options o = opts_with_clock(&clk);
	o.commit_mode = mode;
	o.max_attempts = 1;
	o.log = log_writes;
	o.log_ctx = &lp;
	o.log_level = DURQ_LOG_WARN;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	lp.db = f->db;
	durq_work w = {.payload = "p", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 1000, 0), DURQ_OK);
	durq_work_items_free(it, n);
	test_clock_advance(&clk, 2000); /* lease expired: the next claim poisons it */
	/* before the fix: the committer waited for its own op (hang); per-op: a second write
	 * transaction waited busy_timeout for the lock its own thread held */
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 1000, 0), DURQ_EMPTY);
	assert_int_equal(lp.calls, 1);
	assert_int_equal(lp.rc, DURQ_EINVAL);
	assert_non_null(strstr(lp.msg, "callback"));
	durq_dead_letter *dl;
	assert_int_equal(durq_dead_list(f->db, &dl, &n, 10), DURQ_OK);
	assert_int_equal(n, 1); /* the poison path itself completed */
	durq_dead_letters_free(dl, n);
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK); /* outside: works */
}

static void test_log_callback_write_on_the_committer_fails_cleanly(void **state)
{
	log_callback_write_on_the_writer_fails(*state, DURQ_COMMIT_GROUP);
}

static void test_log_callback_write_in_a_per_op_transaction_fails_cleanly(void **state)
{
	log_callback_write_on_the_writer_fails(*state, DURQ_COMMIT_PER_OP);
}

/* ---- a second concurrent durq_close waits for the first ------------------------------ */

typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int entered, released;
} gate;

static gate the_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
static int (*real_depths)(durq_conn *, durq_queue_depths *, const char *, int64_t);

static int depths_blocking(durq_conn *c, durq_queue_depths *out, const char *q, int64_t now)
{
	pthread_mutex_lock(&the_gate.mu);
	the_gate.entered = 1;
	pthread_cond_broadcast(&the_gate.cv);
	while (!the_gate.released)
		pthread_cond_wait(&the_gate.cv, &the_gate.mu);
	pthread_mutex_unlock(&the_gate.mu);
	return real_depths(c, out, q, now);
}

typedef struct closer {
	durq *db;
	int rc;
	int returned; /* ck_pr */
} closer;

static void *run_depths(void *arg)
{
	durq_queue_depths d;
	closer *cl = arg;
	cl->rc = durq_queue_depths_get(cl->db, &d, NULL);
	ck_pr_store_int(&cl->returned, 1);
	return NULL;
}

static void *run_close(void *arg)
{
	closer *cl = arg;
	cl->rc = durq_close(cl->db);
	ck_pr_store_int(&cl->returned, 1);
	return NULL;
}

static int load_locked(durq *db, int *field)
{
	pthread_mutex_lock(&db->active_mu);
	int v = *field;
	pthread_mutex_unlock(&db->active_mu);
	return v;
}

static void test_second_close_waits_for_the_first(void **state)
{
	fx *f = *state;
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	real_depths = f->db->provider->queue_depths;
	f->db->provider->queue_depths = depths_blocking;
	closer reader = {f->db, 0, 0}, first = {f->db, -1, 0}, second = {f->db, -1, 0};
	pthread_t tr, t1, t2;
	assert_int_equal(pthread_create(&tr, NULL, run_depths, &reader), 0);
	pthread_mutex_lock(&the_gate.mu);
	while (!the_gate.entered) /* a caller is inside the API: close must wait for it */
		pthread_cond_wait(&the_gate.cv, &the_gate.mu);
	pthread_mutex_unlock(&the_gate.mu);
	assert_int_equal(pthread_create(&t1, NULL, run_close, &first), 0);
	while (load_locked(f->db, &f->db->close_state) != DURQ_CLOSE_RUNNING)
		sched_yield();
	assert_int_equal(pthread_create(&t2, NULL, run_close, &second), 0);
	/* the second closer either returns (the bug) or waits for the first (the fix) */
	while (!ck_pr_load_int(&second.returned) && load_locked(f->db, &f->db->close_waiters) == 0)
		sched_yield();
	int second_early = ck_pr_load_int(&second.returned);
	int first_early = ck_pr_load_int(&first.returned);
	pthread_mutex_lock(&the_gate.mu); /* let everyone finish before asserting */
	the_gate.released = 1;
	pthread_cond_broadcast(&the_gate.cv);
	pthread_mutex_unlock(&the_gate.mu);
	pthread_join(tr, NULL);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_false(first_early);
	assert_false(second_early); /* returned while the first close still ran */
	assert_int_equal(reader.rc, DURQ_OK);
	assert_int_equal(first.rc, DURQ_OK);
	assert_int_equal(second.rc, DURQ_OK);
	assert_int_equal(durq_close(f->db), DURQ_OK); /* a third, later close: still OK */
	f->db->provider->queue_depths = real_depths;
}

static int setup(void **state)
{
	*state = fx_new("review.db");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
		T(test_refresh_keeps_a_timer_committed_during_its_query),
		T(test_oversize_bind_fails_the_op_group),
		T(test_oversize_bind_fails_the_op_per_op),
		T(test_max_payload_over_the_provider_limit_is_refused_at_open),
		T(test_work_claim_out_of_memory_fails_and_leaves_items_ready),
		T(test_orch_claim_out_of_memory_fails_and_leaves_the_turn_ready),
		T(test_one_slow_commit_does_not_stall_later_batches),
		T(test_log_callback_may_read_while_the_pool_replaces_a_connection),
		T(test_log_callback_write_on_the_committer_fails_cleanly),
		T(test_log_callback_write_in_a_per_op_transaction_fails_cleanly),
		T(test_second_close_waits_for_the_first),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
