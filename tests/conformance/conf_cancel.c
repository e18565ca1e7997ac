/*
 * conf_cancel.c — design.md §2.2/§2.3: activities cancelled by a turn (turn_result.cancel)
 * are deleted after the turn's work is enqueued (schedule + cancel in one turn is a no-op);
 * the cancelled item's ack and renew then fail with DURQ_ELOCKLOST.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

/* Create i1 and have its first turn schedule activities 1..n (execution 1). */
static void schedule(conf_ctx *c, const char *inst, int n)
{
	assert_int_equal(conf_msg(c, inst, 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_work w[8];
	for (int i = 0; i < n; i++) {
		w[i] = conf_w(NULL, "act");
		w[i].instance_id = inst;
		w[i].execution_id = 1;
		w[i].activity_id = (uint64_t)i + 1;
	}
	durq_event ev = conf_ev(1, "start");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &ev;
	r.n_history = 1;
	r.work = w;
	r.n_work = (size_t)n;
	assert_int_equal(durq_orch_ack(c->db, inst, &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

static int cancel_turn(conf_ctx *c, const char *inst, const durq_activity_ref *refs, size_t n,
		       uint64_t event_id)
{
	assert_int_equal(conf_msg(c, inst, 5, "cancel"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_event ev = conf_ev(event_id, "cancelled");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &ev;
	r.n_history = 1;
	r.cancel = refs;
	r.n_cancel = n;
	int rc = durq_orch_ack(c->db, inst, &t->token, &r);
	durq_turn_free(t);
	return rc;
}

static int64_t work_count(conf_ctx *c)
{
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	return d.work_ready + d.work_delayed + d.work_leased;
}

static void test_cancelled_activity_is_deleted(void **state)
{
	conf_ctx *c = *state;
	schedule(c, "i1", 1);
	assert_int_equal(work_count(c), 1);
	durq_activity_ref ref = {1, 1};
	assert_int_equal(cancel_turn(c, "i1", &ref, 1, 2), DURQ_OK);
	conf_assert_no_work(c, NULL);
	assert_int_equal(work_count(c), 0);
	assert_int_equal(conf_dead_count(c), 0); /* deleted, not dead-lettered */
}

static void test_cancel_deletes_only_the_named_activity(void **state)
{
	conf_ctx *c = *state;
	schedule(c, "i1", 3);
	schedule(c, "i2", 2); /* same activity ids, other instance */
	durq_activity_ref ref = {1, 2};
	assert_int_equal(cancel_turn(c, "i1", &ref, 1, 2), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 10, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_false(strcmp(it[i].instance_id, "i1") == 0 && it[i].activity_id == 2);
	durq_work_items_free(it, n);
}

static void test_cancel_matches_execution_id(void **state)
{
	conf_ctx *c = *state;
	schedule(c, "i1", 1);
	durq_activity_ref ref = {2, 1}; /* execution 2 does not exist */
	assert_int_equal(cancel_turn(c, "i1", &ref, 1, 2), DURQ_OK);
	assert_int_equal(work_count(c), 1);
}

static void test_cancelled_leased_activity_ack_and_renew_fail(void **state)
{
	conf_ctx *c = *state;
	schedule(c, "i1", 1);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_activity_ref ref = {1, 1};
	assert_int_equal(cancel_turn(c, "i1", &ref, 1, 2), DURQ_OK);
	int64_t until = 0;
	durq_message done = conf_m("i1", 3, "result");
	assert_int_equal(durq_work_renew(c->db, &until, it->id, &it->token, 1000), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_ELOCKLOST);
	durq_work_items_free(it, 1);
	conf_assert_no_turn(c); /* the failed ack enqueued no completion */
	conf_assert_no_work(c, NULL);
	assert_int_equal(work_count(c), 0);
}

static void test_schedule_and_cancel_in_one_turn_is_a_noop(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_work w[2] = {conf_w(NULL, "a1"), conf_w(NULL, "a2")};
	w[0].instance_id = w[1].instance_id = "i1";
	w[0].execution_id = w[1].execution_id = 1;
	w[0].activity_id = 1;
	w[1].activity_id = 2;
	durq_activity_ref ref = {1, 1};
	durq_event ev = conf_ev(1, "s");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &ev;
	r.n_history = 1;
	r.work = w;
	r.n_work = 2;
	r.cancel = &ref;
	r.n_cancel = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_int_equal(it->activity_id, 2);
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, NULL);
}

static void test_cancelling_nonexistent_activity_is_harmless(void **state)
{
	conf_ctx *c = *state;
	schedule(c, "i1", 1);
	durq_activity_ref refs[2] = {{1, 99}, {7, 7}};
	assert_int_equal(cancel_turn(c, "i1", refs, 2, 2), DURQ_OK);
	assert_int_equal(work_count(c), 1);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 2); /* the turn itself committed */
	durq_events_free(h, 2);
}

static void test_cancel_after_completion_is_harmless(void **state)
{
	conf_ctx *c = *state;
	schedule(c, "i1", 1);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_message done = conf_m("i1", 3, "result");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_OK);
	durq_work_items_free(it, 1);
	/* the completion is pending for i1; a turn that cancels the finished activity is fine
	 * and still consumes the completion message */
	durq_activity_ref ref = {1, 1};
	assert_int_equal(cancel_turn(c, "i1", &ref, 1, 2), DURQ_OK);
	conf_assert_no_turn(c);
}

static void test_failed_turn_does_not_cancel(void **state)
{
	conf_ctx *c = *state;
	schedule(c, "i1", 1);
	durq_activity_ref ref = {1, 1};
	/* event id 1 is a duplicate: the whole ack fails, the cancel with it */
	assert_int_equal(cancel_turn(c, "i1", &ref, 1, 1), DURQ_EDUP);
	assert_int_equal(work_count(c), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cancelled_activity_is_deleted),
		T(test_cancel_deletes_only_the_named_activity),
		T(test_cancel_matches_execution_id),
		T(test_cancelled_leased_activity_ack_and_renew_fail),
		T(test_schedule_and_cancel_in_one_turn_is_a_noop),
		T(test_cancelling_nonexistent_activity_is_harmless),
		T(test_cancel_after_completion_is_harmless),
		T(test_failed_turn_does_not_cancel),
	};
	return cmocka_run_group_tests_name("conf_cancel", tests, conf_group_setup,
					   conf_group_teardown);
}
