/*
 * conf_mgmt.c — reads and management: instance list/get, execution list, queue depths,
 * instance delete (queues, lock, history; an in-flight ack then fails with ELOCKLOST),
 * execution prune (never the current one), stats and configuration read-back.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void finish(conf_ctx *c, const char *inst, int status)
{
	conf_create_instance(c, inst);
	if (status == DURQ_STATUS_RUNNING)
		return;
	assert_int_equal(conf_msg(c, inst, 2, "end"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = status;
	assert_int_equal(durq_orch_ack(c->db, inst, &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

static int list_has(char **ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

static void test_instance_list_filters_by_status(void **state)
{
	conf_ctx *c = *state;
	finish(c, "run", DURQ_STATUS_RUNNING);
	finish(c, "done", DURQ_STATUS_COMPLETED);
	finish(c, "bad", DURQ_STATUS_FAILED);
	finish(c, "term", DURQ_STATUS_TERMINATED);
	assert_int_equal(conf_msg(c, "pending", 1, "start"), DURQ_OK); /* not an instance */
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(durq_instance_list(c->db, &ids, &n, -1), DURQ_OK);
	assert_int_equal(n, 4);
	assert_true(list_has(ids, n, "run") && list_has(ids, n, "done"));
	assert_true(list_has(ids, n, "bad") && list_has(ids, n, "term"));
	assert_false(list_has(ids, n, "pending"));
	durq_strings_free(ids, n);
	const struct {
		int st;
		const char *id;
	} want[] = {{DURQ_STATUS_RUNNING, "run"},
		    {DURQ_STATUS_COMPLETED, "done"},
		    {DURQ_STATUS_FAILED, "bad"},
		    {DURQ_STATUS_TERMINATED, "term"}};
	for (size_t k = 0; k < 4; k++) {
		assert_int_equal(durq_instance_list(c->db, &ids, &n, want[k].st), DURQ_OK);
		assert_int_equal(n, 1);
		assert_string_equal(ids[0], want[k].id);
		durq_strings_free(ids, n);
	}
	assert_int_equal(durq_instance_list(c->db, &ids, &n, DURQ_STATUS_CONTINUED_AS_NEW),
			 DURQ_OK);
	assert_int_equal(n, 0);
	durq_strings_free(ids, n);
}

static void test_instance_get_reports_fields(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_string_equal(info->id, "i1");
	assert_string_equal(info->name, "wf");
	assert_int_equal(info->execution_id, 1);
	assert_int_equal(info->status, DURQ_STATUS_RUNNING);
	assert_true(info->parent_id == NULL || info->parent_id[0] == '\0');
	durq_instance_info_free(info);
}

static void test_execution_list_reports_each_execution(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	conf_advance(c, 10);
	assert_int_equal(conf_msg(c, "i1", 2, "x"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event ev[2] = {conf_ev(1, "a"), conf_ev(2, "b")};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = 2;
	r.history = ev;
	r.n_history = 2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_execution_info *ex = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ex[0].execution_id, 1);
	assert_int_equal(ex[0].n_events, 1);
	assert_int_equal(ex[0].created_ms, CONF_T0);
	assert_int_equal(ex[1].execution_id, 2);
	assert_int_equal(ex[1].n_events, 2);
	assert_int_equal(ex[1].created_ms, CONF_T0 + 10);
	assert_int_equal(ex[1].status, DURQ_STATUS_RUNNING);
	durq_execution_list_free(ex);
}

static void test_queue_depths_count_each_state(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 1, "y"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i2", 1, "x"), DURQ_OK);
	assert_int_equal(conf_msg_at(c, "i3", 1, "t", CONF_T0 + 1000, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "a", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "b", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, "q", "c", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, "q", "d", 0, 500), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.orch_ready, 1);
	assert_int_equal(d.orch_delayed, 1);
	assert_int_equal(d.orch_leased, 2);
	assert_int_equal(d.instances_locked, 1);
	assert_int_equal(d.work_ready, 2);
	assert_int_equal(d.work_delayed, 1);
	assert_int_equal(d.work_leased, 1);
	assert_int_equal(d.dead_letters, 0);
	assert_int_equal(durq_queue_depths_get(c->db, &d, "q"), DURQ_OK);
	assert_int_equal(d.work_ready, 1);
	assert_int_equal(d.work_delayed, 1);
	assert_int_equal(d.work_leased, 0);
	conf_advance(c, 1000); /* delays pass: delayed become ready */
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.orch_delayed, 0);
	assert_int_equal(d.work_delayed, 0);
	assert_int_equal(d.work_ready, 3);
	durq_turn_free(t);
	durq_work_items_free(it, 1);
}

