/*
 * replay_test.c — the runtime's turn logic (replay.c) on crafted turns, no database: what a
 * turn schedules, how duplicates and stale messages are dropped, nondeterminism, finished
 * instances, events before the start, event ordinals, event ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "rt_internal.h"

#define NOW 1000000

/* ---- orchestrations under test ---- */

/* activity "a", then a 10 ms timer, then complete with a's output */
static int two_steps(rt_ctx *ctx, const char *input)
{
	rt_result r;
	char out[64];
	if (!rt_await(ctx, rt_activity(ctx, "a", input), &r))
		return RT_SUSPEND;
	snprintf(out, sizeof out, "%s", r.value);
	if (!rt_await(ctx, rt_timer(ctx, 10), NULL))
		return RT_SUSPEND;
	return rt_complete(ctx, out);
}

/* the first and the second event "e", joined */
static int two_events(rt_ctx *ctx, const char *input)
{
	rt_result r1, r2;
	char out[64];
	(void)input;
	rt_task first = rt_event(ctx, "e"), second = rt_event(ctx, "e");
	if (!rt_await(ctx, first, &r1) || !rt_await(ctx, second, &r2))
		return RT_SUSPEND;
	snprintf(out, sizeof out, "%s+%s", r1.value, r2.value);
	return rt_complete(ctx, out);
}

/* ---- building turns ---- */

typedef struct turn_builder {
	durq_turn t;
	durq_event ev[16];
	durq_turn_message msg[16];
	char *bufs[32];
	size_t n_bufs;
} turn_builder;

static void tb_init(turn_builder *b, int exists, int status)
{
	memset(b, 0, sizeof *b);
	b->t.instance_id = "i1";
	b->t.exists = exists;
	b->t.execution_id = exists ? 1 : 0;
	b->t.status = status;
	b->t.history = b->ev;
	b->t.messages = b->msg;
}

static void tb_event(turn_builder *b, int type, uint64_t seq, const char *name, const char *value)
{
	rt_hevent e = {.type = type, .seq = seq, .name = (char *)name, .value = (char *)value};
	char *buf;
	size_t len;
	assert_int_equal(rt_hevent_encode(&e, &buf, &len), 0);
	b->bufs[b->n_bufs++] = buf;
	b->ev[b->t.n_history] = (durq_event){.event_id = 10 * (b->t.n_history + 1), .payload = buf,
					     .payload_len = len};
	b->t.n_history++;
}

static void tb_message(turn_builder *b, uint64_t exec, int type, uint64_t seq, const char *name,
		       const char *value)
{
	rt_hevent e = {.type = type, .seq = seq, .name = (char *)name, .value = (char *)value};
	char *buf;
	size_t len;
	assert_int_equal(rt_message_encode(exec, &e, &buf, &len), 0);
	b->bufs[b->n_bufs++] = buf;
	b->msg[b->t.n_messages++] = (durq_turn_message){.kind = type, .payload = buf,
							.payload_len = len, .attempt = 1};
}

static void tb_free(turn_builder *b)
{
	for (size_t i = 0; i < b->n_bufs; i++)
		free(b->bufs[i]);
}

/* Event i of the plan's history delta decoded (cleared by the caller). */
static rt_hevent delta(const rt_plan *p, size_t i)
{
	rt_hevent e;
	assert_true(i < p->result.n_history);
	assert_int_equal(rt_hevent_decode(&e, p->result.history[i].payload,
					  p->result.history[i].payload_len), 0);
	return e;
}

static void assert_delta(const rt_plan *p, size_t i, int type, uint64_t seq, const char *name)
{
	rt_hevent e = delta(p, i);
	assert_int_equal(e.type, type);
	assert_int_equal(e.seq, seq);
	assert_string_equal(e.name, name);
	rt_hevent_clear(&e);
}

static int setup(void **state)
{
	rt *r;
	if (rt_new(&r, NULL, NULL) < 0 || rt_register_orchestration(r, "two", two_steps) < 0 ||
	    rt_register_orchestration(r, "events", two_events) < 0)
		return -1;
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	rt_free(*state);
	return 0;
}

/* ---- the cases ---- */

