/*
 * conf_multiexec.c — design.md §2.2: continue-as-new is an ack with execution id current+1;
 * it creates execution n+1 (idempotently), reads default to the current execution
 * (execution_id 0), and older executions stay readable until pruned.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

/* One turn for inst acked with the given execution id and one event. */
static int turn_ack_exec(conf_ctx *c, const char *inst, uint64_t exec, uint64_t event_id,
			 const char *payload)
{
	assert_int_equal(conf_msg(c, inst, 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_event ev = conf_ev(event_id, payload);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = exec;
	r.history = &ev;
	r.n_history = 1;
	int rc = durq_orch_ack(c->db, inst, &t->token, &r);
	durq_turn_free(t);
	return rc;
}

static void test_continue_as_new_creates_next_execution(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(turn_ack_exec(c, "i1", 2, 1, "exec2-start"), DURQ_OK);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_int_equal(info->execution_id, 2);
	assert_int_equal(info->status, DURQ_STATUS_RUNNING);
	durq_instance_info_free(info);
	durq_execution_info *ex = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ex[0].execution_id, 1);
	assert_int_equal(ex[1].execution_id, 2);
	assert_int_equal(ex[0].n_events, 1);
	assert_int_equal(ex[1].n_events, 1);
	durq_execution_list_free(ex);
}

static void test_turn_after_continue_as_new_carries_new_execution_only(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(turn_ack_exec(c, "i1", 0, 2, "exec1-more"), DURQ_OK);
	assert_int_equal(turn_ack_exec(c, "i1", 2, 1, "exec2-start"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->execution_id, 2);
	assert_int_equal(t->n_history, 1);
	assert_payload(t->history[0].payload, t->history[0].payload_len, "exec2-start");
	durq_turn_free(t);
}

static void test_continue_as_new_is_idempotent(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(turn_ack_exec(c, "i1", 2, 1, "a"), DURQ_OK);
	/* acking again with the same (now current) execution id appends, no execution 3 */
	assert_int_equal(turn_ack_exec(c, "i1", 2, 2, "b"), DURQ_OK);
	durq_execution_info *ex = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ex[1].execution_id, 2);
	assert_int_equal(ex[1].n_events, 2);
	durq_execution_list_free(ex);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 2, &h), 2);
	durq_events_free(h, 2);
}

static void test_execution_id_zero_reads_current_execution(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(turn_ack_exec(c, "i1", 2, 1, "two"), DURQ_OK);
	assert_int_equal(turn_ack_exec(c, "i1", 3, 1, "three"), DURQ_OK);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 1);
	assert_payload(h[0].payload, h[0].payload_len, "three");
	durq_events_free(h, 1);
}

static void test_older_executions_remain_readable(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(turn_ack_exec(c, "i1", 0, 2, "one-b"), DURQ_OK);
	assert_int_equal(turn_ack_exec(c, "i1", 2, 1, "two"), DURQ_OK);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 1, &h), 2);
	assert_payload(h[0].payload, h[0].payload_len, "start");
	assert_payload(h[1].payload, h[1].payload_len, "one-b");
	durq_events_free(h, 2);
	assert_int_equal(conf_history(c, "i1", 2, &h), 1);
	assert_payload(h[0].payload, h[0].payload_len, "two");
	durq_events_free(h, 1);
}

static void test_event_ids_are_scoped_per_execution(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");                                 /* exec 1, event 1 */
	assert_int_equal(turn_ack_exec(c, "i1", 2, 1, "e1"), DURQ_OK); /* exec 2, event 1 */
	assert_int_equal(turn_ack_exec(c, "i1", 0, 1, "dup"), DURQ_EDUP);
}

static void test_unknown_execution_read_is_empty(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_event *h = NULL;
	size_t n = 99;
	/* the header does not say which; both mean "no events", neither may invent any */
	int rc = durq_history_read(c->db, &h, &n, "i1", 7);
	assert_true(rc == DURQ_ENOTFOUND || (rc == DURQ_OK && n == 0));
	if (rc == DURQ_OK)
		durq_events_free(h, n);
}

/* ENOTFOUND means "no such instance" whichever execution is asked for. */
static void test_history_read_of_unknown_instance_is_enotfound(void **state)
{
	conf_ctx *c = *state;
	durq_event *h = NULL;
	size_t n = 0;
	assert_int_equal(durq_history_read(c->db, &h, &n, "nope", 0), DURQ_ENOTFOUND);
	assert_int_equal(durq_history_read(c->db, &h, &n, "nope", 1), DURQ_ENOTFOUND);
}

static void test_continue_as_new_skipping_an_execution_is_rejected(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = 3; /* current is 1: only 0, 1 or 2 are meaningful */
	int rc = durq_orch_ack(c->db, "i1", &t->token, &r);
	assert_int_equal(rc, DURQ_EINVAL);
	/* rejected ack keeps the lease and changes nothing */
	conf_assert_no_turn(c);
	r.execution_id = 0;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_int_equal(info->execution_id, 1);
	durq_instance_info_free(info);
}

static void test_continue_as_new_then_complete_sets_instance_status(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(turn_ack_exec(c, "i1", 2, 1, "two"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_COMPLETED);
	durq_execution_info *ex = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ex[1].status, DURQ_STATUS_COMPLETED);
	assert_int_not_equal(ex[0].status, DURQ_STATUS_RUNNING); /* the old one is over */
	durq_execution_list_free(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_continue_as_new_creates_next_execution),
		T(test_turn_after_continue_as_new_carries_new_execution_only),
		T(test_continue_as_new_is_idempotent),
		T(test_execution_id_zero_reads_current_execution),
		T(test_older_executions_remain_readable),
		T(test_event_ids_are_scoped_per_execution),
		T(test_unknown_execution_read_is_empty),
		T(test_history_read_of_unknown_instance_is_enotfound),
		T(test_continue_as_new_skipping_an_execution_is_rejected),
		T(test_continue_as_new_then_complete_sets_instance_status),
	};
	return cmocka_run_group_tests_name("conf_multiexec", tests, conf_group_setup,
					   conf_group_teardown);
}
