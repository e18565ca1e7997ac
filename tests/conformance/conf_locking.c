/*
 * conf_locking.c — design.md §2.1: one lease per instance; a fetch tags all visible messages
 * of the oldest ready instance; messages arriving mid-turn stay for the next turn; an ack
 * deletes exactly the tagged messages; concurrent fetchers never share an instance.
 */
#include "conf_factory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void test_one_lease_per_instance(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "a"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 2, "b"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	conf_assert_no_turn(c);
	assert_int_equal(conf_msg(c, "i1", 3, "c"), DURQ_OK);
	conf_assert_no_turn(c); /* a new message does not open a second lease */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.instances_locked, 1);
	durq_turn_free(t);
}

static void test_fetch_tags_all_visible_messages_in_arrival_order(void **state)
{
	conf_ctx *c = *state;
	durq_message m[3] = {conf_m("i1", 1, "a"), conf_m("i1", 2, "b"), conf_m("i1", 3, "c")};
	assert_int_equal(durq_orch_enqueue(c->db, m, 3), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 4, "d"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(t->messages[i].kind, i + 1);
		assert_int_equal(t->messages[i].attempt, 1);
	}
	assert_payload(t->messages[3].payload, t->messages[3].payload_len, "d");
	durq_turn_free(t);
}

static void test_message_arriving_mid_turn_stays_for_next_turn(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "first"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "mid-turn"), DURQ_OK);
	assert_int_equal(conf_ack_event(c, t, 1, "e"), DURQ_OK);
	durq_turn_free(t);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 2);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "mid-turn");
	assert_int_equal(t->messages[0].attempt, 1);
	assert_int_equal(conf_ack_event(c, t, 2, "e"), DURQ_OK);
	durq_turn_free(t);
	conf_assert_no_turn(c);
}

static void test_ack_deletes_only_tagged_messages(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "a"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i2", 1, "other-instance"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "late1"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 3, "late2"), DURQ_OK);
	assert_int_equal(conf_ack_event(c, t, 1, "e"), DURQ_OK);
	durq_turn_free(t);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.orch_ready, 3);
	assert_int_equal(d.orch_leased, 0);
	assert_int_equal(d.instances_locked, 0);
	t = conf_turn_for(c, "i2");
	durq_turn_free(t);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 2);
	assert_int_equal(t->messages[0].kind, 2);
	assert_int_equal(t->messages[1].kind, 3);
	durq_turn_free(t);
}

static void test_delayed_message_is_not_tagged(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "now"), DURQ_OK);
	assert_int_equal(conf_msg_at(c, "i1", 2, "timer", CONF_T0 + 1000, 0), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 1);
	assert_int_equal(conf_ack_event(c, t, 1, "e"), DURQ_OK);
	durq_turn_free(t);
	conf_assert_no_turn(c);
	conf_advance(c, 1000);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 2);
	durq_turn_free(t);
}

static void test_fetch_picks_oldest_ready_instance(void **state)
{
	conf_ctx *c = *state;
	const char *order[3] = {"i2", "i3", "i1"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(conf_msg(c, order[i], 1, "x"), DURQ_OK);
		conf_advance(c, 1);
	}
	assert_int_equal(conf_msg(c, "i2", 2, "younger message of the oldest"), DURQ_OK);
	for (int i = 0; i < 3; i++) {
		durq_turn *t = conf_turn_for(c, order[i]);
		durq_turn_free(t);
	}
	conf_assert_no_turn(c);
}

static void test_instances_are_leased_independently(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i2", 1, "x"), DURQ_OK);
	durq_turn *t1 = conf_turn_for(c, "i1");
	durq_turn *t2 = conf_turn_for(c, "i2");
	assert_memory_not_equal(t1->token.bytes, t2->token.bytes, 16);
	assert_int_equal(conf_ack_event(c, t2, 1, "x"), DURQ_OK);
	assert_int_equal(conf_ack_event(c, t1, 1, "x"), DURQ_OK);
	durq_turn_free(t1);
	durq_turn_free(t2);
}

