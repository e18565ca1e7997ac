/*
 * conf_runtime.c — what a Durable Task runtime (duroxide-style) relies on from its provider,
 * beyond the single-rule categories: racing acks on one lease, late arrivals during a lease,
 * ordered messages from one ack, stale tokens after an ack or a delete, NULL name/version,
 * sub-orchestration starts, worker items independent of instance status, cancellation and
 * deletion of terminal instances, pruning, and clearing custom status.
 *
 * docs/CONTRACT.md §7 maps each duroxide provider-validation test to the tests here that
 * check it. The T1..T13 labels below number the scenarios of the coverage notes this file was
 * written from (../shared/duroxide-coverage.md §3, outside this repository).
 */
#include "conf_factory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

#define RACE_ROUNDS 50

/* ---- helpers ---- */

static durq_queue_depths depths(conf_ctx *c)
{
	durq_queue_depths d;
	memset(&d, 0, sizeof d);
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	return d;
}

static int64_t work_total(conf_ctx *c)
{
	durq_queue_depths d = depths(c);
	return d.work_ready + d.work_delayed + d.work_leased;
}

static int64_t orch_total(conf_ctx *c)
{
	durq_queue_depths d = depths(c);
	return d.orch_ready + d.orch_delayed + d.orch_leased;
}

/* Enqueue one message for inst, fetch its turn and ack it with r (asserts OK). */
static void turn_with(conf_ctx *c, const char *inst, const durq_turn_result *r)
{
	assert_int_equal(conf_msg(c, inst, 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	int rc = durq_orch_ack(c->db, inst, &t->token, r);
	durq_turn_free(t);
	if (rc != DURQ_OK)
		fail_msg("durq_orch_ack(%s) = %s: %s", inst, durq_error_name(rc),
			 durq_error_last());
}

static durq_instance_info *info_of(conf_ctx *c, const char *inst)
{
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, inst), DURQ_OK);
	return info;
}

static durq_work_item *one_item(conf_ctx *c, int64_t lease)
{
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, lease), DURQ_OK);
	return it;
}

/* ---- T1: two acks racing on one lease ---- */

typedef struct race_job {
	durq *db;
	pthread_barrier_t *bar;
	const char *inst;           /* turn race */
	const durq_token *token;
	const durq_turn_result *r;
	int64_t work_id;            /* work race */
	const durq_message *completion;
	int rc;
} race_job;

static void *race_orch_ack(void *p)
{
	race_job *j = p;
	pthread_barrier_wait(j->bar);
	j->rc = durq_orch_ack(j->db, j->inst, j->token, j->r);
	return NULL;
}

static void *race_work_ack(void *p)
{
	race_job *j = p;
	pthread_barrier_wait(j->bar);
	j->rc = durq_work_ack(j->db, j->work_id, j->token, j->completion);
	return NULL;
}

