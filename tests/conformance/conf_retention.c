/*
 * conf_retention.c — bulk retention and cheap reads (issue 10): delete instances finished
 * before a time with a limit, prune executions by keep-last and/or completion time, list
 * instances by filter with keyset paging (G9); system-wide counts (G11); custom status
 * polled by version (G12).
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static int turn(conf_ctx *c, const char *inst, const durq_turn_result *r)
{
	assert_int_equal(conf_msg(c, inst, 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	int rc = durq_orch_ack(c->db, inst, &t->token, r);
	durq_turn_free(t);
	return rc;
}

static void create(conf_ctx *c, const char *inst, const char *name, const char *version,
		   const char *parent)
{
	durq_event e = conf_ev(1, "start");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = name;
	r.version_tag = version;
	r.parent_id = parent;
	r.history = &e;
	r.n_history = 1;
	assert_int_equal(turn(c, inst, &r), DURQ_OK);
}

static void finish(conf_ctx *c, const char *inst, int status)
{
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = status;
	assert_int_equal(turn(c, inst, &r), DURQ_OK);
}

static void continue_as_new(conf_ctx *c, const char *inst, uint64_t exec)
{
	durq_event e = conf_ev(1, "again");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = exec;
	r.history = &e;
	r.n_history = 1;
	assert_int_equal(turn(c, inst, &r), DURQ_OK);
}

/* ---- purge ---- */

static void test_purge_deletes_instances_finished_before_the_time(void **state)
{
	conf_ctx *c = *state;
	create(c, "a", "wf", "v1", NULL);
	create(c, "b", "wf", "v1", NULL);
	create(c, "c", "wf", "v1", NULL);
	create(c, "d", "wf", "v1", NULL);
	conf_advance(c, 1000);
	finish(c, "a", DURQ_STATUS_COMPLETED);
	conf_advance(c, 1000);
	finish(c, "b", DURQ_STATUS_FAILED);
	int64_t cut = conf_time(c) + 500;
	conf_advance(c, 1000);
	finish(c, "d", DURQ_STATUS_TERMINATED);
	durq_delete_counts k;
	assert_int_equal(durq_instance_purge(c->db, &k, cut, 100), DURQ_OK);
	assert_int_equal(k.instances, 2);
	assert_int_equal(k.executions, 2);
	assert_int_equal(k.events, 2);
	assert_int_equal(conf_status(c, "a"), -1);
	assert_int_equal(conf_status(c, "b"), -1);
	assert_int_equal(conf_status(c, "c"), DURQ_STATUS_RUNNING); /* never a running one */
	assert_int_equal(conf_status(c, "d"), DURQ_STATUS_TERMINATED);
	assert_int_equal(durq_instance_purge(c->db, &k, cut, 100), DURQ_OK);
	assert_int_equal(k.instances, 0);
}

static void test_purge_takes_the_oldest_first_up_to_the_limit(void **state)
{
	conf_ctx *c = *state;
	const char *ids[] = {"z", "y", "x"}; /* finished in this order: not id order */
	for (int i = 0; i < 3; i++) {
		create(c, ids[i], "wf", "v1", NULL);
		conf_advance(c, 10);
		finish(c, ids[i], DURQ_STATUS_COMPLETED);
	}
	durq_delete_counts k;
	assert_int_equal(durq_instance_purge(c->db, &k, conf_time(c) + 1, 2), DURQ_OK);
	assert_int_equal(k.instances, 2);
	assert_int_equal(conf_status(c, "z"), -1);
	assert_int_equal(conf_status(c, "y"), -1);
	assert_int_equal(conf_status(c, "x"), DURQ_STATUS_COMPLETED);
}

static void test_purge_cascades_and_skips_trees_still_running(void **state)
{
	conf_ctx *c = *state;
	create(c, "p1", "wf", "v1", NULL);
	create(c, "c1", "sub", "v1", "p1");
	finish(c, "c1", DURQ_STATUS_COMPLETED);
	finish(c, "p1", DURQ_STATUS_COMPLETED);
	create(c, "p2", "wf", "v1", NULL);
	create(c, "c2", "sub", "v1", "p2");
	finish(c, "p2", DURQ_STATUS_COMPLETED); /* its child still runs */
	conf_advance(c, 10);
	durq_delete_counts k;
	assert_int_equal(durq_instance_purge(c->db, &k, conf_time(c), 100), DURQ_OK);
	assert_int_equal(k.instances, 2);
	assert_int_equal(conf_status(c, "p1"), -1);
	assert_int_equal(conf_status(c, "c1"), -1);
	assert_int_equal(conf_status(c, "p2"), DURQ_STATUS_COMPLETED);
	assert_int_equal(conf_status(c, "c2"), DURQ_STATUS_RUNNING);
}

