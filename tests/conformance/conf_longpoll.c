/*
 * conf_longpoll.c — design.md §2.7: fetch never sleep-polls. A short poll returns at once;
 * a long poll blocks until work is committed in this process, the earliest timer is due, or
 * the timeout passes.
 *
 * Deterministic: nothing here sleeps to order threads and nothing asserts a latency. A
 * thread that must act while a fetcher waits first sees the fetcher's claim in durq_stats
 * (conf_wait_ops): from then on a commit must wake it. Fetches that must be woken wait
 * CONF_NEVER_MS on a handle whose fallback poll is CONF_NEVER_MS too, so returning at all
 * proves the wakeup (a missed one shows as a test timeout, whatever the machine's speed).
 * The only clock checks are lower bounds: a wait is never shorter than its timeout, a timer
 * is never delivered before it is due; a slow machine only makes those longer.
 */
#include "conf_factory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

/* A fresh context on which only a real wakeup ends a CONF_NEVER_MS fetch. */
static conf_ctx *no_poll_ctx(void **state, int wall_clock)
{
	conf_opts o = {.wall_clock = wall_clock, .poll_interval_ms = CONF_NEVER_MS};
	return conf_use(state, &o);
}

static uint64_t ops_now(durq *db, int kind)
{
	durq_stats s;
	assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
	return s.ops[kind];
}

/* Short polls never wait: with no fallback poll and no writer, a wait would never end. Each
 * makes exactly one claim and returns EMPTY. */
static void test_short_poll_returns_empty_at_once(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 0);
	for (int round = 0; round < 5; round++) {
		durq_work_item *it = NULL;
		size_t n = 7;
		durq_turn *t = NULL;
		uint64_t wc = ops_now(c->db, DURQ_OP_WORK_CLAIM);
		uint64_t oc = ops_now(c->db, DURQ_OP_ORCH_CLAIM);
		assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, 0), DURQ_EMPTY);
		assert_int_equal(n, 0);
		assert_int_equal(durq_orch_fetch(c->db, &t, 1000, 0), DURQ_EMPTY);
		assert_null(t);
		assert_int_equal(ops_now(c->db, DURQ_OP_WORK_CLAIM), wc + 1);
		assert_int_equal(ops_now(c->db, DURQ_OP_ORCH_CLAIM), oc + 1);
	}
}

/* Lower bound only: returning before the timeout is the bug; returning late is the machine.
 * (1 ms of slack: conf_mono_ms truncates both readings to whole ms.) */
static void assert_waited_at_least(int64_t t0, int timeout_ms)
{
	int64_t el = conf_mono_ms() - t0;
	if (el < timeout_ms - 1)
		fail_msg("long poll of %d ms returned EMPTY after %lld ms", timeout_ms,
			 (long long)el);
}

static void test_long_poll_waits_for_its_timeout(void **state)
{
	conf_ctx *c = *state;
	durq_work_item *it = NULL;
	size_t n = 0;
	int64_t t0 = conf_mono_ms();
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, 100), DURQ_EMPTY);
	assert_waited_at_least(t0, 100);
}

static void test_orch_long_poll_waits_for_its_timeout(void **state)
{
	conf_ctx *c = *state;
	durq_turn *t = NULL;
	int64_t t0 = conf_mono_ms();
	assert_int_equal(durq_orch_fetch(c->db, &t, 1000, 80), DURQ_EMPTY);
	assert_waited_at_least(t0, 80);
}

enum bg_what { BG_WORK, BG_ORCH, BG_ADVANCE, BG_WORK_OTHER_QUEUE, BG_ACK_COMPLETION };

/* A writer that acts once the main thread's fetch has made its first claim. */
typedef struct bg {
	conf_ctx *c;
	enum bg_what what;
	int claim_kind;        /* DURQ_OP_WORK_CLAIM or DURQ_OP_ORCH_CLAIM */
	uint64_t claims0;      /* claims of that kind before the fetch */
	_Atomic int fetch_done; /* set by the main thread after its fetch returned */
	int64_t item_id;
	durq_token token;
	int rc;
} bg;

static void *bg_thread(void *p)
{
	bg *b = p;
	conf_wait_ops(b->c->db, b->claim_kind, b->claims0 + 1, &b->fetch_done);
	switch (b->what) {
	case BG_WORK:
		b->rc = durq_work_enqueue(b->c->db, &(durq_work){.payload = "w", .payload_len = 1}, 1);
		break;
	case BG_ORCH:
		b->rc = durq_orch_enqueue(b->c->db,
					  &(durq_message){.instance_id = "i1", .kind = 1}, 1);
		break;
	case BG_ADVANCE:
		conf_advance(b->c, 50); /* also calls durq_wake */
		b->rc = 0;
		break;
	case BG_WORK_OTHER_QUEUE:
		b->rc = durq_work_enqueue(b->c->db,
					  &(durq_work){.queue = "other", .payload = "w", .payload_len = 1},
					  1);
		break;
	case BG_ACK_COMPLETION: {
		durq_message done = {.instance_id = "i1", .kind = 2};
		b->rc = durq_work_ack(b->c->db, b->item_id, &b->token, &done);
		break;
	}
	}
	return NULL;
}

