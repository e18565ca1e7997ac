/*
 * conf_deletion.c — deleting instances safely (issue 10, G8): a running instance or a
 * sub-orchestration is refused unless forced, a delete cascades to every descendant, many
 * instances go in one transaction or none does, and the call reports what went; the
 * hierarchy is readable (children, tree).
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

/* Create inst (optionally a child of parent) with one history event; status RUNNING. */
static void create(conf_ctx *c, const char *inst, const char *parent)
{
	assert_int_equal(conf_msg(c, inst, 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_event e = conf_ev(1, "start");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.parent_id = parent;
	r.history = &e;
	r.n_history = 1;
	assert_int_equal(durq_orch_ack(c->db, inst, &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

static void finish(conf_ctx *c, const char *inst, int status)
{
	assert_int_equal(conf_msg(c, inst, 2, "end"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = status;
	assert_int_equal(durq_orch_ack(c->db, inst, &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

static void create_done(conf_ctx *c, const char *inst, const char *parent)
{
	create(c, inst, parent);
	finish(c, inst, DURQ_STATUS_COMPLETED);
}

static int del(conf_ctx *c, durq_delete_counts *k, unsigned flags, size_t n, ...)
{
	const char *ids[8];
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		ids[i] = va_arg(ap, const char *);
	va_end(ap);
	int rc = durq_instance_delete_many(c->db, k, ids, n, flags);
	if (rc < 0)
		print_message("delete_many: %s: %s\n", durq_error_name(rc), durq_error_last());
	return rc;
}

static void test_running_instance_is_refused_unless_forced(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", NULL);
	durq_delete_counts k;
	assert_int_equal(del(c, &k, 0, 1, "i1"), DURQ_ECONFLICT);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_RUNNING);
	assert_int_equal(del(c, &k, DURQ_DELETE_FORCE, 1, "i1"), DURQ_OK);
	assert_int_equal(k.version, DURQ_DELETE_COUNTS_VERSION);
	assert_int_equal(k.instances, 1);
	assert_int_equal(k.executions, 1);
	assert_int_equal(k.events, 1);
	assert_int_equal(k.messages, 0);
	assert_int_equal(conf_status(c, "i1"), -1);
}

static void test_finished_instance_is_deleted_with_counts(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", NULL);
	finish(c, "i1", DURQ_STATUS_FAILED);
	assert_int_equal(conf_msg(c, "i1", 3, "late"), DURQ_OK); /* a queued message goes too */
	durq_work w = conf_w(NULL, "act");
	w.instance_id = "i1";
	w.execution_id = 1;
	w.activity_id = 9;
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_OK);
	durq_delete_counts k;
	assert_int_equal(del(c, &k, 0, 1, "i1"), DURQ_OK);
	assert_int_equal(k.instances, 1);
	assert_int_equal(k.executions, 1);
	assert_int_equal(k.events, 1);
	assert_int_equal(k.messages, 2);
	conf_assert_no_turn(c);
	conf_assert_no_work(c, NULL);
}

static void test_sub_orchestration_is_refused_directly_unless_forced(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "p", NULL);
	create_done(c, "c", "p");
	assert_int_equal(del(c, NULL, 0, 1, "c"), DURQ_ECONFLICT);
	assert_int_equal(conf_status(c, "c"), DURQ_STATUS_COMPLETED);
	assert_int_equal(del(c, NULL, DURQ_DELETE_FORCE, 1, "c"), DURQ_OK);
	assert_int_equal(conf_status(c, "c"), -1);
	assert_int_equal(conf_status(c, "p"), DURQ_STATUS_COMPLETED);
}

static void test_child_named_with_its_parent_is_allowed(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "p", NULL);
	create_done(c, "c", "p");
	durq_delete_counts k;
	assert_int_equal(del(c, &k, 0, 2, "c", "p"), DURQ_OK);
	assert_int_equal(k.instances, 2);
}

static void test_orphan_child_can_be_deleted_directly(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "p", NULL);
	create_done(c, "c", "p");
	assert_int_equal(durq_instance_delete(c->db, "p"), DURQ_OK); /* leaves its child */
	assert_int_equal(conf_status(c, "c"), DURQ_STATUS_COMPLETED);
	assert_int_equal(del(c, NULL, 0, 1, "c"), DURQ_OK);
}

static void test_delete_cascades_to_every_descendant(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "p", NULL);
	create_done(c, "c1", "p");
	create_done(c, "c2", "p");
	create_done(c, "g", "c1");
	create_done(c, "other", NULL);
	assert_int_equal(conf_msg(c, "g", 3, "late"), DURQ_OK);
	durq_delete_counts k;
	assert_int_equal(del(c, &k, 0, 1, "p"), DURQ_OK);
	assert_int_equal(k.instances, 4);
	assert_int_equal(k.executions, 4);
	assert_int_equal(k.events, 4);
	assert_int_equal(k.messages, 1);
	const char *gone[] = {"p", "c1", "c2", "g"};
	for (int i = 0; i < 4; i++)
		assert_int_equal(conf_status(c, gone[i]), -1);
	assert_int_equal(conf_status(c, "other"), DURQ_STATUS_COMPLETED);
	conf_assert_no_turn(c);
}

static void test_running_descendant_blocks_the_cascade_unless_forced(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "p", NULL);
	create(c, "c", "p");
	assert_int_equal(del(c, NULL, 0, 1, "p"), DURQ_ECONFLICT);
	assert_int_equal(conf_status(c, "p"), DURQ_STATUS_COMPLETED);
	assert_int_equal(conf_status(c, "c"), DURQ_STATUS_RUNNING);
	durq_delete_counts k;
	assert_int_equal(del(c, &k, DURQ_DELETE_FORCE, 1, "p"), DURQ_OK);
	assert_int_equal(k.instances, 2);
	assert_int_equal(conf_status(c, "c"), -1);
}

static void test_delete_many_is_all_or_nothing(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "a", NULL);
	create(c, "b", NULL);
	assert_int_equal(del(c, NULL, 0, 2, "a", "b"), DURQ_ECONFLICT);
	assert_int_equal(del(c, NULL, DURQ_DELETE_FORCE, 2, "a", "nope"), DURQ_ENOTFOUND);
	assert_int_equal(conf_status(c, "a"), DURQ_STATUS_COMPLETED);
	assert_int_equal(conf_status(c, "b"), DURQ_STATUS_RUNNING);
	durq_delete_counts k;
	assert_int_equal(del(c, &k, DURQ_DELETE_FORCE, 2, "a", "b"), DURQ_OK);
	assert_int_equal(k.instances, 2);
}

static void test_lease_of_a_deleted_instance_is_lost(void **state)
{
	conf_ctx *c = *state;
	create(c, "i1", NULL);
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(del(c, NULL, DURQ_DELETE_FORCE, 1, "i1"), DURQ_OK);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ELOCKLOST);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "i1"), -1);
}