static void test_purge_bad_input_is_einval(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(durq_instance_purge(c->db, NULL, 0, 10), DURQ_EINVAL);
	assert_int_equal(durq_instance_purge(c->db, NULL, 100, 0), DURQ_EINVAL);
	assert_int_equal(durq_instance_purge(c->db, NULL, 100, DURQ_INSTANCE_LIST_MAX + 1),
			 DURQ_EINVAL);
	assert_int_equal(durq_instance_purge_async(c->db, -5, 10, NULL), DURQ_EINVAL);
}

static void test_purge_async(void **state)
{
	conf_ctx *c = *state;
	create(c, "a", "wf", "v1", NULL);
	finish(c, "a", DURQ_STATUS_COMPLETED);
	assert_int_equal(durq_instance_purge_async(c->db, conf_time(c) + 1, 10, NULL), DURQ_OK);
	assert_int_equal(durq_flush(c->db, -1), DURQ_OK);
	assert_int_equal(conf_status(c, "a"), -1);
}

/* ---- prune ---- */

static size_t executions(conf_ctx *c, const char *inst, uint64_t *first)
{
	durq_execution_info *l = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &l, &n, inst), DURQ_OK);
	*first = n ? l[0].execution_id : 0;
	durq_execution_list_free(l);
	return n;
}

static void test_prune_keeps_the_last_n(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", "wf", "v1", NULL);
	for (uint64_t e = 2; e <= 5; e++)
		continue_as_new(c, "i1", e);
	durq_prune_options o = DURQ_PRUNE_OPTIONS_INIT;
	o.keep_last = 2;
	size_t pruned = 0;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", &o), DURQ_OK);
	assert_int_equal(pruned, 3);
	uint64_t first;
	assert_int_equal(executions(c, "i1", &first), 2);
	assert_int_equal(first, 4);
	durq_event *ev;
	assert_int_equal(conf_history(c, "i1", 1, &ev), 0);
	o.keep_last = 1; /* never the current one, whatever the bound */
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", &o), DURQ_OK);
	assert_int_equal(pruned, 1);
	assert_int_equal(executions(c, "i1", &first), 1);
	assert_int_equal(first, 5);
}

static void test_prune_by_completion_time(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", "wf", "v1", NULL);
	conf_advance(c, 100);
	continue_as_new(c, "i1", 2); /* execution 1 ends now */
	int64_t cut = conf_time(c) + 50;
	conf_advance(c, 100);
	continue_as_new(c, "i1", 3); /* execution 2 ends after the cut */
	durq_prune_options o = DURQ_PRUNE_OPTIONS_INIT;
	o.completed_before_ms = cut;
	size_t pruned = 0;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", &o), DURQ_OK);
	assert_int_equal(pruned, 1);
	uint64_t first;
	assert_int_equal(executions(c, "i1", &first), 2);
	assert_int_equal(first, 2);
	/* both bounds: each must hold */
	o.completed_before_ms = conf_time(c) + 1;
	o.keep_last = 3;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", &o), DURQ_OK);
	assert_int_equal(pruned, 0);
}

static void test_prune_every_instance(void **state)
{
	conf_ctx *c = *state;
	const char *ids[] = {"a", "b"};
	for (int i = 0; i < 2; i++) {
		create(c, ids[i], "wf", "v1", NULL);
		continue_as_new(c, ids[i], 2);
		continue_as_new(c, ids[i], 3);
	}
	durq_prune_options o = DURQ_PRUNE_OPTIONS_INIT;
	o.keep_last = 1;
	size_t pruned = 0;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, NULL, &o), DURQ_OK);
	assert_int_equal(pruned, 4);
	durq_system_counts k;
	assert_int_equal(durq_system_counts_get(c->db, &k), DURQ_OK);
	assert_int_equal(k.executions, 2);
	assert_int_equal(k.events, 2);
}

static void prune_done(void *ctx, const durq_completion *k)
{
	*(size_t *)ctx = k->rc == DURQ_OK ? k->count : (size_t)-1;
}

static void test_prune_async_reports_the_count(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", "wf", "v1", NULL);
	continue_as_new(c, "i1", 2);
	continue_as_new(c, "i1", 3);
	char id[8] = "i1";
	durq_prune_options o = DURQ_PRUNE_OPTIONS_INIT;
	o.keep_last = 1;
	size_t count = 0;
	durq_async a = {.done = prune_done, .ctx = &count};
	assert_int_equal(durq_execution_prune_ex_async(c->db, id, &o, &a), DURQ_OK);
	memcpy(id, "zz", 3); /* copied at submit */
	assert_int_equal(durq_flush(c->db, -1), DURQ_OK);
	assert_int_equal(count, 2);
	o.keep_last = 0;
	assert_int_equal(durq_execution_prune_ex_async(c->db, "i1", &o, NULL), DURQ_EINVAL);
}