/* Run fn on two threads released together by a barrier; rc[] = each call's result. */
static void race2(race_job jobs[2], void *(*fn)(void *), int rc[2])
{
	pthread_barrier_t bar;
	pthread_t th[2];
	assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
	for (int i = 0; i < 2; i++) {
		jobs[i].bar = &bar;
		assert_int_equal(pthread_create(&th[i], NULL, fn, &jobs[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	rc[0] = jobs[0].rc;
	rc[1] = jobs[1].rc;
}

static void assert_one_ok_one_locklost(const int rc[2], int round)
{
	int ok = (rc[0] == DURQ_OK) + (rc[1] == DURQ_OK);
	int lost = (rc[0] == DURQ_ELOCKLOST) + (rc[1] == DURQ_ELOCKLOST);
	if (ok != 1 || lost != 1)
		fail_msg("round %d: racing acks returned %s and %s (want one DURQ_OK, one "
			 "DURQ_ELOCKLOST)", round, durq_error_name(rc[0]), durq_error_name(rc[1]));
}

/* After round k of two acks on one turn lease: one won, and only its turn was written. */
static void assert_turn_race_round(conf_ctx *c, const char *inst, const int rc[2], int k)
{
	assert_one_ok_one_locklost(rc, k);
	durq_event *h = NULL;
	size_t n = conf_history(c, inst, 0, &h);
	durq_events_free(h, n);
	assert_int_equal(n, 1);
	/* one work item per round so far: the losing ack wrote nothing */
	assert_int_equal(work_total(c), k + 1);
	assert_int_equal(conf_status(c, inst), DURQ_STATUS_RUNNING);
	assert_int_equal(depths(c).instances_locked, 0);
}

/* coverage doc §3 T1 (turn) */
static void test_racing_turn_acks_on_one_lease_exactly_one_wins(void **state)
{
	conf_ctx *c = *state;
	durq_event ev = conf_ev(1, "x");
	durq_work w = conf_w(NULL, "w");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.history = &ev;
	r.n_history = 1;
	r.work = &w;
	r.n_work = 1;
	for (int k = 0; k < RACE_ROUNDS; k++) {
		char inst[16];
		snprintf(inst, sizeof inst, "i%02d", k);
		assert_int_equal(conf_msg(c, inst, 1, "start"), DURQ_OK);
		durq_turn *t = conf_turn_for(c, inst);
		race_job jobs[2];
		memset(jobs, 0, sizeof jobs);
		for (int i = 0; i < 2; i++) {
			jobs[i].db = c->db;
			jobs[i].inst = inst;
			jobs[i].token = &t->token;
			jobs[i].r = &r;
		}
		int rc[2];
		race2(jobs, race_orch_ack, rc);
		durq_turn_free(t);
		assert_turn_race_round(c, inst, rc, k);
	}
}

static void record_rc(void *ctx, const durq_completion *done)
{
	atomic_store((_Atomic int *)ctx, done->rc);
}

/* coverage doc §3 T1 (turn), both acks submitted back to back without waiting, so that in
 * group mode they usually share one transaction: the second must see the first's commit
 * within the batch. */
static void test_two_turn_acks_submitted_together_exactly_one_wins(void **state)
{
	conf_ctx *c = *state;
	durq_event ev = conf_ev(1, "x");
	durq_work w = conf_w(NULL, "w");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &ev;
	r.n_history = 1;
	r.work = &w;
	r.n_work = 1;
	for (int k = 0; k < RACE_ROUNDS; k++) {
		char inst[16];
		snprintf(inst, sizeof inst, "a%02d", k);
		assert_int_equal(conf_msg(c, inst, 1, "start"), DURQ_OK);
		durq_turn *t = conf_turn_for(c, inst);
		_Atomic int rcs[2] = {1, 1};
		for (int i = 0; i < 2; i++) {
			durq_async a = {.done = record_rc, .ctx = &rcs[i]};
			assert_int_equal(durq_orch_ack_async(c->db, inst, &t->token, &r, &a),
					 DURQ_OK);
		}
		assert_int_equal(durq_flush(c->db, -1), DURQ_OK);
		durq_turn_free(t);
		int rc[2] = {atomic_load(&rcs[0]), atomic_load(&rcs[1])};
		assert_turn_race_round(c, inst, rc, k);
	}
}

/* coverage doc §3 T1 (work) */
static void test_racing_work_acks_on_one_lease_exactly_one_wins(void **state)
{
	conf_ctx *c = *state;
	for (int k = 0; k < RACE_ROUNDS; k++) {
		char inst[16];
		snprintf(inst, sizeof inst, "w%02d", k);
		assert_int_equal(conf_activity(c, inst, 1, 1, "act"), DURQ_OK);
		durq_work_item *it = one_item(c, 0);
		durq_message done = conf_m(inst, 9, "done");
		race_job jobs[2];
		memset(jobs, 0, sizeof jobs);
		for (int i = 0; i < 2; i++) {
			jobs[i].db = c->db;
			jobs[i].work_id = it->id;
			jobs[i].token = &it->token;
			jobs[i].completion = &done;
		}
		int rc[2];
		race2(jobs, race_work_ack, rc);
		durq_work_items_free(it, 1);
		assert_one_ok_one_locklost(rc, k);
		/* exactly one turn, with exactly one completion */
		durq_turn *t = conf_turn_for(c, inst);
		assert_int_equal(t->n_messages, 1);
		assert_int_equal(t->messages[0].kind, 9);
		assert_int_equal(conf_ack_event(c, t, 1, "seen"), DURQ_OK);
		durq_turn_free(t);
		conf_assert_no_turn(c);
		assert_int_equal(work_total(c), 0);
	}
}

/* ---- T2: lease expiry with late arrivals ---- */

/* coverage doc §3 T2 */
static void test_messages_arriving_during_expired_lease_join_the_next_turn(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *a = NULL;
	assert_int_equal(conf_turn(c, &a, 1000), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 2, "m2"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 3, "m3"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 4, "m4"), DURQ_OK);
	conf_assert_no_turn(c);
	conf_advance(c, 1001);
	durq_turn *b = conf_turn_for(c, "i1");
	assert_int_equal(b->n_messages, 4);
	const int want_attempt[4] = {2, 1, 1, 1};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(b->messages[i].kind, i + 1);
		assert_int_equal(b->messages[i].attempt, want_attempt[i]);
	}
	assert_int_equal(b->attempt, 2);
	assert_int_equal(conf_ack_event(c, a, 1, "stale"), DURQ_ELOCKLOST);
	assert_int_equal(conf_ack_event(c, b, 1, "live"), DURQ_OK);
	durq_turn_free(a);
	durq_turn_free(b);
	/* all 4 messages went with B's ack: none ready, none leased, none after the lease */
	conf_assert_no_turn(c);
	assert_int_equal(orch_total(c), 0);
	conf_advance(c, 100000);
	conf_assert_no_turn(c);
}

/* ---- T3: several orchestrator messages from one ack ---- */

/* coverage doc §3 T3 */
static void test_messages_from_one_ack_keep_array_order(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_message m[3] = {conf_m("i1", 6, "timer"), conf_m("i1", 7, "event"),
			     conf_m("i1", 8, "later")};
	m[0].visible_at_ms = conf_time(c) - 1000;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.messages = m;
	r.n_messages = 3;
	turn_with(c, "i1", &r);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 3);
	assert_int_equal(t->messages[0].kind, 6);
	assert_int_equal(t->messages[1].kind, 7);
	assert_int_equal(t->messages[2].kind, 8);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "timer");
	durq_turn_free(t);
}