/* First turn: the start becomes "started", the activity "scheduled" and its work item. */
static void test_first_turn_schedules(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 0, 0);
	tb_message(&b, 0, RT_H_STARTED, 0, "two", "in");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.action, RT_PLAN_ACK);
	assert_string_equal(p.result.name, "two");
	assert_int_equal(p.result.status, 0); /* leave as stored: a new instance is RUNNING */
	assert_int_equal(p.result.n_history, 2);
	assert_delta(&p, 0, RT_H_STARTED, 0, "two");
	assert_delta(&p, 1, RT_H_SCHEDULED, 1, "a");
	assert_int_equal(p.result.history[0].event_id, 1);
	assert_int_equal(p.result.n_work, 1);
	assert_string_equal(p.result.work[0].queue, RT_QUEUE);
	assert_int_equal(p.result.work[0].execution_id, 1);
	assert_int_equal(p.result.work[0].activity_id, 1);
	assert_int_equal(p.result.n_messages, 0);
	rt_plan_free(&p);
	tb_free(&b);
}

/* The result arrives: recorded, and the timer is scheduled as a delayed "fired" message. */
static void test_result_then_timer(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 1, DURQ_STATUS_RUNNING);
	tb_event(&b, RT_H_STARTED, 0, "two", "in");
	tb_event(&b, RT_H_SCHEDULED, 1, "a", "in");
	tb_message(&b, 1, RT_H_RESULT, 1, "ok", "x");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_null(p.result.name); /* only the first turn names the instance */
	assert_int_equal(p.result.n_history, 2);
	assert_delta(&p, 0, RT_H_RESULT, 1, "ok");
	assert_delta(&p, 1, RT_H_TIMER, 2, "1000010");
	assert_int_equal(p.result.history[0].event_id, 21); /* after the last stored id, 20 */
	assert_int_equal(p.result.n_work, 0);
	assert_int_equal(p.result.n_messages, 1);
	assert_int_equal(p.result.messages[0].visible_at_ms, NOW + 10);
	assert_int_equal(p.result.messages[0].kind, RT_H_FIRED);
	rt_plan_free(&p);
	tb_free(&b);
}

/* A duplicate result is dropped; the timer fires; the instance completes with a's output. */
static void test_duplicate_dropped_and_completes(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 1, DURQ_STATUS_RUNNING);
	tb_event(&b, RT_H_STARTED, 0, "two", "in");
	tb_event(&b, RT_H_SCHEDULED, 1, "a", "in");
	tb_event(&b, RT_H_RESULT, 1, "ok", "x");
	tb_event(&b, RT_H_TIMER, 2, "1000010", "");
	tb_message(&b, 1, RT_H_RESULT, 1, "ok", "again");
	tb_message(&b, 1, RT_H_FIRED, 2, "", "");
	tb_message(&b, 1, RT_H_FIRED, 2, "", "");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.result.n_history, 2);
	assert_delta(&p, 0, RT_H_FIRED, 2, "");
	assert_delta(&p, 1, RT_H_COMPLETED, 0, "");
	assert_int_equal(p.result.status, DURQ_STATUS_COMPLETED);
	assert_int_equal(p.finished, DURQ_STATUS_COMPLETED);
	assert_int_equal(p.result.output_len, 1);
	assert_memory_equal(p.result.output, "x", 1);
	rt_plan_free(&p);
	tb_free(&b);
}

/* A result of another execution, and a result for an action never scheduled, are dropped. */
static void test_stale_and_stray_dropped(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 1, DURQ_STATUS_RUNNING);
	tb_event(&b, RT_H_STARTED, 0, "two", "in");
	tb_event(&b, RT_H_SCHEDULED, 1, "a", "in");
	tb_message(&b, 7, RT_H_RESULT, 1, "ok", "old execution");
	tb_message(&b, 1, RT_H_RESULT, 5, "ok", "never scheduled");
	tb_message(&b, 1, RT_H_COMPLETED, 0, "", "only turns write this");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.action, RT_PLAN_ACK); /* the ack deletes them all the same */
	assert_int_equal(p.result.n_history, 0);
	assert_int_equal(p.result.n_work, 0);
	assert_int_equal(p.result.status, 0);
	rt_plan_free(&p);
	tb_free(&b);
}

