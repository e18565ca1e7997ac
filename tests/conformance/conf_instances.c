/*
 * conf_instances.c — design.md §1/§2.2: instances are created by the first turn's ack, never
 * by an enqueue; events may arrive before the instance exists; history is append-only per
 * (instance, execution), ordered by event id, duplicates rejected and never overwritten.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void test_orch_enqueue_never_creates_instance(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	assert_int_equal(conf_status(c, "i1"), -1);
	char **ids = NULL;
	size_t n = 99;
	assert_int_equal(durq_instance_list(c->db, &ids, &n, -1), DURQ_OK);
	assert_int_equal(n, 0);
	durq_strings_free(ids, n);
	durq_event *ev = NULL;
	assert_int_equal(durq_history_read(c->db, &ev, &n, "i1", 0), DURQ_ENOTFOUND);
	durq_execution_info *ex = NULL;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_ENOTFOUND);
}

static void test_work_enqueue_never_creates_instance(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "a"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_message done = conf_m("i1", 3, "r");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_OK);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_status(c, "i1"), -1);
}

static void test_first_turn_sees_no_instance(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->exists, 0);
	assert_int_equal(t->execution_id, 0);
	assert_int_equal(t->n_history, 0);
	assert_int_equal(t->status, DURQ_STATUS_PENDING);
	assert_int_equal(t->attempt, 1);
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 1);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "start");
	durq_turn_free(t);
}

static void test_first_ack_creates_instance(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_ack_event(c, t, 1, "started"), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_string_equal(info->id, "i1");
	assert_string_equal(info->name, "wf");
	assert_string_equal(info->version, "v1");
	assert_int_equal(info->execution_id, 1);
	assert_int_equal(info->status, DURQ_STATUS_RUNNING);
	assert_int_equal(info->created_ms, CONF_T0);
	assert_int_equal(info->updated_ms, CONF_T0);
	durq_instance_info_free(info);
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(durq_instance_list(c->db, &ids, &n, -1), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "i1");
	durq_strings_free(ids, n);
}

static void test_later_turn_carries_instance_and_history(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "ev"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->exists, 1);
	assert_int_equal(t->execution_id, 1);
	assert_int_equal(t->status, DURQ_STATUS_RUNNING);
	assert_string_equal(t->name, "wf");
	assert_string_equal(t->version, "v1");
	assert_int_equal(t->n_history, 1);
	assert_int_equal(t->history[0].event_id, 1);
	assert_payload(t->history[0].payload, t->history[0].payload_len, "start");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 2);
	durq_turn_free(t);
}

static void test_events_may_arrive_before_instance_exists(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 7, "early-event"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->exists, 0);
	assert_int_equal(t->n_messages, 2);
	assert_int_equal(t->messages[0].kind, 7); /* arrival order */
	assert_int_equal(t->messages[1].kind, 1);
	assert_true(t->messages[0].id != t->messages[1].id);
	assert_int_equal(conf_ack_event(c, t, 1, "start"), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_RUNNING);
	conf_assert_no_turn(c);
}

static void test_duplicate_event_id_rejected_never_overwritten(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "ev"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_ack_event(c, t, 1, "OVERWRITTEN"), DURQ_EDUP);
	assert_true(strlen(durq_error_last()) > 0);
	assert_int_equal(conf_ack_event(c, t, 2, "second"), DURQ_OK);
	durq_turn_free(t);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 1, &h), 2);
	assert_int_equal(h[0].event_id, 1);
	assert_payload(h[0].payload, h[0].payload_len, "start");
	assert_payload(h[1].payload, h[1].payload_len, "second");
	durq_events_free(h, 2);
}

static void test_event_ids_are_scoped_per_instance(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	conf_create_instance(c, "i2"); /* also event id 1 */
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i2", 0, &h), 1);
	durq_events_free(h, 1);
}

static void test_history_is_ordered_by_event_id(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "s"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event ev[3] = {conf_ev(3, "c"), conf_ev(1, "a"), conf_ev(2, "b")};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = ev;
	r.n_history = 3;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(h[i].event_id, (uint64_t)i + 1);
	assert_payload(h[0].payload, h[0].payload_len, "a");
	durq_events_free(h, 3);
	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_history, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(t->history[i].event_id, (uint64_t)i + 1);
	durq_turn_free(t);
}

/* Issue 10 (G6): a runtime must ack the turn of a late message to a finished instance (to
 * drop the message). The default result (status 0, no output) leaves status and output as
 * they are: the ack used to flip a COMPLETED instance back to RUNNING and erase its output. */