static void test_bad_input_is_refused(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "a", NULL);
	const char *ids[1] = {"a"};
	assert_int_equal(durq_instance_delete_many(c->db, NULL, NULL, 1, 0), DURQ_EINVAL);
	assert_int_equal(durq_instance_delete_many(c->db, NULL, ids, 0, 0), DURQ_EINVAL);
	assert_int_equal(durq_instance_delete_many(c->db, NULL, ids, 1, 0x10), DURQ_EINVAL);
	const char *bad[2] = {"a", ""};
	assert_int_equal(durq_instance_delete_many(c->db, NULL, bad, 2, 0), DURQ_EINVAL);
	size_t many = DURQ_DEFAULT_MAX_TURN_ENTRIES + 1;
	const char **lots = calloc(many, sizeof(*lots));
	assert_non_null(lots);
	for (size_t i = 0; i < many; i++)
		lots[i] = "a";
	assert_int_equal(durq_instance_delete_many(c->db, NULL, lots, many, 0), DURQ_ETOOBIG);
	free(lots);
	assert_int_equal(conf_status(c, "a"), DURQ_STATUS_COMPLETED);
}

static void count_done(void *ctx, const durq_completion *k)
{
	*(size_t *)ctx = k->rc == DURQ_OK ? k->count : (size_t)-1;
}

static void test_delete_many_async_reports_the_count(void **state)
{
	conf_ctx *c = *state;
	create_done(c, "p", NULL);
	create_done(c, "c", "p");
	char p[2] = "p";
	const char *ids[1] = {p};
	size_t count = 0;
	durq_async a = {.done = count_done, .ctx = &count};
	assert_int_equal(durq_instance_delete_many_async(c->db, ids, 1, 0, &a), DURQ_OK);
	p[0] = 'x'; /* copied at submit */
	assert_int_equal(durq_flush(c->db, -1), DURQ_OK);
	assert_int_equal(count, 2);
	assert_int_equal(conf_status(c, "p"), -1);
}

static void assert_ids(char **ids, size_t n, const char *const *want, size_t nwant)
{
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(ids[i], want[i]);
}

static void test_children_and_tree(void **state)
{
	conf_ctx *c = *state;
	create(c, "p", NULL);
	create(c, "b", "p");
	create(c, "a", "p");
	create(c, "a1", "a");
	create(c, "b1", "b");
	create(c, "b0", "b");
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(durq_instance_children(c->db, &ids, &n, "p"), DURQ_OK);
	const char *kids[] = {"a", "b"};
	assert_ids(ids, n, kids, 2);
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_tree(c->db, &ids, &n, "p"), DURQ_OK);
	const char *tree[] = {"p", "a", "b", "a1", "b0", "b1"};
	assert_ids(ids, n, tree, 6);
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_tree(c->db, &ids, &n, "b1"), DURQ_OK);
	assert_ids(ids, n, (const char *const[]){"b1"}, 1);
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_children(c->db, &ids, &n, "a1"), DURQ_OK);
	assert_int_equal(n, 0);
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_tree(c->db, &ids, &n, "nobody"), DURQ_ENOTFOUND);
	assert_int_equal(durq_instance_children(c->db, &ids, &n, NULL), DURQ_EINVAL);
	assert_int_equal(durq_instance_tree(c->db, NULL, &n, "p"), DURQ_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_running_instance_is_refused_unless_forced),
		T(test_finished_instance_is_deleted_with_counts),
		T(test_sub_orchestration_is_refused_directly_unless_forced),
		T(test_child_named_with_its_parent_is_allowed),
		T(test_orphan_child_can_be_deleted_directly),
		T(test_delete_cascades_to_every_descendant),
		T(test_running_descendant_blocks_the_cascade_unless_forced),
		T(test_delete_many_is_all_or_nothing),
		T(test_lease_of_a_deleted_instance_is_lost),
		T(test_bad_input_is_refused),
		T(test_delete_many_async_reports_the_count),
		T(test_children_and_tree),
	};
	return cmocka_run_group_tests_name("conf_deletion", tests, conf_group_setup,
					   conf_group_teardown);
}
