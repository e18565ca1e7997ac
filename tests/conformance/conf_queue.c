/*
 * conf_queue.c — design.md §2.3: work fetch is FIFO within a queue and priority (higher
 * first), skips items not yet visible (to the millisecond of the injected clock) or under a
 * live lease; named queues are isolated; fetch leases up to max items.
 */
#include "conf_factory.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void expect_next(conf_ctx *c, const char *queue, const char *payload)
{
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, queue, 0), DURQ_OK);
	if (!conf_bytes_eq(it->payload, it->payload_len, payload))
		fail_msg("expected item '%s', got '%.*s'", payload, (int)it->payload_len,
			 (const char *)it->payload);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
}

static void test_fifo_within_a_queue_across_calls(void **state)
{
	conf_ctx *c = *state;
	const char *p[5] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++)
		assert_int_equal(conf_work(c, NULL, p[i], 0, 0), DURQ_OK);
	for (int i = 0; i < 5; i++)
		expect_next(c, NULL, p[i]);
	conf_assert_no_work(c, NULL);
}

static void test_fifo_within_one_enqueue_batch(void **state)
{
	conf_ctx *c = *state;
	durq_work w[4] = {conf_w(NULL, "1"), conf_w(NULL, "2"), conf_w(NULL, "3"),
			  conf_w(NULL, "4")};
	assert_int_equal(durq_work_enqueue(c->db, w, 4), DURQ_OK);
	for (int i = 0; i < 4; i++) {
		char s[2] = {(char)('1' + i), 0};
		expect_next(c, NULL, s);
	}
}

static void test_higher_priority_first_fifo_within_priority(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p1", 1, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "p5-first", 5, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "p3", 3, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "p5-second", 5, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "p-neg", -2, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "p0", 0, 0), DURQ_OK);
	expect_next(c, NULL, "p5-first");
	expect_next(c, NULL, "p5-second");
	expect_next(c, NULL, "p3");
	expect_next(c, NULL, "p1");
	expect_next(c, NULL, "p0");
	expect_next(c, NULL, "p-neg");
}

static void test_batch_fetch_respects_priority_order(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "low", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "high", 9, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "mid", 4, 0), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 2, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 2);
	assert_payload(it[0].payload, it[0].payload_len, "high");
	assert_payload(it[1].payload, it[1].payload_len, "mid");
	assert_int_equal(it[0].priority, 9);
	durq_work_items_free(it, n);
	expect_next(c, NULL, "low");
}

/* Review bug 4: the sort compared priorities by subtraction, which overflows for extreme
 * caller-supplied ints (INT_MAX - (INT_MIN + 1) wraps): the highest priority came back last. */
static void test_extreme_priorities_keep_their_order_in_one_fetch(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "minus2", -2, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "max", INT_MAX, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "min+1", INT_MIN + 1, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "min", INT_MIN, 0), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 4, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 4);
	assert_payload(it[0].payload, it[0].payload_len, "max");
	assert_payload(it[1].payload, it[1].payload_len, "minus2");
	assert_payload(it[2].payload, it[2].payload_len, "min+1");
	assert_payload(it[3].payload, it[3].payload_len, "min");
	assert_int_equal(it[0].priority, INT_MAX);
	assert_int_equal(it[3].priority, INT_MIN);
	durq_work_items_free(it, n);
}

static void test_work_delay_respected_to_the_millisecond(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "later", 0, 250), DURQ_OK);
	conf_assert_no_work(c, NULL);
	conf_advance(c, 249);
	conf_assert_no_work(c, NULL);
	conf_advance(c, 1);
	expect_next(c, NULL, "later");
}

static void test_orch_visible_at_respected_to_the_millisecond(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg_at(c, "i1", 1, "timer", CONF_T0 + 100, 0), DURQ_OK);
	conf_advance(c, 99);
	conf_assert_no_turn(c);
	conf_advance(c, 1);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_free(t);
}

