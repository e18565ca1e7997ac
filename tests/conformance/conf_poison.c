/*
 * conf_poison.c — design.md §2.3–2.5: attempt counts (start at 1, per message, max over a
 * turn, incremented on refetch and on lease expiry, ignore_attempt never below 0) and
 * dead-lettering after max_attempts by a path that needs no live lease.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void test_work_attempt_starts_at_one_and_increments(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(it->attempt, 1);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_OK);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(it->attempt, 2); /* refetch after abandon */
	durq_work_items_free(it, 1);
	conf_advance(c, 1001);
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(it->attempt, 3); /* refetch after lease expiry */
	durq_work_items_free(it, 1);
}

static void test_work_attempt_is_per_item(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "old", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
		assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_OK);
		durq_work_items_free(it, 1);
	}
	assert_int_equal(conf_work(c, NULL, "new", 0, 0), DURQ_OK);
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 2, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 2);
	assert_payload(it[0].payload, it[0].payload_len, "old");
	assert_int_equal(it[0].attempt, 3);
	assert_int_equal(it[1].attempt, 1);
	durq_work_items_free(it, n);
}

static void test_turn_attempt_is_max_over_messages(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "old"), DURQ_OK);
	durq_turn *t = NULL;
	for (int i = 0; i < 2; i++) {
		t = conf_turn_for(c, "i1");
		assert_int_equal(t->attempt, i + 1);
		assert_int_equal(durq_orch_abandon(c->db, "i1", &t->token, 0, 0), DURQ_OK);
		durq_turn_free(t);
	}
	assert_int_equal(conf_msg(c, "i1", 2, "new"), DURQ_OK);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 2);
	assert_int_equal(t->messages[0].attempt, 3);
	assert_int_equal(t->messages[1].attempt, 1);
	assert_int_equal(t->attempt, 3);
	durq_turn_free(t);
}

static void test_turn_attempt_increments_on_lease_expiry(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	for (int i = 1; i <= 3; i++) {
		durq_turn *t = NULL;
		assert_int_equal(conf_turn(c, &t, 1000), DURQ_OK);
		assert_int_equal(t->attempt, i);
		assert_int_equal(t->messages[0].attempt, i);
		durq_turn_free(t);
		conf_advance(c, 1001);
	}
}

static void test_ignore_attempt_undoes_this_delivery(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	conf_advance(c, 1001);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(it->attempt, 2);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 1), DURQ_OK);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(it->attempt, 2); /* the ignored delivery did not count */
	durq_work_items_free(it, 1);
}

static void test_ignore_attempt_never_goes_below_zero_nor_poisons(void **state)
{
	conf_opts o = {.max_attempts = 3};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	for (int i = 0; i < 10; i++) {
		durq_work_item *it = NULL;
		assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
		assert_int_equal(it->attempt, 1);
		assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 1), DURQ_OK);
		durq_work_items_free(it, 1);
	}
	assert_int_equal(conf_dead_count(c), 0);
	/* back to normal counting: 1, 2, 3 then dead */
	for (int i = 1; i <= 3; i++) {
		durq_work_item *it = NULL;
		assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
		assert_int_equal(it->attempt, i);
		assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_OK);
		durq_work_items_free(it, 1);
	}
	conf_assert_no_work(c, NULL);
	assert_int_equal(conf_dead_count(c), 1);
}

static void test_orch_ignore_attempt_undoes_this_delivery(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	for (int i = 0; i < 3; i++) {
		durq_turn *t = conf_turn_for(c, "i1");
		assert_int_equal(t->attempt, 1);
		assert_int_equal(durq_orch_abandon(c->db, "i1", &t->token, 0, 1), DURQ_OK);
		durq_turn_free(t);
	}
}

