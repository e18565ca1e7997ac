/*
 * conf_pinning.c — capability filtering (issue 10, G4): an execution is pinned to the
 * runtime version of its first ack giving one; a filtered fetch leases only instances that
 * are new, unpinned or pinned inside its range, and skips the others without leasing them.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static int ack_with(conf_ctx *c, const char *inst, uint64_t exec, int64_t rtv)
{
	assert_int_equal(conf_msg(c, inst, 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = exec;
	r.runtime_version = rtv;
	int rc = durq_orch_ack(c->db, inst, &t->token, &r);
	durq_turn_free(t);
	return rc;
}

static int64_t pinned(conf_ctx *c, const char *inst, uint64_t exec)
{
	durq_execution_info *e = NULL;
	assert_int_equal(durq_execution_get(c->db, &e, inst, exec), DURQ_OK);
	int64_t v = e->runtime_version;
	durq_execution_info_free(e);
	return v;
}

static int64_t turn_pin(conf_ctx *c, const char *inst)
{
	assert_int_equal(conf_msg(c, inst, 2, "peek"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	int64_t v = t->runtime_version;
	assert_int_equal(durq_orch_abandon(c->db, inst, &t->token, 0, 1), DURQ_OK);
	durq_turn_free(t);
	return v;
}

static durq_turn_filter range(int64_t lo, int64_t hi)
{
	durq_turn_filter f = DURQ_TURN_FILTER_INIT;
	f.min_runtime_version = lo;
	f.max_runtime_version = hi;
	return f;
}

static void test_first_ack_giving_a_version_pins_the_execution(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(ack_with(c, "i1", 0, 0), DURQ_OK); /* created unpinned */
	assert_int_equal(pinned(c, "i1", 0), 0);
	assert_int_equal(ack_with(c, "i1", 0, 1002003), DURQ_OK);
	assert_int_equal(pinned(c, "i1", 1), 1002003);
	assert_int_equal(ack_with(c, "i1", 0, 2000000), DURQ_OK); /* pinned: stays */
	assert_int_equal(pinned(c, "i1", 1), 1002003);
	assert_int_equal(turn_pin(c, "i1"), 1002003);
	durq_execution_info *l;
	size_t n;
	assert_int_equal(durq_execution_list(c->db, &l, &n, "i1"), DURQ_OK);
	assert_int_equal(l[0].runtime_version, 1002003);
	durq_execution_list_free(l);
}

static void test_continue_as_new_pins_the_new_execution(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(ack_with(c, "i1", 0, 5), DURQ_OK);
	assert_int_equal(ack_with(c, "i1", 2, 7), DURQ_OK);
	assert_int_equal(pinned(c, "i1", 1), 5);
	assert_int_equal(pinned(c, "i1", 2), 7);
	assert_int_equal(turn_pin(c, "i1"), 7);
	assert_int_equal(ack_with(c, "i1", 3, 0), DURQ_OK); /* the new execution: unpinned */
	assert_int_equal(pinned(c, "i1", 3), 0);
	assert_int_equal(turn_pin(c, "i1"), 0);
}

static void test_filtered_fetch_skips_instances_out_of_range(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(ack_with(c, "a", 0, 1), DURQ_OK);
	assert_int_equal(ack_with(c, "b", 0, 2), DURQ_OK);
	assert_int_equal(ack_with(c, "u", 0, 0), DURQ_OK); /* unpinned */
	assert_int_equal(conf_msg(c, "a", 2, "for a"), DURQ_OK);
	assert_int_equal(conf_msg(c, "b", 2, "for b"), DURQ_OK);
	assert_int_equal(conf_msg(c, "u", 2, "for u"), DURQ_OK);
	assert_int_equal(conf_msg(c, "new", 1, "start"), DURQ_OK); /* not created yet */
	durq_turn_filter f = range(2, 3);
	const char *want[] = {"b", "u", "new"};
	for (int i = 0; i < 3; i++) {
		durq_turn *t = NULL;
		assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, &f), DURQ_OK);
		assert_string_equal(t->instance_id, want[i]);
		durq_turn_free(t); /* leases held */
	}
	durq_turn *t = NULL;
	assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, &f), DURQ_EMPTY);
	/* a was never leased: an unfiltered fetch gets it on its first attempt */
	t = conf_turn_for(c, "a");
	assert_int_equal(t->attempt, 1);
	assert_int_equal(t->runtime_version, 1);
	durq_turn_free(t);
}

static void test_expired_lease_out_of_range_is_skipped(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(ack_with(c, "a", 0, 1), DURQ_OK);
	assert_int_equal(conf_msg(c, "a", 2, "x"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "a");
	durq_turn_free(t);
	conf_advance(c, CONF_LEASE + 1); /* the worker on version 1 died */
	durq_turn_filter f = range(2, 9);
	assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, &f), DURQ_EMPTY);
	f = range(1, 1);
	assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, &f), DURQ_OK);
	assert_string_equal(t->instance_id, "a");
	assert_int_equal(t->attempt, 2);
	durq_turn_free(t);
}

static void test_bad_ranges_and_versions_are_einval(void **state)
{
	conf_ctx *c = *state;
	durq_turn *t = NULL;
	durq_turn_filter f = range(5, 4);
	assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, &f), DURQ_EINVAL);
	f = range(-1, 4);
	assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, &f), DURQ_EINVAL);
	f = range(1, 4);
	f.version = 9;
	assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, &f), DURQ_EINVAL);
	assert_int_equal(durq_orch_fetch_filtered(c->db, &t, CONF_LEASE, 0, NULL), DURQ_EINVAL);
	f = range(1, 4);
	assert_int_equal(durq_orch_fetch_filtered(c->db, NULL, CONF_LEASE, 0, &f), DURQ_EINVAL);
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.runtime_version = -3;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r.runtime_version = 3;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(pinned(c, "i1", 0), 3);
}

static void test_async_ack_pins(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.runtime_version = 42;
	assert_int_equal(durq_orch_ack_async(c->db, "i1", &t->token, &r, NULL), DURQ_OK);
	assert_int_equal(durq_flush(c->db, -1), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(pinned(c, "i1", 0), 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_first_ack_giving_a_version_pins_the_execution),
		T(test_continue_as_new_pins_the_new_execution),
		T(test_filtered_fetch_skips_instances_out_of_range),
		T(test_expired_lease_out_of_range_is_skipped),
		T(test_bad_ranges_and_versions_are_einval),
		T(test_async_ack_pins),
	};
	return cmocka_run_group_tests_name("conf_pinning", tests, conf_group_setup,
					   conf_group_teardown);
}
