/*
 * conf_lease.c — design.md §2.3/§2.6: leases come from the injected clock read at commit,
 * expire by advancing that clock (never by sleeping), renew extends only a live lease, and a
 * token whose lease expired can no longer ack, renew or abandon.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static durq_work_item *one_item(conf_ctx *c, int64_t lease)
{
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, lease), DURQ_OK);
	return it;
}

static void test_expired_work_lease_can_be_fetched_again(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 1000);
	conf_advance(c, 999);
	conf_assert_no_work(c, NULL);
	conf_advance(c, 2);
	durq_work_item *b = one_item(c, 1000);
	assert_int_equal(b->id, a->id);
	assert_int_equal(b->attempt, 2);
	assert_payload(b->payload, b->payload_len, "p");
	assert_memory_not_equal(a->token.bytes, b->token.bytes, 16);
	durq_work_items_free(a, 1);
	durq_work_items_free(b, 1);
}

static void test_old_work_token_fails_after_expiry_and_refetch(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "p"), DURQ_OK);
	durq_work_item *a = one_item(c, 1000);
	conf_advance(c, 1001);
	durq_work_item *b = one_item(c, 1000);
	int64_t until = 0;
	durq_message done = conf_m("i1", 3, "r");
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, &done), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_renew(c->db, &until, a->id, &a->token, 100000), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_abandon(c->db, a->id, &a->token, 0, 0), DURQ_ELOCKLOST);
	/* none of it touched the live lease */
	conf_assert_no_work(c, NULL);
	conf_assert_no_turn(c);
	conf_advance(c, 999);
	conf_assert_no_work(c, NULL);
	assert_int_equal(durq_work_ack(c->db, b->id, &b->token, &done), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	durq_turn_free(t);
	durq_work_items_free(a, 1);
	durq_work_items_free(b, 1);
}

static void test_work_renew_extends_live_lease(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 1000);
	assert_int_equal(a->lease_until_ms, CONF_T0 + 1000);
	conf_advance(c, 500);
	int64_t until = 0;
	assert_int_equal(durq_work_renew(c->db, &until, a->id, &a->token, 1000), DURQ_OK);
	assert_int_equal(until, CONF_T0 + 1500);
	conf_advance(c, 999); /* past the original expiry, before the new one */
	conf_assert_no_work(c, NULL);
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, NULL), DURQ_OK);
	durq_work_items_free(a, 1);
	conf_advance(c, 10000);
	conf_assert_no_work(c, NULL);
}

static void test_work_renew_lease_expires_at_new_deadline(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 1000);
	conf_advance(c, 500);
	int64_t until = 0;
	assert_int_equal(durq_work_renew(c->db, &until, a->id, &a->token, 1000), DURQ_OK);
	conf_advance(c, 999);
	conf_assert_no_work(c, NULL);
	conf_advance(c, 2);
	durq_work_item *b = one_item(c, 1000);
	assert_int_equal(b->id, a->id);
	durq_work_items_free(a, 1);
	durq_work_items_free(b, 1);
}

static void test_work_renew_never_revives_expired_lease(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 1000);
	conf_advance(c, 1001);
	int64_t until = 12345;
	assert_int_equal(durq_work_renew(c->db, &until, a->id, &a->token, 100000), DURQ_ELOCKLOST);
	/* the failed renew did not extend anything: another worker gets the item now */
	durq_work_item *b = one_item(c, 1000);
	assert_int_equal(b->id, a->id);
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, NULL), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_ack(c->db, b->id, &b->token, NULL), DURQ_OK);
	durq_work_items_free(a, 1);
	durq_work_items_free(b, 1);
}

static void test_renewed_token_stays_valid(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 1000);
	int64_t until = 0;
	for (int i = 0; i < 5; i++) {
		conf_advance(c, 900);
		assert_int_equal(durq_work_renew(c->db, &until, a->id, &a->token, 1000), DURQ_OK);
		assert_int_equal(until, conf_time(c) + 1000);
	}
	conf_assert_no_work(c, NULL);
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, NULL), DURQ_OK);
	durq_work_items_free(a, 1);
}