static void test_work_dead_lettered_after_max_attempts_by_abandon(void **state)
{
	conf_opts o = {.max_attempts = 3};
	conf_ctx *c = conf_use(state, &o);
	durq_work w = conf_w("q", "poison");
	w.instance_id = "i1";
	w.execution_id = 1;
	w.activity_id = 9;
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_OK);
	for (int i = 1; i <= 3; i++) {
		durq_work_item *it = NULL;
		assert_int_equal(conf_fetch1(c, &it, "q", 0), DURQ_OK);
		assert_int_equal(it->attempt, i);
		assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_OK);
		durq_work_items_free(it, 1);
	}
	conf_assert_no_work(c, "q");
	durq_dead_letter *dl = NULL;
	size_t n = 0;
	assert_int_equal(durq_dead_list(c->db, &dl, &n, 10), DURQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(dl[0].source, DURQ_DEAD_WORK);
	assert_string_equal(dl[0].queue, "q");
	assert_string_equal(dl[0].instance_id, "i1");
	assert_int_equal(dl[0].execution_id, 1);
	assert_int_equal(dl[0].activity_id, 9);
	assert_true(dl[0].attempt >= 3);
	assert_payload(dl[0].payload, dl[0].payload_len, "poison");
	durq_dead_letters_free(dl, n);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.dead_letters, 1);
	assert_int_equal(d.work_ready + d.work_leased + d.work_delayed, 0);
}

static void test_work_dead_lettered_after_max_attempts_by_expiry(void **state)
{
	conf_opts o = {.max_attempts = 2};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_work(c, NULL, "crashy", 0, 0), DURQ_OK);
	durq_work_item *last = NULL;
	for (int i = 1; i <= 2; i++) {
		if (last)
			durq_work_items_free(last, 1);
		assert_int_equal(conf_fetch1(c, &last, NULL, 1000), DURQ_OK);
		assert_int_equal(last->attempt, i);
		conf_advance(c, 1001); /* the worker "crashes": nobody holds a live lease */
	}
	conf_assert_no_work(c, NULL);
	assert_int_equal(conf_dead_count(c), 1);
	assert_int_equal(durq_work_ack(c->db, last->id, &last->token, NULL), DURQ_ELOCKLOST);
	durq_work_items_free(last, 1);
	assert_int_equal(conf_dead_count(c), 1);
}

static void test_orch_dead_lettered_and_instance_failed(void **state)
{
	conf_opts o = {.max_attempts = 3};
	conf_ctx *c = conf_use(state, &o);
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 4, "bad-event"), DURQ_OK);
	for (int i = 1; i <= 3; i++) {
		durq_turn *t = NULL;
		assert_int_equal(conf_turn(c, &t, 1000), DURQ_OK);
		assert_int_equal(t->attempt, i);
		durq_turn_free(t);
		conf_advance(c, 1001); /* crash mid-turn: lease expires */
	}
	conf_assert_no_turn(c);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_FAILED);
	durq_dead_letter *dl = NULL;
	size_t n = 0;
	assert_int_equal(durq_dead_list(c->db, &dl, &n, 10), DURQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(dl[0].source, DURQ_DEAD_ORCH);
	assert_string_equal(dl[0].instance_id, "i1");
	assert_int_equal(dl[0].kind, 4);
	assert_payload(dl[0].payload, dl[0].payload_len, "bad-event");
	durq_dead_letters_free(dl, n);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.instances_locked, 0);
	assert_int_equal(d.orch_ready + d.orch_leased + d.orch_delayed, 0);
}

static void test_orch_poison_without_instance_dead_letters_only(void **state)
{
	conf_opts o = {.max_attempts = 2};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_msg(c, "ghost", 1, "start"), DURQ_OK);
	for (int i = 1; i <= 2; i++) {
		durq_turn *t = conf_turn_for(c, "ghost");
		assert_int_equal(durq_orch_abandon(c->db, "ghost", &t->token, 0, 0), DURQ_OK);
		durq_turn_free(t);
	}
	conf_assert_no_turn(c);
	assert_int_equal(conf_dead_count(c), 1);
	assert_int_equal(conf_status(c, "ghost"), -1); /* no instance is invented */
}

/* A claim that meets more poisoned items than any fixed number of rounds keeps going: every
 * round dead-letters at least one, so it ends; it must not return EMPTY with work pending
 * (the review found a 16-round cap, after which no wakeup followed). */
static void test_work_claim_passes_any_number_of_poisoned_items(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	for (int i = 0; i < 20; i++)
		assert_int_equal(conf_work(c, NULL, "poison", 1, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "good", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 20, 1000, 0), DURQ_OK);
	assert_int_equal(n, 20);
	durq_work_items_free(it, n);
	conf_advance(c, 1001); /* 20 workers crashed: every lease expired, attempts used up */
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "good");
	durq_work_items_free(it, 1);
	assert_int_equal(conf_dead_count(c), 20);
}

