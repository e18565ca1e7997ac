/*
 * test_poll.c — the fallback poll for other processes' writes (design §2.7): an idle
 * long-polling fetcher costs no write transactions (it watches PRAGMA data_version and
 * claims only when another connection committed), and it still notices work committed by
 * another handle (another committer, as another process would be); lease expiry, delayed
 * completions and items of its own queue wake it.
 *
 * No latency asserts: a fetch that must be woken waits NEVER_MS (longer than the test's CTest
 * TIMEOUT), on a handle whose fallback poll can't fire within the test unless the test is
 * about it, so returning at all proves the wakeup; a missed one fails as a test timeout.
 * The other thread acts once the fetcher's first claim shows in durq_stats (it is waiting
 * or about to be, and a commit after that claim must wake it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "durq_internal.h"
#include "unit_util.h"

/* A timeout no correct run comes near (10 min > the CTest TIMEOUT of 60 s). */
#define NEVER_MS 600000

/* A handle whose fallback poll never fires within a test: only a real wakeup can help. */
static int setup_no_poll(void **state)
{
	fx *f = fx_new("nopoll.db");
	durq_options o = DURQ_OPTIONS_INIT;
	o.poll_interval_ms = NEVER_MS;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	*state = f;
	return 0;
}

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
	/* no wakeup comes from the other handle: only the poll can end this fetch */
	int rc = durq_work_fetch(f->db, &it, &n, NULL, 1, 1000, NEVER_MS);
	pthread_join(t, NULL);
	assert_int_equal(l.rc, DURQ_OK);
	assert_int_equal(rc, DURQ_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(it[0].payload, "from-afar", 9);
	durq_work_items_free(it, n);
}

/* A lease expiring wakes a long poll (no fallback poll, no reachable timeout), and not
 * before the lease expired: the second lease starts at or after the first one's end. */
static void test_expiring_lease_wakes_a_long_poll(void **state)
{
	fx *f = *state;
	durq_work w = {.payload = "x", .payload_len = 1};
	durq_work_item *it, *again;
	size_t n, m;
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 150, 0), DURQ_OK);
	assert_int_equal(durq_work_fetch(f->db, &again, &m, NULL, 1, 1000, NEVER_MS), DURQ_OK);
	assert_int_equal(again[0].id, it[0].id);
	assert_int_equal(again[0].attempt, 2);
	assert_true(again[0].lease_until_ms - 1000 >= it[0].lease_until_ms);
	durq_work_items_free(it, n);
	durq_work_items_free(again, m);
}

/* A work ack's delayed completion is a timer like any other. */
static void test_delayed_completion_wakes_an_orchestration_poll(void **state)
{
	fx *f = *state;
	durq_work w = {.instance_id = "i", .execution_id = 1, .activity_id = 1, .payload = "a",
		       .payload_len = 1};
	durq_work_item *it;
	size_t n;
	durq_turn *t;
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 60000, 0), DURQ_OK);
	durq_message done = {.instance_id = "i", .payload = "d", .payload_len = 1, .delay_ms = 150};
	int64_t before_ack = durq_now(f->db);
	assert_int_equal(durq_work_ack(f->db, it[0].id, &it[0].token, &done), DURQ_OK);
	durq_work_items_free(it, n);
	assert_int_equal(durq_orch_fetch(f->db, &t, 60000, NEVER_MS), DURQ_OK);
	assert_string_equal(t->instance_id, "i");
	assert_int_equal(t->n_messages, 1);
	assert_memory_equal(t->messages[0].payload, "d", 1);
	assert_true(t->lease_until_ms - 60000 >= before_ack + 150); /* claimed once due */
	durq_turn_free(t);
}

typedef struct qwait {
	durq *db;
	const char *queue;
	int rc;
	char payload[8];
} qwait;

static void *fetch_queue(void *arg)
{
	qwait *q = arg;
	durq_work_item *it;
	size_t n;
	q->rc = durq_work_fetch(q->db, &it, &n, q->queue, 1, 60000, NEVER_MS);
	if (q->rc == DURQ_OK) {
		snprintf(q->payload, sizeof(q->payload), "%.*s", (int)it[0].payload_len,
			 (char *)it[0].payload);
		durq_work_items_free(it, n);
	}
	return NULL;
}

/* Fetchers of different queues wait on one channel: an item for queue B must wake B's
 * fetcher even when A's fetcher is waiting too (no fallback poll), and A's fetcher keeps
 * waiting for its own queue: it gets A's item, enqueued after B's fetcher returned. */
static void test_item_wakes_its_own_queues_fetcher(void **state)
{
	fx *f = *state;
	qwait a = {f->db, "a", 99, ""}, b = {f->db, "b", 99, ""};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, fetch_queue, &a);
	pthread_create(&tb, NULL, fetch_queue, &b);
	durq_stats s;
	do /* both have made their first (empty) claim */
		sched_yield();
	while (durq_stats_get(f->db, &s) == DURQ_OK && s.ops[DURQ_OP_WORK_CLAIM] < 2);
	durq_work wb = {.queue = "b", .payload = "for-b", .payload_len = 5};
	assert_int_equal(durq_work_enqueue(f->db, &wb, 1), DURQ_OK);
	pthread_join(tb, NULL);
	assert_int_equal(b.rc, DURQ_OK);
	assert_string_equal(b.payload, "for-b");
	durq_work wa = {.queue = "a", .payload = "for-a", .payload_len = 5};
	assert_int_equal(durq_work_enqueue(f->db, &wa, 1), DURQ_OK);
	pthread_join(ta, NULL);
	assert_int_equal(a.rc, DURQ_OK);
	assert_string_equal(a.payload, "for-a");
}