/* ---- T4: renew and abandon after a successful ack ---- */

/* coverage doc §3 T4 (work) */
static void test_work_renew_and_abandon_after_ack_are_lock_lost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "p", 0, 0), DURQ_OK);
	durq_work_item *it = one_item(c, 0);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	int64_t until = 777;
	assert_int_equal(durq_work_renew(c->db, &until, it->id, &it->token, 1000),
			 DURQ_ELOCKLOST);
	assert_int_equal(until, 777);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_ELOCKLOST);
	durq_work_items_free(it, 1);
	assert_int_equal(work_total(c), 0);
	conf_assert_no_work(c, NULL);
}

/* coverage doc §3 T4 (turn) */
static void test_turn_renew_and_abandon_after_ack_are_lock_lost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_ack_event(c, t, 1, "x"), DURQ_OK);
	int64_t until = 777;
	assert_int_equal(durq_orch_renew(c->db, &until, "i1", &t->token, 100000), DURQ_ELOCKLOST);
	assert_int_equal(until, 777);
	assert_int_equal(durq_orch_abandon(c->db, "i1", &t->token, 0, 0), DURQ_ELOCKLOST);
	durq_turn_free(t);
	assert_int_equal(depths(c).instances_locked, 0);
	/* the failed renew did not re-take the lease: a new message is fetchable at once */
	assert_int_equal(conf_msg(c, "i1", 2, "next"), DURQ_OK);
	durq_turn *u = conf_turn_for(c, "i1");
	assert_int_equal(u->n_messages, 1);
	assert_int_equal(u->messages[0].kind, 2);
	durq_turn_free(u);
}

/* ---- T5: NULL name and version on the first ack ---- */

/* name ? the name : the version, of a result, an instance or a turn */
static const char *field(int name, const char *name_value, const char *version_value)
{
	return name ? name_value : version_value;
}

/* coverage doc §3 T5, for the name (name = 1) or the version left NULL by the first ack.
 * Pinned: the NULL field is filled by the first later ack that gives one, then fixed; the
 * other field never changes (include/durq.h, durq_turn_result.name). */