static void test_orch_claim_passes_any_number_of_poisoned_instances(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	char id[16];
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "p%02d", i);
		assert_int_equal(conf_msg(c, id, 1, "poison"), DURQ_OK);
	}
	conf_advance(c, 1);
	assert_int_equal(conf_msg(c, "good", 1, "start"), DURQ_OK);
	for (int i = 0; i < 20; i++) {
		durq_turn *t = NULL;
		assert_int_equal(conf_turn(c, &t, 1000), DURQ_OK);
		assert_true(t->instance_id[0] == 'p');
		durq_turn_free(t);
	}
	conf_advance(c, 1001);
	durq_turn *t = NULL;
	assert_int_equal(conf_turn(c, &t, 1000), DURQ_OK);
	assert_string_equal(t->instance_id, "good");
	durq_turn_free(t);
	assert_int_equal(conf_dead_count(c), 20);
}

static void test_dead_requeue_makes_item_fetchable_with_attempt_one(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_work(c, "q", "again", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, "q", 0), DURQ_OK);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, "q");
	durq_dead_letter *dl = NULL;
	size_t n = 0;
	assert_int_equal(durq_dead_list(c->db, &dl, &n, 10), DURQ_OK);
	assert_int_equal(n, 1);
	int64_t dead_id = dl[0].id;
	durq_dead_letters_free(dl, n);
	assert_int_equal(durq_dead_requeue(c->db, dead_id), DURQ_OK);
	assert_int_equal(conf_dead_count(c), 0);
	assert_int_equal(conf_fetch1(c, &it, "q", 0), DURQ_OK);
	assert_int_equal(it->attempt, 1);
	assert_payload(it->payload, it->payload_len, "again");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
	assert_int_equal(durq_dead_requeue(c->db, dead_id), DURQ_ENOTFOUND);
}

static void test_dead_requeue_of_orch_message_restores_turn(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_msg(c, "i1", 3, "m"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(durq_orch_abandon(c->db, "i1", &t->token, 0, 0), DURQ_OK);
	durq_turn_free(t);
	conf_assert_no_turn(c);
	durq_dead_letter *dl = NULL;
	size_t n = 0;
	assert_int_equal(durq_dead_list(c->db, &dl, &n, 10), DURQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(durq_dead_requeue(c->db, dl[0].id), DURQ_OK);
	durq_dead_letters_free(dl, n);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->attempt, 1);
	assert_int_equal(t->messages[0].kind, 3);
	durq_turn_free(t);
}

static void test_dead_list_respects_max(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	for (int i = 0; i < 3; i++)
		assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	for (int i = 0; i < 3; i++) {
		durq_work_item *it = NULL;
		assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
		assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_OK);
		durq_work_items_free(it, 1);
	}
	conf_assert_no_work(c, NULL); /* may trigger lazy dead-lettering */
	durq_dead_letter *dl = NULL;
	size_t n = 0;
	assert_int_equal(durq_dead_list(c->db, &dl, &n, 2), DURQ_OK);
	assert_int_equal(n, 2);
	durq_dead_letters_free(dl, n);
	assert_int_equal(conf_dead_count(c), 3);
}

static void test_dead_requeue_unknown_is_enotfound(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(durq_dead_requeue(c->db, 424242), DURQ_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_work_attempt_starts_at_one_and_increments),
		T(test_work_attempt_is_per_item),
		T(test_turn_attempt_is_max_over_messages),
		T(test_turn_attempt_increments_on_lease_expiry),
		T(test_ignore_attempt_undoes_this_delivery),
		T(test_ignore_attempt_never_goes_below_zero_nor_poisons),
		T(test_orch_ignore_attempt_undoes_this_delivery),
		T(test_work_dead_lettered_after_max_attempts_by_abandon),
		T(test_work_dead_lettered_after_max_attempts_by_expiry),
		T(test_orch_dead_lettered_and_instance_failed),
		T(test_orch_poison_without_instance_dead_letters_only),
		T(test_work_claim_passes_any_number_of_poisoned_items),
		T(test_orch_claim_passes_any_number_of_poisoned_instances),
		T(test_dead_requeue_makes_item_fetchable_with_attempt_one),
		T(test_dead_requeue_of_orch_message_restores_turn),
		T(test_dead_list_respects_max),
		T(test_dead_requeue_unknown_is_enotfound),
	};
	return cmocka_run_group_tests_name("conf_poison", tests, conf_group_setup,
					   conf_group_teardown);
}
