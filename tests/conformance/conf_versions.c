/*
 * conf_versions.c — what a turn says about its execution (issue 10): name and version per
 * execution, changed only by a continue-as-new (G5); a turn that discards its messages
 * without creating anything (G7); an execution's own output and completion time (G10).
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

/* Enqueue one message for inst, fetch its turn and ack it with r; returns the ack's code. */
static int turn_with(conf_ctx *c, const char *inst, const durq_turn_result *r)
{
	assert_int_equal(conf_msg(c, inst, 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	int rc = durq_orch_ack(c->db, inst, &t->token, r);
	durq_turn_free(t);
	return rc;
}

static durq_instance_info *info_of(conf_ctx *c, const char *inst)
{
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, inst), DURQ_OK);
	return info;
}

static void assert_str_or_null(const char *got, const char *want)
{
	if (!want)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

static void assert_instance_version(conf_ctx *c, const char *inst, const char *name,
				    const char *version)
{
	durq_instance_info *i = info_of(c, inst);
	assert_str_or_null(i->name, name);
	assert_str_or_null(i->version, version);
	durq_instance_info_free(i);
}

/* Execution k (1-based) of inst has name/version. */
static void assert_execution_version(conf_ctx *c, const char *inst, uint64_t exec,
				     const char *name, const char *version)
{
	durq_execution_info *list = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &list, &n, inst), DURQ_OK);
	int found = 0;
	for (size_t k = 0; k < n; k++) {
		if (list[k].execution_id != exec)
			continue;
		found = 1;
		assert_str_or_null(list[k].name, name);
		assert_str_or_null(list[k].version, version);
	}
	durq_execution_list_free(list);
	assert_true(found);
}

static int continue_as_new(conf_ctx *c, const char *inst, uint64_t exec, const char *name,
			   const char *version)
{
	durq_event e = conf_ev(1, "restart");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = exec;
	r.name = name;
	r.version_tag = version;
	r.history = &e;
	r.n_history = 1;
	return turn_with(c, inst, &r);
}

/* ---- G5 ---- */

static void test_continue_as_new_moves_to_a_new_version(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	conf_advance(c, 1000);
	int64_t closed_at = conf_time(c);
	assert_int_equal(continue_as_new(c, "i1", 2, NULL, "v2"), DURQ_OK);
	assert_instance_version(c, "i1", "wf", "v2");
	assert_execution_version(c, "i1", 1, "wf", "v1");
	assert_execution_version(c, "i1", 2, "wf", "v2");
	/* the next turn reports the current execution's version */
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->execution_id, 2);
	assert_string_equal(t->name, "wf");
	assert_string_equal(t->version, "v2");
	durq_turn_free(t);
	/* the closed execution ended when the continue-as-new committed; the new one runs */
	durq_execution_info *e = NULL;
	assert_int_equal(durq_execution_get(c->db, &e, "i1", 1), DURQ_OK);
	assert_int_equal(e->status, DURQ_STATUS_CONTINUED_AS_NEW);
	assert_true(e->completed_ms >= closed_at);
	durq_execution_info_free(e);
	assert_int_equal(durq_execution_get(c->db, &e, "i1", 0), DURQ_OK);
	assert_int_equal(e->execution_id, 2);
	assert_int_equal(e->completed_ms, 0);
	durq_execution_info_free(e);
}

static void test_continue_as_new_without_version_keeps_the_previous(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(continue_as_new(c, "i1", 2, NULL, NULL), DURQ_OK);
	assert_instance_version(c, "i1", "wf", "v1");
	assert_execution_version(c, "i1", 2, "wf", "v1");
	assert_int_equal(continue_as_new(c, "i1", 3, NULL, "v3"), DURQ_OK);
	assert_int_equal(continue_as_new(c, "i1", 4, NULL, NULL), DURQ_OK);
	assert_execution_version(c, "i1", 4, "wf", "v3");
	assert_instance_version(c, "i1", "wf", "v3");
}

static void test_continue_as_new_may_rename(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(continue_as_new(c, "i1", 2, "wf2", "w1"), DURQ_OK);
	assert_instance_version(c, "i1", "wf2", "w1");
	assert_execution_version(c, "i1", 1, "wf", "v1");
	assert_execution_version(c, "i1", 2, "wf2", "w1");
}