static void test_orch_delay_and_visible_at_later_wins(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg_at(c, "a", 1, "x", CONF_T0 + 100, 300), DURQ_OK);
	assert_int_equal(conf_msg_at(c, "b", 1, "x", CONF_T0 + 300, 100), DURQ_OK);
	assert_int_equal(conf_msg_at(c, "c", 1, "x", CONF_T0 - 5000, 0), DURQ_OK); /* past */
	durq_turn *t = conf_turn_for(c, "c");
	durq_turn_free(t);
	conf_advance(c, 299);
	conf_assert_no_turn(c);
	conf_advance(c, 1);
	durq_turn *t1 = NULL, *t2 = NULL;
	assert_int_equal(conf_turn(c, &t1, 0), DURQ_OK);
	assert_int_equal(conf_turn(c, &t2, 0), DURQ_OK);
	assert_string_not_equal(t1->instance_id, t2->instance_id);
	durq_turn_free(t1);
	durq_turn_free(t2);
}

static void test_delayed_item_does_not_block_later_ready_items(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "delayed", 0, 1000), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "ready", 0, 0), DURQ_OK);
	expect_next(c, NULL, "ready");
	conf_assert_no_work(c, NULL);
}

static void test_leased_items_are_skipped(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "a", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "b", 0, 0), DURQ_OK);
	durq_work_item *a = NULL;
	assert_int_equal(conf_fetch1(c, &a, NULL, 0), DURQ_OK);
	assert_payload(a->payload, a->payload_len, "a");
	expect_next(c, NULL, "b");
	conf_assert_no_work(c, NULL);
	durq_work_items_free(a, 1);
}

static void test_named_queues_are_isolated(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, "alpha", "A", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, "beta", "B", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "D", 0, 0), DURQ_OK);
	conf_assert_no_work(c, "gamma");
	expect_next(c, "beta", "B");
	conf_assert_no_work(c, "beta");
	expect_next(c, NULL, "D");
	conf_assert_no_work(c, NULL);
	conf_assert_no_work(c, "");
	expect_next(c, "alpha", "A");
}

static void test_null_and_empty_name_are_the_default_queue(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, "", "via-empty", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "via-null", 0, 0), DURQ_OK);
	expect_next(c, NULL, "via-empty");
	expect_next(c, "", "via-null");
}

static void test_fetch_leases_at_most_max_items(void **state)
{
	conf_ctx *c = *state;
	for (int i = 0; i < 5; i++) {
		char p[24];
		snprintf(p, sizeof p, "%d", i);
		assert_int_equal(conf_work(c, NULL, p, 0, 0), DURQ_OK);
	}
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 3, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		char p[24];
		snprintf(p, sizeof p, "%zu", i);
		assert_payload(it[i].payload, it[i].payload_len, p);
		for (size_t k = 0; k < i; k++)
			assert_true(it[i].id != it[k].id);
	}
	durq_work_items_free(it, n);
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 3, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 2);
	durq_work_items_free(it, n);
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 3, CONF_LEASE, 0), DURQ_EMPTY);
	assert_int_equal(n, 0);
}

static void test_fetched_item_carries_all_fields(void **state)
{
	conf_ctx *c = *state;
	static const unsigned char bin[6] = {0, 1, 0xff, 0, 'x', 0};
	durq_work w = conf_w("q1", NULL);
	w.instance_id = "inst";
	w.execution_id = 3;
	w.activity_id = 42;
	w.priority = 7;
	w.payload = bin;
	w.payload_len = sizeof bin;
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, "q1", 0), DURQ_OK);
	assert_string_equal(it->queue, "q1");
	assert_string_equal(it->instance_id, "inst");
	assert_int_equal(it->execution_id, 3);
	assert_int_equal(it->activity_id, 42);
	assert_int_equal(it->priority, 7);
	assert_int_equal(it->attempt, 1);
	assert_int_equal(it->payload_len, sizeof bin);
	assert_memory_equal(it->payload, bin, sizeof bin);
	assert_int_equal(it->lease_until_ms, CONF_T0 + CONF_LEASE);
	durq_work_items_free(it, 1);
}

static void test_plain_work_has_no_instance_and_empty_payload_roundtrips(void **state)
{
	conf_ctx *c = *state;
	durq_work w = conf_w(NULL, NULL);
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_null(it->instance_id);
	assert_int_equal(it->payload_len, 0);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, NULL);
}

static void test_work_ack_with_completion_feeds_the_orchestrator(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 5, "act"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	conf_assert_no_turn(c);
	durq_message done = conf_m("i1", 11, "result");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, NULL);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 11);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "result");
	durq_turn_free(t);
}