static void test_queue_depths_count_expired_lease_as_ready(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "a", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	conf_advance(c, 1001);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_leased, 0);
	assert_int_equal(d.work_ready, 1);
	durq_work_items_free(it, 1);
}

static void test_instance_delete_removes_instance_history_and_queues(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "keep");
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_work w = conf_w(NULL, "act");
	w.instance_id = "i1";
	w.execution_id = 1;
	w.activity_id = 1;
	durq_message timer = conf_m("i1", 6, "timer");
	timer.visible_at_ms = CONF_T0 + 1000;
	durq_event ev = conf_ev(1, "s");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &ev;
	r.n_history = 1;
	r.work = &w;
	r.n_work = 1;
	r.messages = &timer;
	r.n_messages = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_msg(c, "i1", 2, "pending-event"), DURQ_OK);

	assert_int_equal(durq_instance_delete(c->db, "i1"), DURQ_OK);
	assert_int_equal(conf_status(c, "i1"), -1);
	durq_event *h = NULL;
	size_t n = 0;
	assert_int_equal(durq_history_read(c->db, &h, &n, "i1", 0), DURQ_ENOTFOUND);
	durq_execution_info *ex = NULL;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_ENOTFOUND);
	conf_advance(c, 2000);
	conf_assert_no_turn(c);        /* pending event and timer are gone */
	conf_assert_no_work(c, NULL);  /* its activity is gone */
	assert_int_equal(conf_status(c, "keep"), DURQ_STATUS_RUNNING);
	assert_int_equal(conf_history(c, "keep", 0, &h), 1);
	durq_events_free(h, 1);
	assert_int_equal(durq_instance_delete(c->db, "i1"), DURQ_ENOTFOUND);
}

static void test_instance_delete_breaks_inflight_turn(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(durq_instance_delete(c->db, "i1"), DURQ_OK);
	assert_int_equal(conf_ack_event(c, t, 2, "late"), DURQ_ELOCKLOST);
	int64_t until = 0;
	assert_int_equal(durq_orch_renew(c->db, &until, "i1", &t->token, 1000), DURQ_ELOCKLOST);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "i1"), -1); /* the late ack did not resurrect it */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.instances_locked, 0);
	/* the id can be used again from scratch */
	conf_create_instance(c, "i1");
}

static void test_instance_delete_breaks_inflight_activity(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_activity(c, "i1", 1, 1, "a"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_int_equal(durq_instance_delete(c->db, "i1"), DURQ_OK);
	durq_message done = conf_m("i1", 3, "r");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_ELOCKLOST);
	durq_work_items_free(it, 1);
	conf_assert_no_turn(c);
	assert_int_equal(conf_status(c, "i1"), -1);
}

static void make_executions(conf_ctx *c, const char *inst, int count)
{
	conf_create_instance(c, inst);
	for (int e = 2; e <= count; e++) {
		assert_int_equal(conf_msg(c, inst, 2, "can"), DURQ_OK);
		durq_turn *t = conf_turn_for(c, inst);
		durq_event ev = conf_ev(1, "s");
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.execution_id = (uint64_t)e;
		r.history = &ev;
		r.n_history = 1;
		assert_int_equal(durq_orch_ack(c->db, inst, &t->token, &r), DURQ_OK);
		durq_turn_free(t);
	}
}

static void test_execution_prune_deletes_older_executions(void **state)
{
	conf_ctx *c = *state;
	make_executions(c, "i1", 4);
	size_t pruned = 0;
	assert_int_equal(durq_execution_prune(c->db, &pruned, "i1", 3), DURQ_OK);
	assert_int_equal(pruned, 2);
	durq_execution_info *ex = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ex[0].execution_id, 3);
	assert_int_equal(ex[1].execution_id, 4);
	durq_execution_list_free(ex);
	durq_event *h = NULL;
	int rc = durq_history_read(c->db, &h, &n, "i1", 1);
	assert_true(rc == DURQ_ENOTFOUND || (rc == DURQ_OK && n == 0)); /* pruned: no events */
	if (rc == DURQ_OK)
		durq_events_free(h, n);
	assert_int_equal(conf_history(c, "i1", 3, &h), 1);
	durq_events_free(h, 1);
}