static void null_field_is_filled_later(conf_ctx *c, int name)
{
	const char *kept = name ? "v1" : "wf", *filled = name ? "wf2" : "v2";
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event e1 = conf_ev(1, "a");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = name ? NULL : "wf";
	r.version_tag = name ? "v1" : NULL;
	r.history = &e1;
	r.n_history = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = info_of(c, "i1");
	assert_null(field(name, info->name, info->version));
	assert_string_equal(field(!name, info->name, info->version), kept);
	durq_instance_info_free(info);

	assert_int_equal(conf_msg(c, "i1", 2, "e"), DURQ_OK);
	t = conf_turn_for(c, "i1");
	assert_null(field(name, t->name, t->version));
	assert_string_equal(field(!name, t->name, t->version), kept);
	durq_event e2 = conf_ev(2, "b");
	*(name ? &r.name : &r.version_tag) = filled;
	r.history = &e2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	info = info_of(c, "i1");
	assert_non_null(field(name, info->name, info->version));
	assert_string_equal(field(name, info->name, info->version), filled);
	assert_string_equal(field(!name, info->name, info->version), kept);
	durq_instance_info_free(info);
	/* once set, a later ack does not change it */
	*(name ? &r.name : &r.version_tag) = name ? "wf3" : "v3";
	r.history = NULL;
	r.n_history = 0;
	turn_with(c, "i1", &r);
	info = info_of(c, "i1");
	assert_string_equal(field(name, info->name, info->version), filled);
	durq_instance_info_free(info);
}

static void test_null_version_on_first_ack_is_filled_later(void **state)
{
	null_field_is_filled_later(*state, 0);
}

static void test_null_name_on_first_ack_is_filled_later(void **state)
{
	null_field_is_filled_later(*state, 1);
}

/* ---- T6: a sub-orchestration start sent from a turn ---- */

/* coverage doc §3 T6 */
static void test_sub_orchestration_started_from_a_turn(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "p");
	durq_message start = conf_m("p::c", 1, "start-child");
	durq_event e2 = conf_ev(2, "child-scheduled");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.messages = &start;
	r.n_messages = 1;
	r.history = &e2;
	r.n_history = 1;
	turn_with(c, "p", &r);

	/* the message alone does not create the child */
	assert_int_equal(conf_status(c, "p::c"), -1);
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(durq_instance_list(c->db, &ids, &n, -1), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "p");
	durq_strings_free(ids, n);

	durq_turn *t = conf_turn_for(c, "p::c");
	assert_int_equal(t->exists, 0);
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 1);
	durq_event e1 = conf_ev(1, "child-start");
	durq_turn_result cr = DURQ_TURN_RESULT_INIT;
	cr.name = "child";
	cr.version_tag = "1.5";
	cr.parent_id = "p";
	cr.history = &e1;
	cr.n_history = 1;
	assert_int_equal(durq_orch_ack(c->db, "p::c", &t->token, &cr), DURQ_OK);
	durq_turn_free(t);

	durq_instance_info *ci = info_of(c, "p::c");
	assert_string_equal(ci->parent_id, "p");
	assert_string_equal(ci->version, "1.5");
	assert_string_equal(ci->name, "child");
	assert_int_equal(ci->status, DURQ_STATUS_RUNNING);
	durq_instance_info_free(ci);

	/* the parent is unchanged */
	durq_instance_info *pi = info_of(c, "p");
	assert_null(pi->parent_id);
	assert_string_equal(pi->name, "wf");
	assert_string_equal(pi->version, "v1");
	assert_int_equal(pi->execution_id, 1);
	assert_int_equal(pi->status, DURQ_STATUS_RUNNING);
	durq_instance_info_free(pi);
	durq_event *h = NULL;
	n = conf_history(c, "p", 0, &h);
	durq_events_free(h, n);
	assert_int_equal(n, 2);
}

/* ---- T7: worker items do not depend on instance status ---- */

static void fetch_activity_of(conf_ctx *c, const char *inst, uint64_t exec, uint64_t act)
{
	durq_work_item *it = one_item(c, 0);
	assert_string_equal(it->instance_id, inst);
	assert_int_equal(it->execution_id, exec);
	assert_int_equal(it->activity_id, act);
	assert_int_equal(it->attempt, 1);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
}