/* An item whose lease expired is an ordinary ready item again: it does not jump ahead of a
 * ready item of higher priority. */
static void test_expired_item_does_not_jump_priority_order(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "low", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_work(c, NULL, "high", 9, 0), DURQ_OK);
	conf_advance(c, 1001);
	expect_next(c, NULL, "high");
	expect_next(c, NULL, "low");
}

static void test_acked_item_is_never_redelivered(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_advance(c, 1000000); /* far past any lease */
	conf_assert_no_work(c, NULL);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_delayed + d.work_leased, 0);
}

/* durq_work_ack_fetch: the acks of the last items and the lease of the next ones. */
static void fetch_n(conf_ctx *c, durq_work_item **it, size_t *n, size_t max)
{
	assert_int_equal(durq_work_fetch(c->db, it, n, NULL, max, CONF_LEASE, 0), DURQ_OK);
}

static void acks_of(const durq_work_item *it, size_t n, durq_work_ack_req *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (durq_work_ack_req){.id = it[i].id, .token = &it[i].token};
}

static void assert_queue_empty(conf_ctx *c)
{
	durq_queue_depths d;
	conf_advance(c, 10 * CONF_LEASE); /* an item not acked would be claimable again */
	conf_assert_no_work(c, NULL);
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_delayed + d.work_leased, 0);
}

static void test_ack_fetch_acks_and_leases_the_next_items(void **state)
{
	conf_ctx *c = *state;
	const char *p[5] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++)
		assert_int_equal(conf_work(c, NULL, p[i], 0, 0), DURQ_OK);
	durq_work_item *it = NULL, *next = NULL;
	size_t n = 0, m = 0;
	durq_work_ack_req acks[2];
	int rcs[2] = {-1, -1};
	fetch_n(c, &it, &n, 2);
	acks_of(it, n, acks);
	assert_int_equal(durq_work_ack_fetch(c->db, acks, n, rcs, &next, &m, NULL, 2, CONF_LEASE, 0),
			 DURQ_OK);
	assert_int_equal(rcs[0], DURQ_OK);
	assert_int_equal(rcs[1], DURQ_OK);
	assert_int_equal(m, 2); /* FIFO goes on: c, d */
	assert_payload(next[0].payload, next[0].payload_len, "c");
	assert_payload(next[1].payload, next[1].payload_len, "d");
	durq_work_items_free(it, n);
	it = next, n = m;
	acks_of(it, n, acks);
	assert_int_equal(durq_work_ack_fetch(c->db, acks, n, rcs, &next, &m, NULL, 4, CONF_LEASE, 0),
			 DURQ_OK);
	assert_int_equal(m, 1);
	assert_payload(next[0].payload, next[0].payload_len, "e");
	durq_work_items_free(it, n);
	acks_of(next, 1, acks);
	/* nothing left: the ack still commits, the fetch reports DURQ_EMPTY */
	assert_int_equal(durq_work_ack_fetch(c->db, acks, 1, rcs, &it, &n, NULL, 4, CONF_LEASE, 0),
			 DURQ_EMPTY);
	assert_int_equal(rcs[0], DURQ_OK);
	assert_null(it);
	assert_int_equal(n, 0);
	durq_work_items_free(next, 1);
	assert_queue_empty(c);
}