static void test_prune_bad_input(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", "wf", "v1", NULL);
	durq_prune_options o = DURQ_PRUNE_OPTIONS_INIT;
	size_t pruned;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", NULL), DURQ_EINVAL);
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", &o), DURQ_EINVAL);
	o.keep_last = 1;
	o.version = 99;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", &o), DURQ_EINVAL);
	o.version = DURQ_PRUNE_OPTIONS_VERSION;
	o.completed_before_ms = -1;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "i1", &o), DURQ_EINVAL);
	o.completed_before_ms = 0;
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "nobody", &o), DURQ_ENOTFOUND);
	assert_int_equal(durq_execution_prune_ex(c->db, &pruned, "", &o), DURQ_EINVAL);
}

/* ---- filtered list ---- */

static size_t list(conf_ctx *c, const durq_instance_filter *f, const char *after, size_t max,
		   char ***ids)
{
	size_t n = 0;
	int rc = durq_instance_list_filter(c->db, ids, &n, f, after, max);
	if (rc != DURQ_OK)
		fail_msg("list_filter: %s: %s", durq_error_name(rc), durq_error_last());
	return n;
}

static void assert_list(conf_ctx *c, const durq_instance_filter *f, const char *want)
{
	char **ids = NULL, got[256] = "";
	size_t n = list(c, f, NULL, 0, &ids);
	for (size_t i = 0; i < n; i++) {
		strcat(got, ids[i]);
		if (i + 1 < n)
			strcat(got, ",");
	}
	durq_strings_free(ids, n);
	assert_string_equal(got, want);
}

static void test_list_by_filter_and_page(void **state)
{
	conf_ctx *c = *state;
	int64_t t0 = conf_time(c);
	create(c, "a", "wf", "v1", NULL);
	conf_advance(c, 100);
	create(c, "b", "wf", "v2", NULL);
	create(c, "c", "other", "v1", NULL);
	conf_advance(c, 100);
	create(c, "d", "wf", "v1", NULL);
	finish(c, "b", DURQ_STATUS_COMPLETED);
	int64_t t1 = conf_time(c);
	conf_advance(c, 100);
	finish(c, "d", DURQ_STATUS_FAILED);
	durq_instance_filter f = DURQ_INSTANCE_FILTER_INIT;
	assert_list(c, &f, "a,b,c,d");
	assert_list(c, NULL, "a,b,c,d");
	f.name = "wf";
	assert_list(c, &f, "a,b,d");
	f.version_tag = "v1";
	assert_list(c, &f, "a,d");
	f = (durq_instance_filter)DURQ_INSTANCE_FILTER_INIT;
	f.status = DURQ_STATUS_RUNNING;
	assert_list(c, &f, "a,c");
	f.status = 0;
	f.created_from_ms = t0 + 100;
	f.created_before_ms = t0 + 200;
	assert_list(c, &f, "b,c");
	f = (durq_instance_filter)DURQ_INSTANCE_FILTER_INIT;
	f.completed_before_ms = t1 + 1;
	assert_list(c, &f, "b");
	f.completed_before_ms = 0;
	f.completed_from_ms = t1 + 1;
	assert_list(c, &f, "d");
	/* keyset pages */
	f = (durq_instance_filter)DURQ_INSTANCE_FILTER_INIT;
	char **ids = NULL;
	size_t n = list(c, &f, NULL, 3, &ids);
	assert_int_equal(n, 3);
	assert_string_equal(ids[2], "c");
	durq_strings_free(ids, n);
	n = list(c, &f, "c", 3, &ids);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "d");
	durq_strings_free(ids, n);
}

