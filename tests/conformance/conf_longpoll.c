/*
 * conf_longpoll.c — design.md §2.7: fetch never sleep-polls. A short poll returns at once;
 * a long poll blocks until work is committed in this process, the earliest timer is due, or
 * the timeout passes. The only file of the suite that waits in real time (≤ ~100 ms each).
 */
#include "conf_factory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

/* Generous upper bound for "woke promptly" on a loaded CI machine; the waits themselves are
 * ~20-60 ms, and a missed wakeup shows up as the full timeout (1000 ms). */
#define PROMPT_MS 400

static void test_short_poll_returns_empty_at_once(void **state)
{
	conf_ctx *c = *state;
	durq_work_item *it = NULL;
	size_t n = 7;
	durq_turn *t = NULL;
	/* best of 5: a short poll that waits does so every time; a scheduler or sanitizer stall
	 * does not (the first round also absorbs connection warm-up) */
	int64_t best = INT64_MAX;
	for (int round = 0; round < 5; round++) {
		n = 7;
		int64_t t0 = conf_mono_ms();
		assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, 0), DURQ_EMPTY);
		assert_int_equal(n, 0);
		assert_int_equal(durq_orch_fetch(c->db, &t, 1000, 0), DURQ_EMPTY);
		assert_null(t);
		int64_t el = conf_mono_ms() - t0;
		if (el < best)
			best = el;
	}
	if (best >= 50) /* a poll interval (100 ms) or any real wait would exceed this */
		fail_msg("two short polls took at least %lld ms", (long long)best);
}

static void test_long_poll_waits_for_its_timeout(void **state)
{
	conf_ctx *c = *state;
	durq_work_item *it = NULL;
	size_t n = 0;
	int64_t t0 = conf_mono_ms();
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, 100), DURQ_EMPTY);
	int64_t el = conf_mono_ms() - t0;
	if (el < 95 || el > 100 + PROMPT_MS)
		fail_msg("work long poll of 100 ms returned after %lld ms", (long long)el);
}

static void test_orch_long_poll_waits_for_its_timeout(void **state)
{
	conf_ctx *c = *state;
	durq_turn *t = NULL;
	int64_t t0 = conf_mono_ms();
	assert_int_equal(durq_orch_fetch(c->db, &t, 1000, 80), DURQ_EMPTY);
	int64_t el = conf_mono_ms() - t0;
	if (el < 75 || el > 80 + PROMPT_MS)
		fail_msg("orch long poll of 80 ms returned after %lld ms", (long long)el);
}

typedef struct bg {
	conf_ctx *c;
	pthread_barrier_t bar;
	int what; /* 0 work enqueue, 1 orch enqueue, 2 advance clock, 3 work on other queue,
	             4 work ack with completion */
	int delay_ms;
	int64_t item_id;
	durq_token token;
	int rc;
} bg;

static void *bg_thread(void *p)
{
	bg *b = p;
	pthread_barrier_wait(&b->bar);
	conf_sleep_ms(b->delay_ms); /* let the main thread block first; any timing passes */
	switch (b->what) {
	case 0:
		b->rc = durq_work_enqueue(b->c->db, &(durq_work){.payload = "w", .payload_len = 1}, 1);
		break;
	case 1:
		b->rc = durq_orch_enqueue(b->c->db,
					  &(durq_message){.instance_id = "i1", .kind = 1}, 1);
		break;
	case 2:
		conf_advance(b->c, 50); /* also calls durq_wake */
		b->rc = 0;
		break;
	case 3:
		b->rc = durq_work_enqueue(b->c->db,
					  &(durq_work){.queue = "other", .payload = "w", .payload_len = 1},
					  1);
		break;
	case 4: {
		durq_message done = {.instance_id = "i1", .kind = 2};
		b->rc = durq_work_ack(b->c->db, b->item_id, &b->token, &done);
		break;
	}
	}
	return NULL;
}

static void bg_start(bg *b, pthread_t *th, conf_ctx *c, int what, int delay)
{
	b->c = c;
	b->what = what;
	b->delay_ms = delay;
	pthread_barrier_init(&b->bar, NULL, 2);
	pthread_create(th, NULL, bg_thread, b);
	pthread_barrier_wait(&b->bar);
}

