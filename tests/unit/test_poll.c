/*
 * test_poll.c — the fallback poll for other processes' writes (design §2.7): an idle
 * long-polling fetcher costs no write transactions (it watches PRAGMA data_version and
 * claims only when another connection committed), and it still notices work committed by
 * another handle (another committer, as another process would be) within a poll interval.
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
	fx *f = fx_new("poll.db");
	durq_options o = DURQ_OPTIONS_INIT;
	o.poll_interval_ms = 5;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	*state = f;
	return 0;
}

static void test_idle_long_poll_makes_no_write_transactions(void **state)
{
	fx *f = *state;
	durq_stats a, b;
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_stats_get(f->db, &a), DURQ_OK);
	/* 300 ms at a 5 ms poll interval: ~60 polls */
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 1000, 300), DURQ_EMPTY);
	assert_int_equal(durq_stats_get(f->db, &b), DURQ_OK);
	/* the first claim and the last one at the deadline; no claim per poll */
	assert_true(b.ops[DURQ_OP_WORK_CLAIM] - a.ops[DURQ_OP_WORK_CLAIM] <= 3);
}

typedef struct late {
	const char *url;
	durq *fetcher;
	int rc;
} late;

static void *enqueue_from_other_handle(void *arg)
{
	late *l = arg;
	durq *other;
	durq_stats s;
	/* once the fetcher's first claim came back empty it is (about to be) waiting */
	while (durq_stats_get(l->fetcher, &s) == DURQ_OK && s.ops[DURQ_OP_WORK_CLAIM] < 1)
		sched_yield();
	l->rc = durq_open(&other, l->url, NULL);
	if (l->rc == DURQ_OK) {
		durq_work w = {.payload = "from-afar", .payload_len = 9};
		l->rc = durq_work_enqueue(other, &w, 1);
		durq_free(other);
	}
	return NULL;
}

static void test_other_handles_commit_is_noticed_within_polls(void **state)
{
	fx *f = *state;
	late l = {f->url, f->db, 99};
	pthread_t t;
	durq_work_item *it;
	size_t n;
	pthread_create(&t, NULL, enqueue_from_other_handle, &l);
	uint64_t t0 = durq_clock_mono_ns();
	int rc = durq_work_fetch(f->db, &it, &n, NULL, 1, 1000, 5000);
	uint64_t waited_ms = (durq_clock_mono_ns() - t0) / 1000000;
	pthread_join(t, NULL);
	assert_int_equal(l.rc, DURQ_OK);
	assert_int_equal(rc, DURQ_OK);
	assert_memory_equal(it[0].payload, "from-afar", 9);
	assert_true(waited_ms < 2000); /* noticed by polling, long before the 5 s timeout */
	durq_work_items_free(it, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_idle_long_poll_makes_no_write_transactions, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_other_handles_commit_is_noticed_within_polls, setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
