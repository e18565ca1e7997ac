/*
 * conf_poisonpolicy.c — who owns the poison decision (issue 10, G13): the provider
 * dead-letters (default), dead-letters and records the failure where a runtime and a
 * parent orchestration see it (DURQ_POISON_RECORD), or only counts and delivers
 * (DURQ_POISON_DELIVER). Also: dead-letter ids are never reused (coverage doc §6), so a
 * repeated requeue cannot move another item.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)
#define NOTIFY_KIND 77
#define POISON_TEXT "durq:poison attempts=1 max_attempts=1"

/* Create child with parent_id parent (parent must exist for the notice). */
static void create_child(conf_ctx *c, const char *child, const char *parent)
{
	assert_int_equal(conf_msg(c, child, 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, child);
	durq_event e = conf_ev(1, "start");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "sub";
	r.parent_id = parent;
	r.history = &e;
	r.n_history = 1;
	assert_int_equal(durq_orch_ack(c->db, child, &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

/* One message for inst, delivered once and its lease left to expire: with max_attempts 1
 * the next fetch is the second delivery. */
static void deliver_once_and_crash(conf_ctx *c, const char *inst)
{
	assert_int_equal(conf_msg(c, inst, 2, "event"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	assert_int_equal(t->attempt, 1);
	durq_turn_free(t);
	conf_advance(c, CONF_LEASE + 1);
}

static void test_default_policy_fails_without_recording(void **state)
{
	conf_opts o = {.max_attempts = 1, .poison_notify_kind = NOTIFY_KIND};
	conf_ctx *c = conf_use(state, &o);
	conf_create_instance(c, "p");
	create_child(c, "c", "p");
	deliver_once_and_crash(c, "c");
	conf_assert_no_turn(c); /* dead-lettered; the parent hears nothing */
	assert_int_equal(conf_dead_count(c), 1);
	durq_instance_info *i = NULL;
	assert_int_equal(durq_instance_get(c->db, &i, "c"), DURQ_OK);
	assert_int_equal(i->status, DURQ_STATUS_FAILED);
	assert_null(i->output);
	durq_instance_info_free(i);
	durq_event *ev;
	size_t n = conf_history(c, "c", 0, &ev);
	assert_int_equal(n, 1);
	durq_events_free(ev, n);
	durq_execution_info *e = NULL;
	assert_int_equal(durq_execution_get(c->db, &e, "c", 0), DURQ_OK);
	assert_int_equal(e->status, DURQ_STATUS_FAILED);
	assert_true(e->completed_ms > 0);
	durq_execution_info_free(e);
}

static void test_record_policy_writes_output_history_and_tells_the_parent(void **state)
{
	conf_opts o = {.max_attempts = 1, .poison_policy = DURQ_POISON_RECORD,
		       .poison_notify_kind = NOTIFY_KIND};
	conf_ctx *c = conf_use(state, &o);
	conf_create_instance(c, "p");
	create_child(c, "c", "p");
	deliver_once_and_crash(c, "c");
	/* the fetch that dead-letters the child hands out the parent's notice */
	durq_turn *t = conf_turn_for(c, "p");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, NOTIFY_KIND);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "c");
	durq_turn_free(t);
	assert_int_equal(conf_dead_count(c), 1);
	durq_instance_info *i = NULL;
	assert_int_equal(durq_instance_get(c->db, &i, "c"), DURQ_OK);
	assert_int_equal(i->status, DURQ_STATUS_FAILED);
	assert_payload(i->output, i->output_len, POISON_TEXT);
	durq_instance_info_free(i);
	durq_event *ev;
	size_t n = conf_history(c, "c", 0, &ev);
	assert_int_equal(n, 2);
	assert_int_equal(ev[1].event_id, 2);
	assert_payload(ev[1].payload, ev[1].payload_len, POISON_TEXT);
	durq_events_free(ev, n);
	durq_execution_info *e = NULL;
	assert_int_equal(durq_execution_get(c->db, &e, "c", 0), DURQ_OK);
	assert_payload(e->output, e->output_len, POISON_TEXT);
	assert_true(e->completed_ms > 0);
	durq_execution_info_free(e);
}

static void test_record_policy_without_notify_kind_sends_nothing(void **state)
{
	conf_opts o = {.max_attempts = 1, .poison_policy = DURQ_POISON_RECORD};
	conf_ctx *c = conf_use(state, &o);
	conf_create_instance(c, "p");
	create_child(c, "c", "p");
	deliver_once_and_crash(c, "c");
	conf_assert_no_turn(c);
	assert_int_equal(conf_status(c, "c"), DURQ_STATUS_FAILED);
}

static void test_record_policy_for_an_unknown_instance_only_dead_letters(void **state)
{
	conf_opts o = {.max_attempts = 1, .poison_policy = DURQ_POISON_RECORD,
		       .poison_notify_kind = NOTIFY_KIND};
	conf_ctx *c = conf_use(state, &o);
	deliver_once_and_crash(c, "ghost");
	conf_assert_no_turn(c);
	assert_int_equal(conf_dead_count(c), 1);
	assert_int_equal(conf_status(c, "ghost"), -1);
}

static void test_deliver_policy_delivers_turns_past_max_attempts(void **state)
{
	conf_opts o = {.max_attempts = 1, .poison_policy = DURQ_POISON_DELIVER};
	conf_ctx *c = conf_use(state, &o);
	conf_create_instance(c, "i1");
	deliver_once_and_crash(c, "i1");
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->attempt, 2); /* counted, delivered: the runtime decides */
	/* it decides to fail the instance itself, with its own output */
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_FAILED;
	r.output = "gave up";
	r.output_len = 7;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_dead_count(c), 0);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_FAILED);
}

static void test_deliver_policy_delivers_work_past_max_attempts(void **state)
{
	conf_opts o = {.max_attempts = 1, .poison_policy = DURQ_POISON_DELIVER};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_work(c, NULL, "job", 0, 0), DURQ_OK);
	for (int attempt = 1; attempt <= 3; attempt++) {
		durq_work_item *it = NULL;
		assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
		assert_int_equal(it->attempt, attempt);
		durq_work_items_free(it, 1);
		conf_advance(c, 1001);
	}
	assert_int_equal(conf_dead_count(c), 0);
}