static void bg_join(bg *b, pthread_t th)
{
	pthread_join(th, NULL);
	pthread_barrier_destroy(&b->bar);
	assert_int_equal(b->rc, 0);
}

/* Long-poll a turn (timeout 1 s) while a background thread does `what` after `delay` ms;
 * the fetch must succeed. *el = how long it took. */
static durq_turn *orch_poll_while(conf_ctx *c, bg *b, int what, int delay, int64_t *el)
{
	pthread_t th;
	bg_start(b, &th, c, what, delay);
	int64_t t0 = conf_mono_ms();
	durq_turn *t = NULL;
	int rc = durq_orch_fetch(c->db, &t, 1000, 1000);
	*el = conf_mono_ms() - t0;
	bg_join(b, th);
	assert_int_equal(rc, DURQ_OK);
	return t;
}

static void test_work_long_poll_wakes_on_enqueue(void **state)
{
	conf_ctx *c = *state;
	bg b = {0};
	pthread_t th;
	bg_start(&b, &th, c, 0, 20);
	int64_t t0 = conf_mono_ms();
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, 1000);
	int64_t el = conf_mono_ms() - t0;
	bg_join(&b, th);
	assert_int_equal(rc, DURQ_OK);
	assert_int_equal(n, 1);
	durq_work_items_free(it, n);
	if (el > PROMPT_MS)
		fail_msg("long poll woke after %lld ms (enqueue at ~20 ms)", (long long)el);
}

static void test_orch_long_poll_wakes_on_enqueue(void **state)
{
	conf_ctx *c = *state;
	bg b = {0};
	int64_t el;
	durq_turn *t = orch_poll_while(c, &b, 1, 20, &el);
	assert_string_equal(t->instance_id, "i1");
	durq_turn_free(t);
	if (el > PROMPT_MS)
		fail_msg("long poll woke after %lld ms (enqueue at ~20 ms)", (long long)el);
}

static void test_orch_long_poll_wakes_on_work_ack_completion(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "a"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	bg b = {0};
	b.item_id = it->id;
	b.token = it->token;
	durq_work_items_free(it, 1);
	int64_t el;
	durq_turn_free(orch_poll_while(c, &b, 4, 20, &el));
	if (el > PROMPT_MS)
		fail_msg("long poll woke after %lld ms (ack at ~20 ms)", (long long)el);
}

static void test_long_poll_ignores_enqueue_on_other_queue(void **state)
{
	conf_ctx *c = *state;
	bg b = {0};
	pthread_t th;
	bg_start(&b, &th, c, 3, 10);
	int64_t t0 = conf_mono_ms();
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, "mine", 1, 1000, 100);
	int64_t el = conf_mono_ms() - t0;
	bg_join(&b, th);
	assert_int_equal(rc, DURQ_EMPTY);
	assert_true(el >= 95);
	assert_int_equal(conf_fetch1(c, &it, "other", 0), DURQ_OK);
	durq_work_items_free(it, 1);
}

/* Injected clock: the timer becomes due when another thread advances the clock and calls
 * durq_wake (what a test harness or a simulated-time runtime does). */
static void test_long_poll_wakes_when_injected_clock_makes_timer_due(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg_at(c, "i1", 1, "timer", CONF_T0 + 50, 0), DURQ_OK);
	bg b = {0};
	int64_t el;
	durq_turn_free(orch_poll_while(c, &b, 2, 20, &el));
	if (el > PROMPT_MS)
		fail_msg("long poll woke after %lld ms (clock advanced at ~20 ms)", (long long)el);
}

/* Wall clock: nobody wakes the fetcher; it must compute the earliest due timer itself. */
static void test_long_poll_wakes_for_timer_due_inside_timeout(void **state)
{
	conf_opts o = {.wall_clock = 1};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_msg_at(c, "i1", 1, "timer", 0, 60), DURQ_OK);
	int64_t t0 = conf_mono_ms();
	durq_turn *t = NULL;
	int rc = durq_orch_fetch(c->db, &t, 1000, 1000);
	int64_t el = conf_mono_ms() - t0;
	assert_int_equal(rc, DURQ_OK);
	durq_turn_free(t);
	if (el < 40 || el > 60 + PROMPT_MS)
		fail_msg("timer due in 60 ms woke the long poll after %lld ms", (long long)el);
}