/* coverage doc §3 T7 (a) */
static void test_work_scheduled_with_terminal_status_is_fetchable(void **state)
{
	conf_ctx *c = *state;
	const int statuses[2] = {DURQ_STATUS_COMPLETED, DURQ_STATUS_FAILED};
	const char *insts[2] = {"done", "failed"};
	for (int i = 0; i < 2; i++) {
		durq_work w = conf_w(NULL, "act");
		w.instance_id = insts[i];
		w.execution_id = 1;
		w.activity_id = 1;
		durq_event e = conf_ev(1, "start");
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.status = statuses[i];
		r.output = "done";
		r.output_len = 4;
		r.work = &w;
		r.n_work = 1;
		r.history = &e;
		r.n_history = 1;
		turn_with(c, insts[i], &r);
		assert_int_equal(conf_status(c, insts[i]), statuses[i]);
		fetch_activity_of(c, insts[i], 1, 1);
	}
	/* continue-as-new in the same ack that schedules work for execution 1 */
	conf_create_instance(c, "can");
	durq_work w = conf_w(NULL, "act");
	w.instance_id = "can";
	w.execution_id = 1;
	w.activity_id = 1;
	durq_event e = conf_ev(1, "exec2");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = 2;
	r.work = &w;
	r.n_work = 1;
	r.history = &e;
	r.n_history = 1;
	turn_with(c, "can", &r);
	durq_instance_info *info = info_of(c, "can");
	assert_int_equal(info->execution_id, 2);
	durq_instance_info_free(info);
	fetch_activity_of(c, "can", 1, 1);
}

/* coverage doc §3 T7 (b) */
static void test_worker_lease_survives_instance_completion(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_activity(c, "i1", 1, 1, "act"), DURQ_OK);
	durq_work_item *it = one_item(c, 30000);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	r.output = "done";
	r.output_len = 4;
	turn_with(c, "i1", &r);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_COMPLETED);

	conf_advance(c, 100);
	int64_t until = 0;
	assert_int_equal(durq_work_renew(c->db, &until, it->id, &it->token, 30000), DURQ_OK);
	assert_int_equal(until, conf_time(c) + 30000);
	durq_message done = conf_m("i1", 9, "result");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_OK);
	durq_work_items_free(it, 1);

	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->exists, 1);
	assert_int_equal(t->status, DURQ_STATUS_COMPLETED);
	int found = 0;
	for (size_t i = 0; i < t->n_messages; i++)
		found += t->messages[i].kind == 9;
	assert_int_equal(found, 1);
	durq_turn_free(t);
}

/* ---- T8: acking an activity with a NULL completion ---- */

/* coverage doc §3 T8 */
static void test_work_ack_with_null_completion_enqueues_nothing(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "act"), DURQ_OK);
	durq_work_item *it = one_item(c, 0);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_assert_no_turn(c);
	assert_int_equal(orch_total(c), 0);
	assert_int_equal(work_total(c), 0);
}

/* ---- T9: cancelling several activities in one turn ---- */

/* coverage doc §3 T9 */
static void test_one_turn_cancels_several_activities_ready_and_leased(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	for (uint64_t a = 1; a <= 5; a++)
		assert_int_equal(conf_activity(c, "i1", 1, a, "act"), DURQ_OK);
	durq_work_item *it = one_item(c, 0);
	durq_queue_depths d = depths(c);
	assert_int_equal(d.work_leased, 1);
	assert_int_equal(d.work_ready, 4);

	durq_activity_ref refs[5];
	for (int a = 0; a < 5; a++) {
		refs[a].execution_id = 1;
		refs[a].activity_id = (uint64_t)a + 1;
	}
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.cancel = refs;
	r.n_cancel = 5;
	turn_with(c, "i1", &r);

	assert_int_equal(work_total(c), 0);
	assert_int_equal(depths(c).dead_letters, 0);
	assert_int_equal(conf_dead_count(c), 0);
	int64_t until = 0;
	assert_int_equal(durq_work_renew(c->db, &until, it->id, &it->token, 1000),
			 DURQ_ELOCKLOST);
	durq_message done = conf_m("i1", 9, "late");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_ELOCKLOST);
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, NULL);
	conf_assert_no_turn(c);
}