static void bg_start(bg *b, pthread_t *th, conf_ctx *c, enum bg_what what, int claim_kind)
{
	b->c = c;
	b->what = what;
	b->claim_kind = claim_kind;
	b->claims0 = ops_now(c->db, claim_kind);
	atomic_store(&b->fetch_done, 0);
	assert_int_equal(pthread_create(th, NULL, bg_thread, b), 0);
}

static void bg_join(bg *b, pthread_t th)
{
	atomic_store(&b->fetch_done, 1);
	pthread_join(th, NULL);
	assert_int_equal(b->rc, 0);
}

/* Long-poll a turn (CONF_NEVER_MS) while a background thread does `what`; the fetch must
 * return the turn. */
static durq_turn *orch_poll_while(conf_ctx *c, bg *b, enum bg_what what)
{
	pthread_t th;
	bg_start(b, &th, c, what, DURQ_OP_ORCH_CLAIM);
	durq_turn *t = NULL;
	int rc = durq_orch_fetch(c->db, &t, 1000, CONF_NEVER_MS);
	bg_join(b, th);
	assert_int_equal(rc, DURQ_OK);
	assert_non_null(t);
	return t;
}

static void test_work_long_poll_wakes_on_enqueue(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 0);
	bg b = {0};
	pthread_t th;
	bg_start(&b, &th, c, BG_WORK, DURQ_OP_WORK_CLAIM);
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, CONF_NEVER_MS);
	bg_join(&b, th);
	assert_int_equal(rc, DURQ_OK);
	assert_int_equal(n, 1);
	assert_payload(it[0].payload, it[0].payload_len, "w");
	durq_work_items_free(it, n);
}

static void test_orch_long_poll_wakes_on_enqueue(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 0);
	bg b = {0};
	durq_turn *t = orch_poll_while(c, &b, BG_ORCH);
	assert_string_equal(t->instance_id, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 1);
	durq_turn_free(t);
}

static void test_orch_long_poll_wakes_on_work_ack_completion(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 0);
	assert_int_equal(conf_activity(c, "i1", 1, 1, "a"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	bg b = {0};
	b.item_id = it->id;
	b.token = it->token;
	durq_work_items_free(it, 1);
	durq_turn *t = orch_poll_while(c, &b, BG_ACK_COMPLETION);
	assert_string_equal(t->instance_id, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 2); /* the completion the ack carried */
	durq_turn_free(t);
}

/* An enqueue on another queue, committed while this fetch waits, neither ends the wait early
 * nor is returned by it. */
static void test_long_poll_ignores_enqueue_on_other_queue(void **state)
{
	conf_ctx *c = *state;
	bg b = {0};
	pthread_t th;
	bg_start(&b, &th, c, BG_WORK_OTHER_QUEUE, DURQ_OP_WORK_CLAIM);
	durq_work_item *it = NULL;
	size_t n = 0;
	int64_t t0 = conf_mono_ms();
	int rc = durq_work_fetch(c->db, &it, &n, "mine", 1, 1000, 200);
	assert_int_equal(rc, DURQ_EMPTY);
	assert_waited_at_least(t0, 200);
	bg_join(&b, th);
	assert_int_equal(conf_fetch1(c, &it, "other", 0), DURQ_OK);
	durq_work_items_free(it, 1);
}

/* Injected clock: the timer becomes due when another thread advances the clock and calls
 * durq_wake (what a test harness or a simulated-time runtime does). */
static void test_long_poll_wakes_when_injected_clock_makes_timer_due(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 0);
	assert_int_equal(conf_msg_at(c, "i1", 1, "timer", CONF_T0 + 50, 0), DURQ_OK);
	bg b = {0};
	durq_turn *t = orch_poll_while(c, &b, BG_ADVANCE);
	assert_string_equal(t->instance_id, "i1");
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "timer");
	assert_true(t->lease_until_ms - 1000 >= CONF_T0 + 50); /* claimed once due, not before */
	durq_turn_free(t);
}

/* Wall clock: nobody wakes the fetcher and there is no fallback poll; it must compute the
 * earliest due timer itself. Claimed (lease_until_ms = claim time + lease) once due. */
static void test_long_poll_wakes_for_timer_due_inside_timeout(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 1);
	int64_t before = durq_now(c->db);
	assert_int_equal(conf_msg_at(c, "i1", 1, "timer", 0, 60), DURQ_OK);
	durq_turn *t = NULL;
	assert_int_equal(durq_orch_fetch(c->db, &t, 1000, CONF_NEVER_MS), DURQ_OK);
	assert_true(t->lease_until_ms - 1000 >= before + 60); /* claimed once due, not before */
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "timer");
	durq_turn_free(t);
}

static void test_work_long_poll_wakes_for_delayed_item(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 1);
	int64_t before = durq_now(c->db);
	assert_int_equal(conf_work(c, NULL, "later", 0, 50), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, CONF_NEVER_MS), DURQ_OK);
	assert_int_equal(n, 1);
	assert_true(it[0].lease_until_ms - 1000 >= before + 50); /* claimed once due */
	assert_payload(it[0].payload, it[0].payload_len, "later");
	durq_work_items_free(it, n);
}