static void test_version_is_fixed_within_an_execution(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "other";
	r.version_tag = "v9";
	assert_int_equal(turn_with(c, "i1", &r), DURQ_OK);
	assert_instance_version(c, "i1", "wf", "v1");
	assert_execution_version(c, "i1", 1, "wf", "v1");
}

static void test_null_version_of_an_execution_is_filled_by_a_later_ack(void **state)
{
	conf_ctx *c = *state;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	assert_int_equal(turn_with(c, "i1", &r), DURQ_OK);
	assert_execution_version(c, "i1", 1, "wf", NULL);
	r.version_tag = "v1";
	assert_int_equal(turn_with(c, "i1", &r), DURQ_OK);
	assert_execution_version(c, "i1", 1, "wf", "v1");
	assert_instance_version(c, "i1", "wf", "v1");
}

static void test_async_continue_as_new_sets_version(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	char version[8];
	snprintf(version, sizeof version, "v%d", 7);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = 2;
	r.version_tag = version;
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	durq_async a = {.group = g};
	assert_int_equal(durq_orch_ack_async(c->db, "i1", &t->token, &r, &a), DURQ_OK);
	memset(version, 'x', sizeof version - 1); /* inputs are copied at submit */
	size_t failed = 1;
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	assert_int_equal(failed, 0);
	durq_group_free(g);
	durq_turn_free(t);
	assert_instance_version(c, "i1", "wf", "v7");
}

/* ---- G7 ---- */

static durq_turn_result discard(void)
{
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.flags = DURQ_TURN_DISCARD;
	return r;
}

static void test_discard_drops_messages_without_creating_the_instance(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "ghost", 3, "event"), DURQ_OK);
	assert_int_equal(conf_msg(c, "ghost", 3, "event2"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "ghost");
	assert_int_equal(t->exists, 0);
	assert_int_equal(t->n_messages, 2);
	durq_turn_result r = discard();
	assert_int_equal(durq_orch_ack(c->db, "ghost", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "ghost"), -1);
	conf_assert_no_turn(c);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.orch_ready + d.orch_delayed + d.orch_leased, 0);
	assert_int_equal(d.instances_locked, 0);
	durq_system_counts k;
	assert_int_equal(durq_system_counts_get(c->db, &k), DURQ_OK);
	assert_int_equal(k.instances, 0);
	assert_int_equal(k.executions, 0);
}

static void test_discard_keeps_messages_that_arrived_after_the_fetch(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 3, "early"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn_result r = discard();
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	t = conf_turn_for(c, "i1"); /* the lease is gone: the start is fetchable at once */
	assert_int_equal(t->exists, 0);
	assert_int_equal(t->n_messages, 1);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "start");
	durq_turn_free(t);
}

static void test_discard_carrying_anything_else_is_einval_and_keeps_the_lease(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 3, "event"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event e = conf_ev(1, "x");
	durq_message m = conf_m("other", 1, "m");
	durq_turn_result bad[6];
	for (int k = 0; k < 6; k++)
		bad[k] = discard();
	bad[0].status = DURQ_STATUS_COMPLETED;
	bad[1].history = &e, bad[1].n_history = 1;
	bad[2].messages = &m, bad[2].n_messages = 1;
	bad[3].name = "wf";
	bad[4].set_custom_status = 1;
	bad[5].flags = 0x80;
	for (int k = 0; k < 6; k++)
		assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &bad[k]), DURQ_EINVAL);
	durq_turn_result ok = discard();
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &ok), DURQ_OK);
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &ok), DURQ_ELOCKLOST);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "i1"), -1);
}

static void test_discard_on_an_existing_instance_changes_nothing(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_turn_result r = discard();
	assert_int_equal(turn_with(c, "i1", &r), DURQ_OK);
	durq_event *ev;
	assert_int_equal(conf_history(c, "i1", 0, &ev), 1);
	durq_events_free(ev, 1);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_RUNNING);
	conf_assert_no_turn(c);
}