/* The code asks for activity "a" where the history recorded "b": the instance fails. */
static void test_nondeterminism_fails(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 1, DURQ_STATUS_RUNNING);
	tb_event(&b, RT_H_STARTED, 0, "two", "in");
	tb_event(&b, RT_H_SCHEDULED, 1, "b", "in");
	tb_message(&b, 1, RT_H_RESULT, 1, "ok", "x");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.result.status, DURQ_STATUS_FAILED);
	assert_non_null(strstr(p.output, "nondeterminism at action 1"));
	assert_delta(&p, p.result.n_history - 1, RT_H_FAILED, 0, "");
	rt_plan_free(&p);
	tb_free(&b);
}

/* A message for a finished instance: an ack with nothing in it (status 0 keeps COMPLETED). */
static void test_finished_instance_unchanged(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 1, DURQ_STATUS_COMPLETED);
	tb_event(&b, RT_H_STARTED, 0, "two", "in");
	tb_event(&b, RT_H_COMPLETED, 0, "", "x");
	tb_message(&b, 0, RT_H_EVENT, 0, "late", "data");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.action, RT_PLAN_ACK);
	assert_int_equal(p.result.status, 0);
	assert_null(p.result.output);
	assert_int_equal(p.result.n_history + p.result.n_work + p.result.n_messages, 0);
	assert_int_equal(p.result.set_custom_status, 0);
	rt_plan_free(&p);
	tb_free(&b);
}

/* Events for an instance that has not started: given back (its start may come), then
 * discarded; never an instance made of them. */
static void test_event_before_start_abandoned_then_discarded(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 0, 0);
	tb_message(&b, 0, RT_H_EVENT, 0, "e", "early");
	b.t.attempt = 1;
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.action, RT_PLAN_ABANDON);
	rt_plan_free(&p);
	b.t.attempt = RT_EARLY_MESSAGE_ATTEMPTS;
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.action, RT_PLAN_ACK);
	assert_int_equal(p.result.flags, DURQ_TURN_DISCARD);
	assert_null(p.result.name); /* a discard carries nothing else */
	assert_int_equal(p.result.n_history + p.result.n_work + p.result.n_messages, 0);
	assert_int_equal(p.result.status, 0);
	rt_plan_free(&p);
	tb_free(&b);
}

/* Two waits for the same event name take the first and the second event, in order. */
static void test_event_ordinals(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 1, DURQ_STATUS_RUNNING);
	tb_event(&b, RT_H_STARTED, 0, "events", "");
	tb_event(&b, RT_H_EVENT, 0, "e", "v1");
	tb_message(&b, 0, RT_H_EVENT, 0, "other", "ignored");
	tb_message(&b, 0, RT_H_EVENT, 0, "e", "v2");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.result.status, DURQ_STATUS_COMPLETED);
	assert_string_equal(p.output, "v1+v2");
	rt_plan_free(&p);
	tb_free(&b);
}

/* The start of an unknown orchestration fails the new instance with the reason. */
static void test_unknown_orchestration_fails(void **state)
{
	turn_builder b;
	rt_plan p;
	tb_init(&b, 0, 0);
	tb_message(&b, 0, RT_H_STARTED, 0, "nope", "");
	assert_int_equal(rt_replay_turn(*state, &b.t, NOW, &p), 0);
	assert_int_equal(p.result.status, DURQ_STATUS_FAILED);
	assert_string_equal(p.output, "no orchestration named 'nope'");
	rt_plan_free(&p);
	tb_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_turn_schedules),
		cmocka_unit_test(test_result_then_timer),
		cmocka_unit_test(test_duplicate_dropped_and_completes),
		cmocka_unit_test(test_stale_and_stray_dropped),
		cmocka_unit_test(test_nondeterminism_fails),
		cmocka_unit_test(test_finished_instance_unchanged),
		cmocka_unit_test(test_event_before_start_abandoned_then_discarded),
		cmocka_unit_test(test_event_ordinals),
		cmocka_unit_test(test_unknown_orchestration_fails),
	};
	return cmocka_run_group_tests_name("runtime_replay", tests, setup, teardown);
}