typedef struct waiter {
	durq *db;
	int rc;
	atomic_int *returned;
	durq_turn *turn;
} waiter;

static void *fetch_one_item(void *arg)
{
	waiter *w = arg;
	durq_work_item *it;
	size_t n;
	w->rc = durq_work_fetch(w->db, &it, &n, "q", 1, 60000, NEVER_MS);
	if (w->rc == DURQ_OK)
		durq_work_items_free(it, n);
	atomic_fetch_add(w->returned, 1);
	return NULL;
}

static void *fetch_one_turn(void *arg)
{
	waiter *w = arg;
	w->rc = durq_orch_fetch(w->db, &w->turn, 60000, NEVER_MS);
	atomic_fetch_add(w->returned, 1);
	return NULL;
}

static uint64_t claims(durq *db, int kind)
{
	durq_stats s;
	assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
	return s.ops[kind];
}

/* Start n fetchers and return once each has made its first (empty) claim. */
static void start_waiters(fx *f, waiter *w, pthread_t *th, int n, atomic_int *returned,
			  void *(*fn)(void *), int kind)
{
	for (int i = 0; i < n; i++) {
		w[i] = (waiter){.db = f->db, .rc = 99, .returned = returned};
		assert_int_equal(pthread_create(&th[i], NULL, fn, &w[i]), 0);
	}
	while (claims(f->db, kind) < (uint64_t)n)
		sched_yield();
}

/* Eight fetchers of one queue wait; one item wakes them all (they share a channel) but
 * only one claims: a fetcher claims again only with credit for something made fetchable,
 * so an item costs one claim, not one per waiter. Then seven items in one commit: seven
 * claims, each successful. 8 first claims + 1 + 7, exactly (no fallback poll fires). */
static void test_one_item_costs_one_claim_not_one_per_waiter(void **state)
{
	fx *f = *state;
	enum { N = 8 };
	waiter w[N];
	pthread_t th[N];
	atomic_int returned = 0;
	start_waiters(f, w, th, N, &returned, fetch_one_item, DURQ_OP_WORK_CLAIM);
	durq_work one = {.queue = "q", .payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(f->db, &one, 1), DURQ_OK);
	while (atomic_load(&returned) < 1)
		sched_yield();
	durq_work seven[N - 1];
	for (int i = 0; i < N - 1; i++)
		seven[i] = one;
	assert_int_equal(durq_work_enqueue(f->db, seven, N - 1), DURQ_OK);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, DURQ_OK);
	}
	assert_int_equal(claims(f->db, DURQ_OP_WORK_CLAIM), N + 1 + (N - 1));
}

/* Four orchestration fetchers wait; five messages for one instance in one commit are one
 * turn, so they wake one fetcher and cost one claim (it gets all five); then messages for
 * three other instances: three claims. 4 + 1 + 3 claims, exactly. */
static void test_messages_for_one_instance_wake_one_orchestration_fetcher(void **state)
{
	fx *f = *state;
	enum { N = 4 };
	waiter w[N];
	pthread_t th[N];
	atomic_int returned = 0;
	start_waiters(f, w, th, N, &returned, fetch_one_turn, DURQ_OP_ORCH_CLAIM);
	durq_message five[5];
	for (int i = 0; i < 5; i++)
		five[i] = (durq_message){.instance_id = "i1", .kind = 1, .payload = "m",
					 .payload_len = 1};
	assert_int_equal(durq_orch_enqueue(f->db, five, 5), DURQ_OK);
	while (atomic_load(&returned) < 1)
		sched_yield();
	durq_message three[3] = {{.instance_id = "i2", .kind = 1}, {.instance_id = "i3", .kind = 1},
				 {.instance_id = "i4", .kind = 1}};
	assert_int_equal(durq_orch_enqueue(f->db, three, 3), DURQ_OK);
	size_t got_five = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, DURQ_OK);
		if (w[i].turn->n_messages == 5)
			got_five++;
		durq_turn_free(w[i].turn);
	}
	assert_int_equal(got_five, 1);
	assert_int_equal(claims(f->db, DURQ_OP_ORCH_CLAIM), N + 1 + 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_idle_long_poll_makes_no_write_transactions, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_other_handles_commit_is_noticed_within_polls, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_expiring_lease_wakes_a_long_poll, setup_no_poll, fx_teardown),
		cmocka_unit_test_setup_teardown(test_delayed_completion_wakes_an_orchestration_poll, setup_no_poll, fx_teardown),
		cmocka_unit_test_setup_teardown(test_item_wakes_its_own_queues_fetcher, setup_no_poll, fx_teardown),
		cmocka_unit_test_setup_teardown(test_one_item_costs_one_claim_not_one_per_waiter, setup_no_poll, fx_teardown),
		cmocka_unit_test_setup_teardown(test_messages_for_one_instance_wake_one_orchestration_fetcher, setup_no_poll, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