static void test_discard_with_a_stale_token_is_lock_lost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 3, "event"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_token forged = conf_forged_token();
	durq_turn_result r = discard();
	assert_int_equal(durq_orch_ack(c->db, "i1", &forged, &r), DURQ_ELOCKLOST);
	conf_advance(c, CONF_LEASE + 1);
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ELOCKLOST);
	durq_turn_free(t);
	t = conf_turn_for(c, "i1"); /* still there, delivered again */
	assert_int_equal(t->n_messages, 1);
	durq_turn_free(t);
}

static void test_discard_async(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "ghost", 3, "event"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "ghost");
	durq_turn_result r = discard();
	assert_int_equal(durq_orch_ack_async(c->db, "ghost", &t->token, &r, NULL), DURQ_OK);
	assert_int_equal(durq_flush(c->db, -1), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "ghost"), -1);
	conf_assert_no_turn(c);
}

/* ---- G10 ---- */

static void test_execution_get_reports_output_and_completion(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(continue_as_new(c, "i1", 2, NULL, NULL), DURQ_OK);
	conf_advance(c, 500);
	int64_t done_at = conf_time(c);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	r.output = "result";
	r.output_len = 6;
	assert_int_equal(turn_with(c, "i1", &r), DURQ_OK);
	durq_execution_info *e = NULL;
	assert_int_equal(durq_execution_get(c->db, &e, "i1", 2), DURQ_OK);
	assert_int_equal(e->status, DURQ_STATUS_COMPLETED);
	assert_payload(e->output, e->output_len, "result");
	assert_true(e->completed_ms >= done_at);
	assert_int_equal(e->n_events, 1);
	durq_execution_info_free(e);
	assert_int_equal(durq_execution_get(c->db, &e, "i1", 1), DURQ_OK);
	assert_null(e->output);
	durq_execution_info_free(e);
	assert_int_equal(durq_execution_get(c->db, &e, "i1", 3), DURQ_ENOTFOUND);
	assert_null(e);
	assert_int_equal(durq_execution_get(c->db, &e, "nobody", 0), DURQ_ENOTFOUND);
	assert_int_equal(durq_execution_get(c->db, NULL, "i1", 0), DURQ_EINVAL);
	/* the list carries completion times too, no output */
	durq_execution_info *list;
	size_t n;
	assert_int_equal(durq_execution_list(c->db, &list, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 2);
	assert_true(list[0].completed_ms > 0 && list[1].completed_ms >= done_at);
	assert_null(list[1].output);
	durq_execution_list_free(list);
}

static void test_completion_time_resets_when_running_again(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_FAILED;
	assert_int_equal(turn_with(c, "i1", &r), DURQ_OK);
	durq_execution_info *e = NULL;
	assert_int_equal(durq_execution_get(c->db, &e, "i1", 0), DURQ_OK);
	assert_true(e->completed_ms > 0);
	durq_execution_info_free(e);
	r.status = DURQ_STATUS_RUNNING;
	assert_int_equal(turn_with(c, "i1", &r), DURQ_OK);
	assert_int_equal(durq_execution_get(c->db, &e, "i1", 0), DURQ_OK);
	assert_int_equal(e->completed_ms, 0);
	durq_execution_info_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_continue_as_new_moves_to_a_new_version),
		T(test_continue_as_new_without_version_keeps_the_previous),
		T(test_continue_as_new_may_rename),
		T(test_version_is_fixed_within_an_execution),
		T(test_null_version_of_an_execution_is_filled_by_a_later_ack),
		T(test_async_continue_as_new_sets_version),
		T(test_discard_drops_messages_without_creating_the_instance),
		T(test_discard_keeps_messages_that_arrived_after_the_fetch),
		T(test_discard_carrying_anything_else_is_einval_and_keeps_the_lease),
		T(test_discard_on_an_existing_instance_changes_nothing),
		T(test_discard_with_a_stale_token_is_lock_lost),
		T(test_discard_async),
		T(test_execution_get_reports_output_and_completion),
		T(test_completion_time_resets_when_running_again),
	};
	return cmocka_run_group_tests_name("conf_versions", tests, conf_group_setup,
					   conf_group_teardown);
}