static void test_wall_clock_timer_not_delivered_before_due(void **state)
{
	conf_opts o = {.wall_clock = 1};
	conf_ctx *c = conf_use(state, &o);
	int64_t now = durq_now(c->db);
	assert_int_equal(conf_msg_at(c, "i1", 1, "timer", now + 10000, 0), DURQ_OK);
	durq_turn *t = NULL;
	assert_int_equal(durq_orch_fetch(c->db, &t, 1000, 60), DURQ_EMPTY);
}

typedef struct other_writer {
	durq *fetcher;  /* the handle whose first claim the writer waits for */
	uint64_t claims0;
	_Atomic int fetch_done;
	durq *db;       /* the second handle it writes with */
	int rc;
} other_writer;

static void *enqueue_on_other_handle(void *p)
{
	other_writer *w = p;
	conf_wait_ops(w->fetcher, DURQ_OP_WORK_CLAIM, w->claims0 + 1, &w->fetch_done);
	durq_work item = {.queue = "x", .payload = "o", .payload_len = 1};
	w->rc = durq_work_enqueue(w->db, &item, 1);
	return NULL;
}

/* design.md §2.7: writes of another handle/process are noticed by the fallback poll
 * (poll_interval_ms, default 100): with a fetch timeout it can't reach, the item arrives only
 * if the poll noticed it. sqlite-memory handles are private databases: there the same long
 * poll must simply time out (documented in-memory semantics). */
static void test_long_poll_notices_other_handles_commit(void **state)
{
	conf_ctx *c = *state;
	other_writer w = {.fetcher = c->db};
	assert_int_equal(conf_open_second(c, &w.db), DURQ_OK);
	w.claims0 = ops_now(c->db, DURQ_OP_WORK_CLAIM);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, enqueue_on_other_handle, &w), 0);
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, "x", 1, 1000, c->durable ? CONF_NEVER_MS : 100);
	atomic_store(&w.fetch_done, 1);
	pthread_join(th, NULL);
	durq_free(w.db);
	assert_int_equal(w.rc, DURQ_OK);
	if (!c->durable) {
		assert_int_equal(rc, DURQ_EMPTY);
		return;
	}
	assert_int_equal(rc, DURQ_OK);
	assert_int_equal(n, 1);
	assert_payload(it[0].payload, it[0].payload_len, "o");
	durq_work_items_free(it, n);
}

typedef struct closer {
	durq *db;
	_Atomic int done;
	int rc;
} closer;

static void *blocked_fetch(void *p)
{
	closer *cl = p;
	durq_work_item *it = NULL;
	size_t n = 0;
	cl->rc = durq_work_fetch(cl->db, &it, &n, NULL, 1, 1000, CONF_NEVER_MS);
	if (cl->rc == DURQ_OK)
		durq_work_items_free(it, n);
	atomic_store(&cl->done, 1);
	return NULL;
}

/* durq.h: "Fetchers blocked in a long poll return DURQ_ECLOSED". The fetcher has claimed
 * (it is inside the call) before close; with no fallback poll and a timeout it can't reach,
 * only close's wakeup lets it (and so close, which waits for callers to leave) return. */
static void test_close_wakes_blocked_fetchers(void **state)
{
	conf_ctx *c = no_poll_ctx(state, 0);
	closer cl = {.db = c->db};
	uint64_t claims0 = ops_now(c->db, DURQ_OP_WORK_CLAIM);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, blocked_fetch, &cl), 0);
	assert_true(conf_wait_ops(c->db, DURQ_OP_WORK_CLAIM, claims0 + 1, &cl.done));
	/* a commit on the other channel first: it must not end the work fetch, and while it runs
	 * the fetcher usually gets into its wait, so close usually finds it there (either order
	 * passes: this orders nothing) */
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	int rc = durq_close(c->db);
	pthread_join(th, NULL);
	assert_int_equal(rc, DURQ_OK);
	assert_int_equal(cl.rc, DURQ_ECLOSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_short_poll_returns_empty_at_once),
		T(test_long_poll_waits_for_its_timeout),
		T(test_orch_long_poll_waits_for_its_timeout),
		T(test_work_long_poll_wakes_on_enqueue),
		T(test_orch_long_poll_wakes_on_enqueue),
		T(test_orch_long_poll_wakes_on_work_ack_completion),
		T(test_long_poll_ignores_enqueue_on_other_queue),
		T(test_long_poll_wakes_when_injected_clock_makes_timer_due),
		T(test_long_poll_wakes_for_timer_due_inside_timeout),
		T(test_work_long_poll_wakes_for_delayed_item),
		T(test_wall_clock_timer_not_delivered_before_due),
		T(test_long_poll_notices_other_handles_commit),
		T(test_close_wakes_blocked_fetchers),
	};
	return cmocka_run_group_tests_name("conf_longpoll", tests, conf_group_setup,
					   conf_group_teardown);
}