static void test_ack_releases_the_lease(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "next"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1"); /* no clock advance needed */
	durq_turn_free(t);
}

static void test_orch_abandon_releases_lease_and_keeps_messages(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "a"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 2, "b"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(durq_orch_abandon(c->db, "i1", &t->token, 0, 0), DURQ_OK);
	assert_int_equal(durq_orch_abandon(c->db, "i1", &t->token, 0, 0), DURQ_ELOCKLOST);
	assert_int_equal(conf_ack_event(c, t, 1, "x"), DURQ_ELOCKLOST);
	durq_turn_free(t);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 2);
	assert_int_equal(t->attempt, 2);
	assert_int_equal(conf_status(c, "i1"), -1);
	durq_turn_free(t);
}

static void test_orch_abandon_with_delay_hides_instance_until_due(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "a"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(durq_orch_abandon(c->db, "i1", &t->token, 500, 0), DURQ_OK);
	durq_turn_free(t);
	conf_advance(c, 499);
	conf_assert_no_turn(c);
	conf_advance(c, 1);
	t = conf_turn_for(c, "i1");
	durq_turn_free(t);
}

static void test_turn_lease_until_is_clock_plus_lease(void **state)
{
	conf_ctx *c = *state;
	conf_advance(c, 12345);
	assert_int_equal(conf_msg(c, "i1", 1, "a"), DURQ_OK);
	durq_turn *t = NULL;
	assert_int_equal(conf_turn(c, &t, 4321), DURQ_OK);
	assert_int_equal(t->lease_until_ms, CONF_T0 + 12345 + 4321);
	durq_turn_free(t);
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define NINST 40

typedef struct fetch_job {
	durq *db;
	pthread_barrier_t *bar;
	char ids[NINST][16];
	size_t msgs[NINST];
	int n;
	int rc;
} fetch_job;

static void *fetch_all(void *p)
{
	fetch_job *j = p;
	pthread_barrier_wait(j->bar);
	for (;;) {
		durq_turn *t = NULL;
		int rc = durq_orch_fetch(j->db, &t, CONF_LEASE, 0);
		if (rc == DURQ_EMPTY)
			break;
		if (rc != DURQ_OK || j->n >= NINST) {
			j->rc = rc != DURQ_OK ? rc : -1000;
			if (t)
				durq_turn_free(t);
			break;
		}
		snprintf(j->ids[j->n], sizeof j->ids[0], "%s", t->instance_id);
		j->msgs[j->n++] = t->n_messages;
		durq_turn_free(t);
	}
	return NULL;
}

static void test_concurrent_fetches_never_lease_an_instance_twice(void **state)
{
	conf_ctx *c = *state;
	for (int i = 0; i < NINST; i++) {
		char id[16];
		snprintf(id, sizeof id, "i%02d", i);
		assert_int_equal(conf_msg(c, id, 1, "a"), DURQ_OK);
		assert_int_equal(conf_msg(c, id, 2, "b"), DURQ_OK);
	}
	static fetch_job jobs[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t bar;
	memset(jobs, 0, sizeof jobs);
	pthread_barrier_init(&bar, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		jobs[i].db = c->db;
		jobs[i].bar = &bar;
		pthread_create(&th[i], NULL, fetch_all, &jobs[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	int seen[NINST] = {0};
	int total = 0;
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(jobs[i].rc, 0);
		for (int k = 0; k < jobs[i].n; k++) {
			int idx = atoi(jobs[i].ids[k] + 1);
			assert_in_range(idx, 0, NINST - 1);
			seen[idx]++;
			assert_int_equal(jobs[i].msgs[k], 2);
			total++;
		}
	}
	for (int i = 0; i < NINST; i++)
		if (seen[i] != 1)
			fail_msg("instance i%02d leased %d times (want exactly 1)", i, seen[i]);
	assert_int_equal(total, NINST);
}

#define TURNS 5
#define NINST2 16

typedef struct turn_job {
	durq *db;
	pthread_barrier_t *bar;
	_Atomic int *in_turn;     /* per instance: 1 while a worker holds its lease */
	_Atomic int *done;        /* instances completed */
	int violations, errors, turns, last_rc;
} turn_job;

static void *turn_worker(void *p)
{
	turn_job *j = p;
	pthread_barrier_wait(j->bar);
	while (atomic_load(j->done) < NINST2) {
		durq_turn *t = NULL;
		int rc = durq_orch_fetch(j->db, &t, CONF_LEASE, 5);
		if (rc == DURQ_EMPTY)
			continue;
		if (rc != DURQ_OK) {
			j->errors++;
			j->last_rc = rc;
			break;
		}
		int idx = atoi(t->instance_id + 1);
		if (atomic_exchange(&j->in_turn[idx], 1) != 0)
			j->violations++;
		uint64_t next = t->n_history + 1;
		durq_event ev = conf_ev(next, "e");
		durq_message self = conf_m(t->instance_id, 2, "again");
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.history = &ev;
		r.n_history = 1;
		if (next < TURNS) {
			r.messages = &self;
			r.n_messages = 1;
		} else {
			r.status = DURQ_STATUS_COMPLETED;
		}
		atomic_store(&j->in_turn[idx], 0); /* cleared before the ack releases the lease */
		rc = durq_orch_ack(j->db, t->instance_id, &t->token, &r);
		durq_turn_free(t);
		if (rc != DURQ_OK) {
			j->errors++;
			j->last_rc = rc;
			break;
		}
		j->turns++;
		if (next == TURNS)
			atomic_fetch_add(j->done, 1);
	}
	return NULL;
}

static void test_concurrent_turns_hold_one_lease_per_instance(void **state)
{
	conf_ctx *c = *state;
	_Atomic int in_turn[NINST2];
	_Atomic int done = 0;
	for (int i = 0; i < NINST2; i++) {
		atomic_init(&in_turn[i], 0);
		char id[16];
		snprintf(id, sizeof id, "i%02d", i);
		assert_int_equal(conf_msg(c, id, 1, "start"), DURQ_OK);
	}
	turn_job jobs[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t bar;
	memset(jobs, 0, sizeof jobs);
	pthread_barrier_init(&bar, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		jobs[i].db = c->db;
		jobs[i].bar = &bar;
		jobs[i].in_turn = in_turn;
		jobs[i].done = &done;
		pthread_create(&th[i], NULL, turn_worker, &jobs[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	int turns = 0;
	for (int i = 0; i < NTHREADS; i++) {
		if (jobs[i].errors)
			fail_msg("worker %d: %s", i, durq_error_name(jobs[i].last_rc));
		assert_int_equal(jobs[i].violations, 0);
		turns += jobs[i].turns;
	}
	assert_int_equal(turns, NINST2 * TURNS);
	for (int i = 0; i < NINST2; i++) {
		char id[16];
		snprintf(id, sizeof id, "i%02d", i);
		assert_int_equal(conf_status(c, id), DURQ_STATUS_COMPLETED);
		durq_event *h = NULL;
		assert_int_equal(conf_history(c, id, 0, &h), TURNS);
		durq_events_free(h, TURNS);
	}
	conf_assert_no_turn(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_one_lease_per_instance),
		T(test_fetch_tags_all_visible_messages_in_arrival_order),
		T(test_message_arriving_mid_turn_stays_for_next_turn),
		T(test_ack_deletes_only_tagged_messages),
		T(test_delayed_message_is_not_tagged),
		T(test_fetch_picks_oldest_ready_instance),
		T(test_instances_are_leased_independently),
		T(test_ack_releases_the_lease),
		T(test_orch_abandon_releases_lease_and_keeps_messages),
		T(test_orch_abandon_with_delay_hides_instance_until_due),
		T(test_turn_lease_until_is_clock_plus_lease),
		T(test_concurrent_fetches_never_lease_an_instance_twice),
		T(test_concurrent_turns_hold_one_lease_per_instance),
	};
	return cmocka_run_group_tests_name("conf_locking", tests, conf_group_setup,
					   conf_group_teardown);
}