static void test_execution_prune_never_deletes_current(void **state)
{
	conf_ctx *c = *state;
	make_executions(c, "i1", 2);
	size_t pruned = 0;
	assert_int_equal(durq_execution_prune(c->db, &pruned, "i1", 100), DURQ_OK);
	assert_int_equal(pruned, 1);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 1);
	durq_events_free(h, 1);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_int_equal(info->execution_id, 2);
	durq_instance_info_free(info);
	assert_int_equal(durq_execution_prune(c->db, &pruned, "i1", 100), DURQ_OK);
	assert_int_equal(pruned, 0);
	/* the instance still works */
	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->execution_id, 2);
	assert_int_equal(t->n_history, 1);
	assert_int_equal(conf_ack_event(c, t, 2, "e"), DURQ_OK);
	durq_turn_free(t);
}

static void test_execution_prune_unknown_instance_is_enotfound(void **state)
{
	conf_ctx *c = *state;
	size_t pruned = 99;
	assert_int_equal(durq_execution_prune(c->db, &pruned, "nope", 5), DURQ_ENOTFOUND);
}

static void test_stats_count_ops_and_transactions(void **state)
{
	conf_ctx *c = *state;
	durq_stats s0, s1;
	assert_int_equal(durq_stats_get(c->db, &s0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "a", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_ELOCKLOST);
	durq_work_items_free(it, 1);
	assert_int_equal(durq_stats_get(c->db, &s1), DURQ_OK);
	assert_int_equal(s1.ops[DURQ_OP_WORK_ENQUEUE] - s0.ops[DURQ_OP_WORK_ENQUEUE], 1);
	assert_int_equal(s1.ops[DURQ_OP_WORK_CLAIM] - s0.ops[DURQ_OP_WORK_CLAIM], 1);
	assert_int_equal(s1.ops[DURQ_OP_WORK_ACK] - s0.ops[DURQ_OP_WORK_ACK], 2);
	assert_int_equal(s1.op_failures - s0.op_failures, 1);
	assert_true(s1.transactions > s0.transactions);
	assert_true(s1.txn_ops >= s1.transactions);
	assert_non_null(durq_op_kind_name(DURQ_OP_WORK_ACK));
}

static void test_prometheus_reports_needed_size(void **state)
{
	conf_ctx *c = *state;
	size_t needed = 0;
	char small[8];
	int rc = durq_stats_prometheus(c->db, small, sizeof small, &needed);
	assert_true(rc == DURQ_OK || rc == DURQ_ETOOBIG || rc == DURQ_EINVAL);
	assert_true(needed > sizeof small);
	char *buf = malloc(needed + 1);
	assert_non_null(buf);
	assert_int_equal(durq_stats_prometheus(c->db, buf, needed + 1, &needed), DURQ_OK);
	assert_int_equal(strlen(buf), needed);
	assert_non_null(strstr(buf, "durq_"));
	free(buf);
}

static void test_options_get_reports_effective_values(void **state)
{
	conf_opts o = {.max_attempts = 4};
	conf_ctx *c = conf_use(state, &o);
	durq_options got;
	assert_int_equal(durq_options_get(c->db, &got), DURQ_OK);
	assert_int_equal(got.max_attempts, 4);
	assert_int_equal(got.pool_size, 8);      /* defaults filled in */
	assert_int_equal(got.max_batch, 512);
	assert_int_equal(got.backlog, 4096);
	assert_int_equal(got.max_payload, DURQ_DEFAULT_MAX_PAYLOAD);
	assert_int_equal(durq_now(c->db), CONF_T0); /* the injected clock is the handle's clock */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_instance_list_filters_by_status),
		T(test_instance_get_reports_fields),
		T(test_execution_list_reports_each_execution),
		T(test_queue_depths_count_each_state),
		T(test_queue_depths_count_expired_lease_as_ready),
		T(test_instance_delete_removes_instance_history_and_queues),
		T(test_instance_delete_breaks_inflight_turn),
		T(test_instance_delete_breaks_inflight_activity),
		T(test_execution_prune_deletes_older_executions),
		T(test_execution_prune_never_deletes_current),
		T(test_execution_prune_unknown_instance_is_enotfound),
		T(test_stats_count_ops_and_transactions),
		T(test_prometheus_reports_needed_size),
		T(test_options_get_reports_effective_values),
	};
	return cmocka_run_group_tests_name("conf_mgmt", tests, conf_group_setup,
					   conf_group_teardown);
}
