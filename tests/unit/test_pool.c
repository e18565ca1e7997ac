/*
 * test_pool.c — the read pool: size honoured, checkout waits then times out with EBUSY,
 * a checkin wakes a waiter, counters (checkouts, waits, in use), a connection returned
 * with an open transaction is replaced. Also the clock and token helpers.
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
#include "unit_util.h"

static int setup(void **state)
{
	fx *f = fx_new("pool.db");
	durq_options o = DURQ_OPTIONS_INIT;
	o.pool_size = 5;
	o.pool_timeout_ms = 50;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	*state = f;
	return 0;
}

static void test_checkout_times_out_when_all_in_use(void **state)
{
	fx *f = *state;
	durq_conn *c[5], *extra = NULL;
	durq_stats s0;
	durq_stats_snapshot(&f->db->counters, &s0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(durq_pool_checkout(&f->db->pool, &c[i]), DURQ_OK);
	durq_stats s;
	durq_stats_snapshot(&f->db->counters, &s);
	assert_int_equal(s.pool_in_use, 5);
	assert_int_equal(durq_pool_checkout(&f->db->pool, &extra), DURQ_EBUSY);
	assert_null(extra);
	assert_non_null(strstr(durq_error_last(), "pool_size 5"));
	durq_stats_snapshot(&f->db->counters, &s);
	assert_int_equal(s.pool_waits, 1);
	assert_true(s.pool_wait_ns >= 50ull * 1000000ull);
	for (int i = 0; i < 5; i++)
		durq_pool_checkin(&f->db->pool, c[i], false);
	durq_stats_snapshot(&f->db->counters, &s);
	assert_int_equal(s.pool_in_use, 0);
	assert_int_equal(s.pool_checkouts - s0.pool_checkouts, 5);
}

typedef struct waiter {
	durq_pool *pool;
	int started;
	int rc;
	durq_conn *got;
} waiter;

static void *wait_thread(void *arg)
{
	waiter *w = arg;
	ck_pr_store_int(&w->started, 1);
	w->rc = durq_pool_checkout(w->pool, &w->got);
	return NULL;
}

static void test_checkin_wakes_a_waiter(void **state)
{
	fx *f = *state;
	durq_conn *c[5];
	f->db->opts.pool_timeout_ms = 60000; /* the waiter must be woken, not time out */
	for (int i = 0; i < 5; i++)
		assert_int_equal(durq_pool_checkout(&f->db->pool, &c[i]), DURQ_OK);
	waiter w = {&f->db->pool, 0, 99, NULL};
	pthread_t t;
	pthread_create(&t, NULL, wait_thread, &w);
	durq_stats s;
	do { /* until the waiter is really blocked in the pool */
		sched_yield();
		durq_stats_snapshot(&f->db->counters, &s);
	} while (s.pool_waits < 1);
	durq_pool_checkin(&f->db->pool, c[0], false);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, DURQ_OK);
	assert_ptr_equal(w.got, c[0]);
	durq_pool_checkin(&f->db->pool, w.got, false);
	for (int i = 1; i < 5; i++)
		durq_pool_checkin(&f->db->pool, c[i], false);
}

static void test_connection_left_in_transaction_is_replaced(void **state)
{
	fx *f = *state;
	durq_conn *c;
	assert_int_equal(durq_pool_checkout(&f->db->pool, &c), DURQ_OK);
	assert_int_equal(sqlite3_exec(sq_conn_of(c)->db, "BEGIN; SELECT count(*) FROM work_queue;", NULL, NULL,
				      NULL), SQLITE_OK);
	durq_pool_checkin(&f->db->pool, c, false);
	/* every connection in the pool is now outside any transaction */
	durq_conn *all[5];
	for (int i = 0; i < 5; i++) {
		assert_int_equal(durq_pool_checkout(&f->db->pool, &all[i]), DURQ_OK);
		assert_true(sqlite3_get_autocommit(sq_conn_of(all[i])->db));
	}
	for (int i = 0; i < 5; i++)
		durq_pool_checkin(&f->db->pool, all[i], false);
}

static void test_reads_work_with_every_connection_busy_elsewhere(void **state)
{
	fx *f = *state;
	durq_conn *c[5];
	for (int i = 0; i < 5; i++)
		assert_int_equal(durq_pool_checkout(&f->db->pool, &c[i]), DURQ_OK);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_EBUSY);
	assert_true(durq_error_retryable(DURQ_EBUSY));
	for (int i = 0; i < 5; i++)
		durq_pool_checkin(&f->db->pool, c[i], false);
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
}

static int64_t fixed_clock(void *ctx)
{
	return test_clock_read(ctx);
}

static void test_lease_uses_injected_clock(void **state)
{
	(void)state;
	test_clock clk = {1700000000000};
	durq_options o = DURQ_OPTIONS_INIT;
	o.clock = fixed_clock;
	o.clock_ctx = &clk;
	durq *db;
	assert_int_equal(durq_open(&db, "sqlite::memory:", &o), DURQ_OK);
	assert_int_equal(durq_now(db), 1700000000000);
	durq_work w = {.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(db, &w, 1), DURQ_OK);
	test_clock_advance(&clk, 5);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 1, 1000, 0), DURQ_OK);
	assert_int_equal(it[0].lease_until_ms, 1700000000005 + 1000);
	test_clock_advance(&clk, 1000); /* expired exactly at lease_until */
	assert_int_equal(durq_work_ack(db, it[0].id, &it[0].token, NULL), DURQ_ELOCKLOST);
	durq_work_items_free(it, n);
	durq_free(db);
}

static void test_tokens_are_random_128_bit(void **state)
{
	(void)state;
	durq_token a, b;
	assert_int_equal(durq_token_random(&a), DURQ_OK);
	assert_int_equal(durq_token_random(&b), DURQ_OK);
	assert_memory_not_equal(a.bytes, b.bytes, sizeof(a.bytes));
	assert_int_equal(sizeof(a.bytes), 16);
}

static void test_monotonic_clock_advances(void **state)
{
	(void)state;
	uint64_t a = durq_clock_mono_ns(), b = durq_clock_mono_ns();
	assert_true(b >= a);
	assert_true(durq_clock_wall_ms(NULL) > 1600000000000LL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkout_times_out_when_all_in_use, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_checkin_wakes_a_waiter, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_connection_left_in_transaction_is_replaced, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reads_work_with_every_connection_busy_elsewhere, setup, fx_teardown),
		cmocka_unit_test(test_lease_uses_injected_clock),
		cmocka_unit_test(test_tokens_are_random_128_bit),
		cmocka_unit_test(test_monotonic_clock_advances),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