/* ---- T10: deleting terminal instances ---- */

/* coverage doc §3 T10 */
static void test_delete_terminal_instances(void **state)
{
	conf_ctx *c = *state;
	const char *insts[3] = {"c", "f", "t"};
	const int statuses[3] = {DURQ_STATUS_COMPLETED, DURQ_STATUS_FAILED,
				 DURQ_STATUS_TERMINATED};
	for (int i = 0; i < 3; i++) {
		durq_event e = conf_ev(1, "start");
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.name = "wf";
		r.status = statuses[i];
		r.output = "done";
		r.output_len = 4;
		r.history = &e;
		r.n_history = 1;
		turn_with(c, insts[i], &r);
		assert_int_equal(conf_status(c, insts[i]), statuses[i]);
	}
	conf_create_instance(c, "keep");
	for (int i = 0; i < 3; i++)
		assert_int_equal(durq_instance_delete(c->db, insts[i]), DURQ_OK);
	for (int i = 0; i < 3; i++) {
		durq_instance_info *info = NULL;
		assert_int_equal(durq_instance_get(c->db, &info, insts[i]), DURQ_ENOTFOUND);
		durq_event *h = NULL;
		size_t n = 0;
		assert_int_equal(durq_history_read(c->db, &h, &n, insts[i], 0), DURQ_ENOTFOUND);
		durq_execution_info *ex = NULL;
		assert_int_equal(durq_execution_list(c->db, &ex, &n, insts[i]), DURQ_ENOTFOUND);
	}
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(durq_instance_list(c->db, &ids, &n, -1), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "keep");
	durq_strings_free(ids, n);
	/* "keep" is untouched */
	assert_int_equal(conf_status(c, "keep"), DURQ_STATUS_RUNNING);
	durq_event *h = NULL;
	n = conf_history(c, "keep", 0, &h);
	durq_events_free(h, n);
	assert_int_equal(n, 1);
	/* a deleted id starts over as a new instance */
	assert_int_equal(conf_msg(c, "c", 1, "again"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "c");
	assert_int_equal(t->exists, 0);
	assert_int_equal(t->n_history, 0);
	durq_turn_free(t);
}

/* ---- T11: stale activity after delete and recreate ---- */

static void schedule_activity_turn(conf_ctx *c, const char *inst, int create)
{
	durq_work w = conf_w(NULL, "act");
	w.instance_id = inst;
	w.execution_id = 1;
	w.activity_id = 2;
	durq_event e = conf_ev(1, "start");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.work = &w;
	r.n_work = 1;
	r.history = &e;
	r.n_history = 1;
	assert_int_equal(conf_msg(c, inst, 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	assert_int_equal(t->exists, create ? 0 : 1);
	assert_int_equal(durq_orch_ack(c->db, inst, &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

/* coverage doc §3 T11 */
static void test_stale_activity_ack_after_delete_and_recreate_is_lock_lost(void **state)
{
	conf_ctx *c = *state;
	schedule_activity_turn(c, "i1", 1);
	durq_work_item *x = one_item(c, 0);
	assert_int_equal(durq_instance_delete(c->db, "i1"), DURQ_OK);
	schedule_activity_turn(c, "i1", 1);

	durq_message stale = conf_m("i1", 9, "stale");
	assert_int_equal(durq_work_ack(c->db, x->id, &x->token, &stale), DURQ_ELOCKLOST);
	durq_work_items_free(x, 1);

	assert_int_equal(conf_msg(c, "i1", 2, "fresh"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 2);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "fresh");
	assert_int_equal(conf_ack_event(c, t, 2, "fresh-seen"), DURQ_OK);
	durq_turn_free(t);

	durq_work_item *y = one_item(c, 0);
	assert_string_equal(y->instance_id, "i1");
	assert_int_equal(y->activity_id, 2);
	assert_int_equal(y->attempt, 1);
	durq_message done = conf_m("i1", 9, "ok");
	assert_int_equal(durq_work_ack(c->db, y->id, &y->token, &done), DURQ_OK);
	durq_work_items_free(y, 1);
}

/* ---- T12: pruning a terminal instance ---- */

/* coverage doc §3 T12 */
static void test_prune_terminal_instance_keeps_current_execution(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	for (uint64_t exec = 2; exec <= 4; exec++) {
		durq_event e = conf_ev(1, "start");
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.execution_id = exec;
		r.history = &e;
		r.n_history = 1;
		turn_with(c, "i1", &r);
	}
	durq_event e = conf_ev(2, "end");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	r.output = "o";
	r.output_len = 1;
	r.history = &e;
	r.n_history = 1;
	turn_with(c, "i1", &r);

	size_t pruned = 99;
	assert_int_equal(durq_execution_prune(c->db, &pruned, "i1", 100), DURQ_OK);
	assert_int_equal(pruned, 3);
	durq_execution_info *ex = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(c->db, &ex, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ex[0].execution_id, 4);
	assert_int_equal(ex[0].n_events, 2);
	durq_execution_list_free(ex);
	durq_event *h = NULL;
	n = conf_history(c, "i1", 4, &h);
	durq_events_free(h, n);
	assert_int_equal(n, 2);
	durq_instance_info *info = info_of(c, "i1");
	assert_int_equal(info->status, DURQ_STATUS_COMPLETED);
	assert_payload(info->output, info->output_len, "o");
	assert_int_equal(info->execution_id, 4);
	durq_instance_info_free(info);
	pruned = 99;
	assert_int_equal(durq_execution_prune(c->db, &pruned, "i1", 100), DURQ_OK);
	assert_int_equal(pruned, 0);
}

/* ---- T13: clearing custom status ---- */

static void set_custom(conf_ctx *c, int set, const char *value)
{
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.set_custom_status = set;
	r.custom_status = value;
	r.custom_status_len = value ? strlen(value) : 0;
	turn_with(c, "i1", &r);
}

static void assert_custom(conf_ctx *c, const char *value, uint64_t version)
{
	durq_instance_info *info = info_of(c, "i1");
	if (value) {
		assert_payload(info->custom_status, info->custom_status_len, value);
	} else {
		assert_int_equal(info->custom_status_len, 0);
		assert_null(info->custom_status);
	}
	assert_int_equal(info->custom_status_version, version);
	durq_instance_info_free(info);
}

/* coverage doc §3 T13. Pinned: setting NULL/0 clears it, read back as custom_status NULL
 * with length 0 (include/durq.h, durq_turn_result.set_custom_status). */
static void test_custom_status_clear_and_version_increments(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_custom(c, NULL, 0);
	set_custom(c, 1, "temp");
	assert_custom(c, "temp", 1);
	set_custom(c, 1, NULL);
	assert_custom(c, NULL, 2);
	set_custom(c, 0, NULL);
	assert_custom(c, NULL, 2);
	set_custom(c, 1, "x");
	assert_custom(c, "x", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_racing_turn_acks_on_one_lease_exactly_one_wins),
		T(test_two_turn_acks_submitted_together_exactly_one_wins),
		T(test_racing_work_acks_on_one_lease_exactly_one_wins),
		T(test_messages_arriving_during_expired_lease_join_the_next_turn),
		T(test_messages_from_one_ack_keep_array_order),
		T(test_work_renew_and_abandon_after_ack_are_lock_lost),
		T(test_turn_renew_and_abandon_after_ack_are_lock_lost),
		T(test_null_version_on_first_ack_is_filled_later),
		T(test_null_name_on_first_ack_is_filled_later),
		T(test_sub_orchestration_started_from_a_turn),
		T(test_work_scheduled_with_terminal_status_is_fetchable),
		T(test_worker_lease_survives_instance_completion),
		T(test_work_ack_with_null_completion_enqueues_nothing),
		T(test_one_turn_cancels_several_activities_ready_and_leased),
		T(test_delete_terminal_instances),
		T(test_stale_activity_ack_after_delete_and_recreate_is_lock_lost),
		T(test_prune_terminal_instance_keeps_current_execution),
		T(test_custom_status_clear_and_version_increments),
	};
	return cmocka_run_group_tests_name("conf_runtime", tests, conf_group_setup,
					   conf_group_teardown);
}