static void test_work_lease_until_is_clock_at_commit_plus_lease(void **state)
{
	conf_ctx *c = *state;
	conf_advance(c, 777);
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 2500);
	assert_int_equal(a->lease_until_ms, CONF_T0 + 777 + 2500);
	durq_work_items_free(a, 1);
}

/* With a clock that ticks on every read, the lease must come from a read made during the
 * fetch (after the call began, i.e. under the write lock), not from a time captured earlier. */
static void test_work_lease_uses_clock_read_during_the_call(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	atomic_store(&c->tick, 1);
	int64_t before = conf_time(c);
	durq_work_item *a = one_item(c, 1000);
	int64_t after = conf_time(c);
	atomic_store(&c->tick, 0);
	int64_t start = a->lease_until_ms - 1000;
	if (start <= before || start > after)
		fail_msg("lease start %lld not read during the call (%lld, %lld]", (long long)start,
			 (long long)before, (long long)after);
	durq_work_items_free(a, 1);
}

static void test_turn_lease_uses_clock_read_during_the_call(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "p"), DURQ_OK);
	atomic_store(&c->tick, 1);
	int64_t before = conf_time(c);
	durq_turn *t = NULL;
	assert_int_equal(conf_turn(c, &t, 1000), DURQ_OK);
	int64_t after = conf_time(c);
	atomic_store(&c->tick, 0);
	int64_t start = t->lease_until_ms - 1000;
	if (start <= before || start > after)
		fail_msg("lease start %lld not read during the call (%lld, %lld]", (long long)start,
			 (long long)before, (long long)after);
	durq_turn_free(t);
}

static void test_expired_turn_lease_can_be_fetched_again(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "p"), DURQ_OK);
	durq_turn *a = NULL;
	assert_int_equal(conf_turn(c, &a, 1000), DURQ_OK);
	conf_advance(c, 999);
	conf_assert_no_turn(c);
	conf_advance(c, 2);
	durq_turn *b = conf_turn_for(c, "i1");
	assert_int_equal(b->attempt, 2);
	assert_int_equal(b->n_messages, 1);
	assert_memory_not_equal(a->token.bytes, b->token.bytes, 16);
	durq_turn_free(a);
	durq_turn_free(b);
}

static void test_old_turn_token_fails_after_expiry_and_refetch(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "p"), DURQ_OK);
	durq_turn *a = NULL, *b = NULL;
	assert_int_equal(conf_turn(c, &a, 1000), DURQ_OK);
	conf_advance(c, 1001);
	assert_int_equal(conf_turn(c, &b, 1000), DURQ_OK);
	int64_t until = 0;
	assert_int_equal(conf_ack_event(c, a, 1, "stale"), DURQ_ELOCKLOST);
	assert_int_equal(durq_orch_renew(c->db, &until, "i1", &a->token, 100000), DURQ_ELOCKLOST);
	assert_int_equal(durq_orch_abandon(c->db, "i1", &a->token, 0, 0), DURQ_ELOCKLOST);
	assert_int_equal(conf_status(c, "i1"), -1);
	conf_assert_no_turn(c); /* b's lease untouched */
	assert_int_equal(conf_ack_event(c, b, 1, "live"), DURQ_OK);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 1);
	assert_payload(h[0].payload, h[0].payload_len, "live");
	durq_events_free(h, 1);
	durq_turn_free(a);
	durq_turn_free(b);
}

static void test_orch_renew_extends_live_lease(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "p"), DURQ_OK);
	durq_turn *a = NULL;
	assert_int_equal(conf_turn(c, &a, 1000), DURQ_OK);
	assert_int_equal(a->lease_until_ms, CONF_T0 + 1000);
	conf_advance(c, 600);
	int64_t until = 0;
	assert_int_equal(durq_orch_renew(c->db, &until, "i1", &a->token, 1000), DURQ_OK);
	assert_int_equal(until, CONF_T0 + 1600);
	conf_advance(c, 999);
	conf_assert_no_turn(c);
	assert_int_equal(conf_ack_event(c, a, 1, "x"), DURQ_OK);
	durq_turn_free(a);
}