static void test_work_long_poll_wakes_for_delayed_item(void **state)
{
	conf_opts o = {.wall_clock = 1};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_work(c, NULL, "later", 0, 50), DURQ_OK);
	int64_t t0 = conf_mono_ms();
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, NULL, 1, 1000, 1000);
	int64_t el = conf_mono_ms() - t0;
	assert_int_equal(rc, DURQ_OK);
	durq_work_items_free(it, n);
	if (el < 30 || el > 50 + PROMPT_MS)
		fail_msg("item due in 50 ms woke the long poll after %lld ms", (long long)el);
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
	durq *db;
	pthread_barrier_t bar;
	int rc;
} other_writer;

static void *enqueue_on_other_handle(void *p)
{
	other_writer *w = p;
	pthread_barrier_wait(&w->bar);
	conf_sleep_ms(20);
	durq_work item = {.queue = "x", .payload = "o", .payload_len = 1};
	w->rc = durq_work_enqueue(w->db, &item, 1);
	return NULL;
}

/* design.md §2.7: writes of another handle/process are noticed by a bounded fallback poll
 * (poll_interval_ms, default 100). sqlite-memory handles are private databases: there the
 * same long poll must simply time out (documented in-memory semantics). */
static void test_long_poll_notices_other_handle_within_poll_interval(void **state)
{
	conf_ctx *c = *state;
	other_writer w = {0};
	assert_int_equal(conf_open_second(c, &w.db), DURQ_OK);
	pthread_t th;
	pthread_barrier_init(&w.bar, NULL, 2);
	pthread_create(&th, NULL, enqueue_on_other_handle, &w);
	pthread_barrier_wait(&w.bar);
	int64_t t0 = conf_mono_ms();
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, "x", 1, 1000, c->durable ? 1000 : 100);
	int64_t el = conf_mono_ms() - t0;
	pthread_join(th, NULL);
	pthread_barrier_destroy(&w.bar);
	durq_free(w.db);
	assert_int_equal(w.rc, DURQ_OK);
	if (!c->durable) {
		assert_int_equal(rc, DURQ_EMPTY);
		return;
	}
	assert_int_equal(rc, DURQ_OK);
	durq_work_items_free(it, n);
	if (el > 20 + 100 + PROMPT_MS)
		fail_msg("write of another handle noticed after %lld ms (poll interval 100)",
			 (long long)el);
}

typedef struct closer {
	durq *db;
	pthread_barrier_t bar;
	int rc;
	int64_t elapsed;
} closer;

static void *blocked_fetch(void *p)
{
	closer *cl = p;
	durq_work_item *it = NULL;
	size_t n = 0;
	pthread_barrier_wait(&cl->bar);
	int64_t t0 = conf_mono_ms();
	cl->rc = durq_work_fetch(cl->db, &it, &n, NULL, 1, 1000, 3000);
	cl->elapsed = conf_mono_ms() - t0;
	if (cl->rc == DURQ_OK)
		durq_work_items_free(it, n);
	return NULL;
}

static void test_close_wakes_blocked_fetchers(void **state)
{
	conf_ctx *c = *state;
	closer cl = {.db = c->db};
	pthread_t th;
	pthread_barrier_init(&cl.bar, NULL, 2);
	pthread_create(&th, NULL, blocked_fetch, &cl);
	pthread_barrier_wait(&cl.bar);
	conf_sleep_ms(20);
	int rc = durq_close(c->db);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&cl.bar);
	assert_int_equal(rc, DURQ_OK);
	assert_true(cl.rc == DURQ_ECLOSED || cl.rc == DURQ_EMPTY);
	if (cl.elapsed > 1000)
		fail_msg("fetch blocked %lld ms after close", (long long)cl.elapsed);
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
		T(test_long_poll_notices_other_handle_within_poll_interval),
		T(test_close_wakes_blocked_fetchers),
	};
	return cmocka_run_group_tests_name("conf_longpoll", tests, conf_group_setup,
					   conf_group_teardown);
}