static void test_ack_fetch_a_failed_ack_fails_alone(void **state)
{
	conf_ctx *c = *state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	durq_work_item *it = NULL, *next = NULL;
	size_t n = 0, m = 0;
	fetch_n(c, &it, &n, 2);
	durq_token forged = conf_forged_token();
	durq_work_ack_req acks[3] = {{.id = it[0].id, .token = &forged},
				     {.id = it[1].id, .token = &it[1].token},
				     {.id = INT64_C(987654321), .token = &it[1].token}};
	int rcs[3] = {0, -1, 0};
	assert_int_equal(durq_work_ack_fetch(c->db, acks, 3, rcs, &next, &m, NULL, 5, CONF_LEASE, 0),
			 DURQ_OK);
	assert_int_equal(rcs[0], DURQ_ELOCKLOST); /* wrong token: the item keeps its lease */
	assert_int_equal(rcs[1], DURQ_OK);
	assert_int_equal(rcs[2], DURQ_ELOCKLOST); /* no such item */
	assert_int_equal(m, 1);                     /* the third item; the first is still leased */
	durq_work_ack_req ok[2] = {{.id = it[0].id, .token = &it[0].token},
				   {.id = next[0].id, .token = &next[0].token}};
	assert_int_equal(durq_work_ack_many(c->db, ok, 2, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	durq_work_items_free(next, m);
	assert_queue_empty(c);
}

static void test_ack_fetch_bad_input_acks_nothing(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "y", 0, 0), DURQ_OK);
	durq_work_item *it = NULL, *next = NULL;
	size_t n = 0, m = 0;
	fetch_n(c, &it, &n, 1);
	durq_work_ack_req good = {.id = it[0].id, .token = &it[0].token};
	durq_work_ack_req two[2] = {good, {.id = it[0].id, .token = NULL}};
	int rcs[2];
	assert_int_equal(durq_work_ack_fetch(c->db, &good, 1, NULL, &next, &m, NULL, 1, CONF_LEASE, 0),
			 DURQ_EINVAL); /* rcs required with acks */
	assert_int_equal(durq_work_ack_fetch(c->db, &good, 1, rcs, &next, &m, NULL, 0, CONF_LEASE, 0),
			 DURQ_EINVAL); /* max 0 */
	assert_int_equal(durq_work_ack_fetch(c->db, &good, 1, rcs, &next, &m, NULL, 1, 0, 0),
			 DURQ_EINVAL); /* lease 0 */
	assert_int_equal(durq_work_ack_fetch(c->db, NULL, 1, rcs, &next, &m, NULL, 1, CONF_LEASE, 0),
			 DURQ_EINVAL); /* acks NULL with a count */
	assert_int_equal(durq_work_ack_fetch(c->db, two, 2, rcs, &next, &m, NULL, 1, CONF_LEASE, 0),
			 DURQ_EINVAL); /* a NULL token: the good ack is not applied either */
	assert_int_equal(durq_work_ack_fetch(c->db, &good, 1, rcs, NULL, &m, NULL, 1, CONF_LEASE, 0),
			 DURQ_EINVAL);
	/* nothing was acked or leased: after the lease, both items are there */
	durq_work_items_free(it, n);
	conf_advance(c, 2 * CONF_LEASE);
	fetch_n(c, &it, &n, 5);
	assert_int_equal(n, 2);
	/* no acks: a plain fetch */
	assert_int_equal(durq_work_ack_fetch(c->db, NULL, 0, NULL, &next, &m, NULL, 1, CONF_LEASE, 0),
			 DURQ_EMPTY);
	durq_work_ack_req both[2];
	acks_of(it, n, both);
	assert_int_equal(durq_work_ack_fetch(c->db, both, 2, rcs, &next, &m, NULL, 1, CONF_LEASE, 0),
			 DURQ_EMPTY);
	assert_int_equal(rcs[0], DURQ_OK);
	assert_int_equal(rcs[1], DURQ_OK);
	durq_work_items_free(it, n);
	assert_queue_empty(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fifo_within_a_queue_across_calls),
		T(test_fifo_within_one_enqueue_batch),
		T(test_higher_priority_first_fifo_within_priority),
		T(test_batch_fetch_respects_priority_order),
		T(test_extreme_priorities_keep_their_order_in_one_fetch),
		T(test_work_delay_respected_to_the_millisecond),
		T(test_orch_visible_at_respected_to_the_millisecond),
		T(test_orch_delay_and_visible_at_later_wins),
		T(test_delayed_item_does_not_block_later_ready_items),
		T(test_leased_items_are_skipped),
		T(test_named_queues_are_isolated),
		T(test_null_and_empty_name_are_the_default_queue),
		T(test_fetch_leases_at_most_max_items),
		T(test_fetched_item_carries_all_fields),
		T(test_plain_work_has_no_instance_and_empty_payload_roundtrips),
		T(test_work_ack_with_completion_feeds_the_orchestrator),
		T(test_expired_item_does_not_jump_priority_order),
		T(test_acked_item_is_never_redelivered),
		T(test_ack_fetch_acks_and_leases_the_next_items),
		T(test_ack_fetch_a_failed_ack_fails_alone),
		T(test_ack_fetch_bad_input_acks_nothing),
	};
	return cmocka_run_group_tests_name("conf_queue", tests, conf_group_setup,
					   conf_group_teardown);
}