static void test_orch_renew_never_revives_expired_lease(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "p"), DURQ_OK);
	durq_turn *a = NULL;
	assert_int_equal(conf_turn(c, &a, 1000), DURQ_OK);
	conf_advance(c, 1001);
	int64_t until = 0;
	assert_int_equal(durq_orch_renew(c->db, &until, "i1", &a->token, 100000), DURQ_ELOCKLOST);
	durq_turn *b = conf_turn_for(c, "i1");
	assert_int_equal(conf_ack_event(c, a, 1, "x"), DURQ_ELOCKLOST);
	durq_turn_free(a);
	durq_turn_free(b);
}

static void test_work_abandon_releases_lease_now(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 100000);
	assert_int_equal(durq_work_abandon(c->db, a->id, &a->token, 0, 0), DURQ_OK);
	assert_int_equal(durq_work_abandon(c->db, a->id, &a->token, 0, 0), DURQ_ELOCKLOST);
	durq_work_item *b = one_item(c, 1000);
	assert_int_equal(b->id, a->id);
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, NULL), DURQ_ELOCKLOST);
	durq_work_items_free(a, 1);
	durq_work_items_free(b, 1);
}

static void test_work_abandon_with_delay_hides_item_until_due(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *a = one_item(c, 1000);
	assert_int_equal(durq_work_abandon(c->db, a->id, &a->token, 5000, 0), DURQ_OK);
	durq_work_items_free(a, 1);
	conf_advance(c, 4999);
	conf_assert_no_work(c, NULL);
	conf_advance(c, 1);
	a = one_item(c, 1000);
	assert_int_equal(a->attempt, 2);
	durq_work_items_free(a, 1);
}

static void test_tokens_of_separate_leases_are_distinct_and_nonzero(void **state)
{
	conf_ctx *c = *state;
	enum { N = 64 };
	durq_work w[N];
	for (int i = 0; i < N; i++)
		w[i] = conf_w(NULL, "x");
	assert_int_equal(durq_work_enqueue(c->db, w, N), DURQ_OK);
	/* one lease per fetch (items of one batch may share their fetch's token) */
	static durq_token tok[N];
	static const unsigned char zero[16];
	for (int i = 0; i < N; i++) {
		durq_work_item *it = NULL;
		assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
		tok[i] = it->token;
		durq_work_items_free(it, 1);
		assert_memory_not_equal(tok[i].bytes, zero, 16);
		for (int k = 0; k < i; k++)
			assert_memory_not_equal(tok[i].bytes, tok[k].bytes, 16);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_expired_work_lease_can_be_fetched_again),
		T(test_old_work_token_fails_after_expiry_and_refetch),
		T(test_work_renew_extends_live_lease),
		T(test_work_renew_lease_expires_at_new_deadline),
		T(test_work_renew_never_revives_expired_lease),
		T(test_renewed_token_stays_valid),
		T(test_work_lease_until_is_clock_at_commit_plus_lease),
		T(test_work_lease_uses_clock_read_during_the_call),
		T(test_turn_lease_uses_clock_read_during_the_call),
		T(test_expired_turn_lease_can_be_fetched_again),
		T(test_old_turn_token_fails_after_expiry_and_refetch),
		T(test_orch_renew_extends_live_lease),
		T(test_orch_renew_never_revives_expired_lease),
		T(test_work_abandon_releases_lease_now),
		T(test_work_abandon_with_delay_hides_item_until_due),
		T(test_tokens_of_separate_leases_are_distinct_and_nonzero),
	};
	return cmocka_run_group_tests_name("conf_lease", tests, conf_group_setup,
					   conf_group_teardown);
}