static void test_list_filter_bad_input(void **state)
{
	conf_ctx *c = *state;
	char **ids;
	size_t n;
	durq_instance_filter f = DURQ_INSTANCE_FILTER_INIT;
	f.version = 7;
	assert_int_equal(durq_instance_list_filter(c->db, &ids, &n, &f, NULL, 0), DURQ_EINVAL);
	f = (durq_instance_filter)DURQ_INSTANCE_FILTER_INIT;
	f.status = 42;
	assert_int_equal(durq_instance_list_filter(c->db, &ids, &n, &f, NULL, 0), DURQ_EINVAL);
	f.status = 0;
	f.created_from_ms = 10;
	f.created_before_ms = 10;
	assert_int_equal(durq_instance_list_filter(c->db, &ids, &n, &f, NULL, 0), DURQ_EINVAL);
	f.created_before_ms = 0;
	f.completed_from_ms = -1;
	assert_int_equal(durq_instance_list_filter(c->db, &ids, &n, &f, NULL, 0), DURQ_EINVAL);
	assert_int_equal(durq_instance_list_filter(c->db, NULL, &n, NULL, NULL, 0), DURQ_EINVAL);
	assert_int_equal(durq_instance_list_filter(c->db, &ids, &n, NULL, "", 0), DURQ_EINVAL);
}

/* ---- G11, G12 ---- */

static void test_system_counts(void **state)
{
	conf_ctx *c = *state;
	durq_system_counts k;
	assert_int_equal(durq_system_counts_get(c->db, &k), DURQ_OK);
	assert_int_equal(k.version, DURQ_SYSTEM_COUNTS_VERSION);
	assert_int_equal(k.instances, 0);
	create(c, "a", "wf", "v1", NULL);
	create(c, "b", "wf", "v1", NULL);
	create(c, "c", "wf", "v1", NULL);
	create(c, "d", "wf", "v1", NULL);
	create(c, "e", "wf", "v1", NULL);
	finish(c, "b", DURQ_STATUS_COMPLETED);
	finish(c, "c", DURQ_STATUS_FAILED);
	finish(c, "d", DURQ_STATUS_TERMINATED);
	continue_as_new(c, "a", 2);
	assert_int_equal(durq_system_counts_get(c->db, &k), DURQ_OK);
	assert_int_equal(k.instances, 5);
	assert_int_equal(k.running, 2);
	assert_int_equal(k.completed, 1);
	assert_int_equal(k.failed, 1);
	assert_int_equal(k.terminated, 1);
	assert_int_equal(k.executions, 6);
	assert_int_equal(k.events, 6);
	assert_int_equal(durq_system_counts_get(c->db, NULL), DURQ_EINVAL);
}

static void set_cs(conf_ctx *c, const char *inst, const char *v)
{
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.set_custom_status = 1;
	r.custom_status = v;
	r.custom_status_len = v ? strlen(v) : 0;
	assert_int_equal(turn(c, inst, &r), DURQ_OK);
}

static void test_custom_status_polled_by_version(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", "wf", "v1", NULL);
	void *v = NULL;
	size_t len = 1;
	uint64_t ver = 99;
	assert_int_equal(durq_custom_status_get(c->db, &v, &len, &ver, "i1", 0), DURQ_EMPTY);
	assert_null(v);
	assert_int_equal(ver, 0);
	set_cs(c, "i1", "step 1");
	assert_int_equal(durq_custom_status_get(c->db, &v, &len, &ver, "i1", 0), DURQ_OK);
	assert_payload(v, len, "step 1");
	assert_int_equal(ver, 1);
	free(v);
	assert_int_equal(durq_custom_status_get(c->db, &v, &len, &ver, "i1", 1), DURQ_EMPTY);
	assert_null(v);
	assert_int_equal(len, 0);
	assert_int_equal(ver, 1);
	set_cs(c, "i1", "step 2");
	set_cs(c, "i1", NULL); /* cleared: a new version whose value is NULL */
	assert_int_equal(durq_custom_status_get(c->db, &v, &len, &ver, "i1", 1), DURQ_OK);
	assert_null(v);
	assert_int_equal(len, 0);
	assert_int_equal(ver, 3);
	assert_int_equal(durq_custom_status_get(c->db, &v, &len, &ver, "nobody", 0),
			 DURQ_ENOTFOUND);
	assert_int_equal(durq_custom_status_get(c->db, NULL, &len, &ver, "i1", 0), DURQ_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_purge_deletes_instances_finished_before_the_time),
		T(test_purge_takes_the_oldest_first_up_to_the_limit),
		T(test_purge_cascades_and_skips_trees_still_running),
		T(test_purge_bad_input_is_einval),
		T(test_purge_async),
		T(test_prune_keeps_the_last_n),
		T(test_prune_by_completion_time),
		T(test_prune_every_instance),
		T(test_prune_async_reports_the_count),
		T(test_prune_bad_input),
		T(test_list_by_filter_and_page),
		T(test_list_filter_bad_input),
		T(test_system_counts),
		T(test_custom_status_polled_by_version),
	};
	return cmocka_run_group_tests_name("conf_retention", tests, conf_group_setup,
					   conf_group_teardown);
}