static void test_default_ack_keeps_a_completed_instance_and_its_output(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "done");
	assert_int_equal(conf_msg(c, "done", 2, "last-event"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "done");
	durq_event ev = {.event_id = 100, .payload = "completed", .payload_len = 9};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	r.output = "result";
	r.output_len = 6;
	r.history = &ev;
	r.n_history = 1;
	assert_int_equal(durq_orch_ack(c->db, "done", &t->token, &r), DURQ_OK);
	durq_turn_free(t);

	assert_int_equal(conf_msg(c, "done", 2, "late-event"), DURQ_OK);
	t = conf_turn_for(c, "done");
	assert_int_equal(t->status, DURQ_STATUS_COMPLETED);
	durq_turn_result drop = DURQ_TURN_RESULT_INIT; /* just drop the message */
	assert_int_equal(durq_orch_ack(c->db, "done", &t->token, &drop), DURQ_OK);
	durq_turn_free(t);

	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "done"), DURQ_OK);
	assert_int_equal(info->status, DURQ_STATUS_COMPLETED);
	assert_payload(info->output, info->output_len, "result");
	durq_instance_info_free(info);
	durq_execution_info *ex = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "done"), DURQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ex[0].status, DURQ_STATUS_COMPLETED);
	durq_execution_list_free(ex);
	conf_assert_no_turn(c); /* the late message is gone */
}

static void test_name_and_version_are_stored_on_creation_only(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "renamed";
	r.version_tag = "v9";
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_string_equal(info->name, "wf");
	assert_string_equal(info->version, "v1");
	durq_instance_info_free(info);
}

static void test_updated_ms_follows_clock_created_ms_does_not(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	conf_advance(c, 500);
	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_ack_event(c, t, 2, "e"), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_int_equal(info->created_ms, CONF_T0);
	assert_int_equal(info->updated_ms, CONF_T0 + 500);
	durq_instance_info_free(info);
}

static void test_ack_sets_status_and_output(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	r.output = "\0bin\0";
	r.output_len = 5;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_int_equal(info->status, DURQ_STATUS_COMPLETED);
	assert_int_equal(info->output_len, 5);
	assert_memory_equal(info->output, "\0bin\0", 5);
	durq_instance_info_free(info);
}

static void test_custom_status_version_bumps_only_when_set(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	const char *vals[3] = {"one", NULL, "three"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
		durq_turn *t = conf_turn_for(c, "i1");
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		if (vals[i]) {
			r.set_custom_status = 1;
			r.custom_status = vals[i];
			r.custom_status_len = strlen(vals[i]);
		}
		assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
		durq_turn_free(t);
		durq_instance_info *info = NULL;
		assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
		if (i == 0) {
			assert_int_equal(info->custom_status_version, 1);
			assert_payload(info->custom_status, info->custom_status_len, "one");
		} else if (i == 1) {
			assert_int_equal(info->custom_status_version, 1);
			assert_payload(info->custom_status, info->custom_status_len, "one");
		} else {
			assert_int_equal(info->custom_status_version, 2);
			assert_payload(info->custom_status, info->custom_status_len, "three");
		}
		durq_instance_info_free(info);
	}
}

static void test_utf8_instance_id_roundtrips(void **state)
{
	conf_ctx *c = *state;
	const char *id = "wf-\xe6\x97\xa5\xe6\x9c\xac-\xc3\xbc";
	conf_create_instance(c, id);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, id), DURQ_OK);
	assert_string_equal(info->id, id);
	durq_instance_info_free(info);
	assert_int_equal(conf_status(c, "wf-"), -1);
}

static void test_instance_get_unknown_is_enotfound(void **state)
{
	conf_ctx *c = *state;
	durq_instance_info *info = (void *)1;
	assert_int_equal(durq_instance_get(c->db, &info, "nope"), DURQ_ENOTFOUND);
	assert_true(strlen(durq_error_last()) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_orch_enqueue_never_creates_instance),
		T(test_work_enqueue_never_creates_instance),
		T(test_first_turn_sees_no_instance),
		T(test_first_ack_creates_instance),
		T(test_later_turn_carries_instance_and_history),
		T(test_events_may_arrive_before_instance_exists),
		T(test_duplicate_event_id_rejected_never_overwritten),
		T(test_event_ids_are_scoped_per_instance),
		T(test_history_is_ordered_by_event_id),
		T(test_default_ack_keeps_a_completed_instance_and_its_output),
		T(test_name_and_version_are_stored_on_creation_only),
		T(test_updated_ms_follows_clock_created_ms_does_not),
		T(test_ack_sets_status_and_output),
		T(test_custom_status_version_bumps_only_when_set),
		T(test_utf8_instance_id_roundtrips),
		T(test_instance_get_unknown_is_enotfound),
	};
	return cmocka_run_group_tests_name("conf_instances", tests, conf_group_setup,
					   conf_group_teardown);
}