static void test_poison_policy_out_of_range_is_einval(void **state)
{
	conf_ctx *c = *state;
	durq_options o = DURQ_OPTIONS_INIT;
	durq *db = NULL;
	o.poison_policy = 3;
	assert_int_equal(durq_open(&db, c->url, &o), DURQ_EINVAL);
	assert_null(db);
	o.poison_policy = -1;
	assert_int_equal(durq_open(&db, c->url, &o), DURQ_EINVAL);
	assert_null(db);
}

/* ---- dead-letter ids (§6) ---- */

/* Dead-letter one fresh work item (max_attempts 1); returns its dead-letter id. */
static int64_t dead_letter_one(conf_ctx *c, const char *payload)
{
	assert_int_equal(conf_work(c, NULL, payload, 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_advance(c, 1001);
	conf_assert_no_work(c, NULL); /* this fetch dead-letters it */
	durq_dead_letter *d = NULL;
	size_t n = 0;
	assert_int_equal(durq_dead_list(c->db, &d, &n, 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_payload(d[0].payload, d[0].payload_len, payload);
	int64_t id = d[0].id;
	durq_dead_letters_free(d, n);
	return id;
}

/* Requeue dead letter id, then fetch and ack the item so the queues are empty again. */
static void requeue_and_finish(conf_ctx *c, int64_t id)
{
	assert_int_equal(durq_dead_requeue(c->db, id), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
}

static void test_dead_letter_ids_are_never_reused(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	int64_t a = dead_letter_one(c, "A");
	requeue_and_finish(c, a); /* A's row, the newest, is gone */
	int64_t b = dead_letter_one(c, "B");
	assert_true(b > a);
	/* a stale or repeated requeue of A must not move B */
	assert_int_equal(durq_dead_requeue(c->db, a), DURQ_ENOTFOUND);
	assert_int_equal(conf_dead_count(c), 1);
	conf_assert_no_work(c, NULL);
	if (!c->durable)
		return;
	requeue_and_finish(c, b);
	assert_int_equal(conf_reopen(c), DURQ_OK); /* the high-water mark is stored */
	int64_t d = dead_letter_one(c, "C");
	assert_true(d > b);
	assert_int_equal(durq_dead_requeue(c->db, b), DURQ_ENOTFOUND);
	assert_int_equal(conf_dead_count(c), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_default_policy_fails_without_recording),
		T(test_record_policy_writes_output_history_and_tells_the_parent),
		T(test_record_policy_without_notify_kind_sends_nothing),
		T(test_record_policy_for_an_unknown_instance_only_dead_letters),
		T(test_deliver_policy_delivers_turns_past_max_attempts),
		T(test_deliver_policy_delivers_work_past_max_attempts),
		T(test_poison_policy_out_of_range_is_einval),
		T(test_dead_letter_ids_are_never_reused),
	};
	return cmocka_run_group_tests_name("conf_poisonpolicy", tests, conf_group_setup,
					   conf_group_teardown);
}
