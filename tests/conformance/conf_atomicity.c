/*
 * conf_atomicity.c — design.md §2.2/§3: a turn ack is one atomic unit (all parts commit
 * together; a failed ack changes nothing and keeps the lease), and a failing op in a
 * group-commit batch fails alone.
 */
#include "conf_factory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void test_failed_ack_with_duplicate_in_delta_changes_nothing(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");

	durq_event ev[2] = {conf_ev(1, "a"), conf_ev(1, "b")};
	durq_work w = conf_w(NULL, "act");
	w.instance_id = "i1";
	w.execution_id = 1;
	w.activity_id = 1;
	durq_message m = conf_m("other", 2, "hello");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.history = ev;
	r.n_history = 2;
	r.work = &w;
	r.n_work = 1;
	r.messages = &m;
	r.n_messages = 1;
	r.set_custom_status = 1;
	r.custom_status = "cs";
	r.custom_status_len = 2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EDUP);

	/* nothing of the failed turn is visible */
	assert_int_equal(conf_status(c, "i1"), -1);
	conf_assert_no_work(c, NULL);
	conf_assert_no_turn(c); /* no "other" message, and i1 is still leased */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.orch_leased, 1);
	assert_int_equal(d.work_ready + d.work_delayed + d.work_leased, 0);
	assert_int_equal(d.instances_locked, 1);

	/* the lease was kept: the same token can commit a correct turn */
	r.n_history = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "i1"), DURQ_STATUS_RUNNING);
}

static void test_failed_ack_duplicate_of_stored_event_changes_nothing(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "ev"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");

	durq_event ev[2] = {conf_ev(2, "two"), conf_ev(1, "overwrite")};
	durq_work w = conf_w("q", "act");
	durq_message m = conf_m("i1", 3, "self");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	r.output = "out";
	r.output_len = 3;
	r.set_custom_status = 1;
	r.custom_status = "cs";
	r.custom_status_len = 2;
	r.history = ev;
	r.n_history = 2;
	r.work = &w;
	r.n_work = 1;
	r.messages = &m;
	r.n_messages = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EDUP);

	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_int_equal(info->status, DURQ_STATUS_RUNNING);
	assert_int_equal(info->output_len, 0);
	assert_int_equal(info->custom_status_len, 0);
	assert_int_equal(info->custom_status_version, 0);
	durq_instance_info_free(info);

	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 1);
	assert_int_equal(h[0].event_id, 1);
	assert_payload(h[0].payload, h[0].payload_len, "start");
	durq_events_free(h, 1);
	conf_assert_no_work(c, "q");
	conf_assert_no_turn(c);
	durq_turn_free(t);
}

static void test_failed_ack_keeps_tagged_messages_and_lease(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "m1"), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 2, "m2"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 2);
	assert_int_equal(conf_ack_event(c, t, 1, "dup"), DURQ_EDUP);
	int64_t until = t->lease_until_ms;
	durq_turn_free(t);

	/* lease still held until its original expiry, then the same messages come back */
	conf_advance(c, until - conf_time(c) - 1);
	conf_assert_no_turn(c);
	conf_advance(c, 2);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 2);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "m1");
	assert_payload(t->messages[1].payload, t->messages[1].payload_len, "m2");
	assert_int_equal(t->attempt, 2);
	assert_int_equal(conf_ack_event(c, t, 2, "ok"), DURQ_OK);
	durq_turn_free(t);
	conf_assert_no_turn(c);
}

static void test_failed_ack_too_big_work_payload_changes_nothing(void **state)
{
	conf_opts o = {.max_payload = 64};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	char big[65];
	memset(big, 'x', 64);
	big[64] = '\0';
	durq_event ev = conf_ev(1, "start");
	durq_work w[2] = {conf_w(NULL, "small"), conf_w(NULL, "")};
	w[1].payload = big;
	w[1].payload_len = 65;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &ev;
	r.n_history = 1;
	r.work = w;
	r.n_work = 2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_int_equal(conf_status(c, "i1"), -1);
	conf_assert_no_work(c, NULL);
	conf_assert_no_turn(c);
	w[1].payload_len = 64; /* exactly at the limit */
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 10, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 2);
	durq_work_items_free(it, n);
}

static void test_ack_commits_all_parts_together(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event ev[2] = {conf_ev(1, "e1"), conf_ev(2, "e2")};
	durq_work w[2] = {conf_w(NULL, "a1"), conf_w("q", "a2")};
	w[0].instance_id = w[1].instance_id = "i1";
	w[0].execution_id = w[1].execution_id = 1;
	w[0].activity_id = 1;
	w[1].activity_id = 2;
	durq_message m[2] = {conf_m("child", 5, "sub"), conf_m("i1", 6, "timer")};
	m[1].visible_at_ms = conf_time(c) + 1000;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.version_tag = "v7";
	r.parent_id = "par";
	r.output = "o";
	r.output_len = 1;
	r.set_custom_status = 1;
	r.custom_status = "cs";
	r.custom_status_len = 2;
	r.history = ev;
	r.n_history = 2;
	r.work = w;
	r.n_work = 2;
	r.messages = m;
	r.n_messages = 2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);

	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_string_equal(info->name, "wf");
	assert_string_equal(info->version, "v7");
	assert_string_equal(info->parent_id, "par");
	assert_int_equal(info->execution_id, 1);
	assert_int_equal(info->status, DURQ_STATUS_RUNNING);
	assert_payload(info->output, info->output_len, "o");
	assert_payload(info->custom_status, info->custom_status_len, "cs");
	assert_int_equal(info->custom_status_version, 1);
	durq_instance_info_free(info);

	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 2);
	assert_payload(h[1].payload, h[1].payload_len, "e2");
	durq_events_free(h, 2);

	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "a1");
	assert_string_equal(it->instance_id, "i1");
	assert_int_equal(it->activity_id, 1);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_fetch1(c, &it, "q", 0), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "a2");
	durq_work_items_free(it, 1);

	t = conf_turn_for(c, "child");
	assert_int_equal(t->n_messages, 1);
	assert_int_equal(t->messages[0].kind, 5);
	durq_turn_free(t);
	conf_assert_no_turn(c); /* the timer is not due */
	conf_advance(c, 1000);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "timer");
	durq_turn_free(t);
}

static void test_failed_work_ack_completion_too_big_keeps_item(void **state)
{
	conf_opts o = {.max_payload = 16};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_activity(c, "i1", 1, 1, "act"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_message done = conf_m("i1", 9, "0123456789abcdefX"); /* 17 bytes */
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_ETOOBIG);
	conf_assert_no_turn(c);
	conf_assert_no_work(c, NULL); /* still leased */
	done.payload_len = 16;
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_OK);
	durq_work_items_free(it, 1);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->messages[0].kind, 9);
	durq_turn_free(t);
	conf_assert_no_work(c, NULL);
}

static void test_failed_work_ack_with_stale_token_changes_nothing(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "act"), DURQ_OK);
	durq_work_item *a = NULL, *b = NULL;
	assert_int_equal(conf_fetch1(c, &a, NULL, 0), DURQ_OK);
	assert_int_equal(durq_work_abandon(c->db, a->id, &a->token, 0, 0), DURQ_OK);
	assert_int_equal(conf_fetch1(c, &b, NULL, 0), DURQ_OK);
	assert_int_equal(a->id, b->id);
	durq_message done = conf_m("i1", 9, "r");
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, &done), DURQ_ELOCKLOST);
	conf_assert_no_turn(c);        /* no completion */
	conf_assert_no_work(c, NULL);  /* b's lease untouched */
	assert_int_equal(durq_work_ack(c->db, b->id, &b->token, &done), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	durq_turn_free(t);
	durq_work_items_free(a, 1);
	durq_work_items_free(b, 1);
}

/* ---- group commit: concurrent acks, one bad ---- */

#define NACK 8

typedef struct ack_job {
	durq *db;
	pthread_barrier_t *bar;
	char inst[32];
	durq_token token;
	uint64_t event_id;
	int rc;
} ack_job;

static void *ack_thread(void *p)
{
	ack_job *j = p;
	durq_event ev = conf_ev(j->event_id, "x");
	durq_work w = conf_w(NULL, j->inst);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.history = &ev;
	r.n_history = 1;
	r.work = &w;
	r.n_work = 1;
	pthread_barrier_wait(j->bar);
	j->rc = durq_orch_ack(j->db, j->inst, &j->token, &r);
	return NULL;
}

static void run_acks(ack_job *jobs, int n)
{
	pthread_t th[NACK];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		jobs[i].bar = &bar;
		pthread_create(&th[i], NULL, ack_thread, &jobs[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
}

static void stale_turn_ack_fails_alone(conf_ctx *c)
{
	ack_job jobs[NACK];
	memset(jobs, 0, sizeof jobs);
	/* i0 first: fetch, abandon, refetch -> the first token is stale */
	assert_int_equal(conf_msg(c, "i0", 1, "s"), DURQ_OK);
	durq_turn *stale = conf_turn_for(c, "i0");
	assert_int_equal(durq_orch_abandon(c->db, "i0", &stale->token, 0, 0), DURQ_OK);
	durq_turn *live0 = conf_turn_for(c, "i0");
	for (int i = 1; i < NACK; i++) {
		char id[32];
		snprintf(id, sizeof id, "i%d", i);
		assert_int_equal(conf_msg(c, id, 1, "s"), DURQ_OK);
	}
	for (int i = 0; i < NACK; i++) {
		jobs[i].db = c->db;
		jobs[i].event_id = 1;
		snprintf(jobs[i].inst, sizeof jobs[i].inst, "i%d", i);
		if (i == 0) {
			jobs[i].token = stale->token;
			continue;
		}
		durq_turn *t = conf_turn_for(c, jobs[i].inst);
		jobs[i].token = t->token;
		durq_turn_free(t);
	}
	run_acks(jobs, NACK);
	assert_int_equal(jobs[0].rc, DURQ_ELOCKLOST);
	for (int i = 1; i < NACK; i++) {
		assert_int_equal(jobs[i].rc, DURQ_OK);
		assert_int_equal(conf_status(c, jobs[i].inst), DURQ_STATUS_RUNNING);
	}
	assert_int_equal(conf_status(c, "i0"), -1);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 100, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, NACK - 1);
	for (size_t k = 0; k < n; k++)
		assert_false(conf_bytes_eq(it[k].payload, it[k].payload_len, "i0"));
	durq_work_items_free(it, n);
	conf_assert_no_turn(c); /* i0 still leased by live0 */
	assert_int_equal(conf_ack_event(c, live0, 1, "s"), DURQ_OK);
	durq_turn_free(live0);
	durq_turn_free(stale);
}

static void test_group_commit_stale_turn_ack_fails_alone(void **state)
{
	stale_turn_ack_fails_alone(*state);
}

static void test_per_op_mode_stale_turn_ack_fails_alone(void **state)
{
	conf_opts o = {.commit_mode = DURQ_COMMIT_PER_OP};
	stale_turn_ack_fails_alone(conf_use(state, &o));
}

static void test_group_commit_duplicate_event_ack_fails_alone(void **state)
{
	conf_ctx *c = *state;
	ack_job jobs[NACK];
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < NACK; i++) {
		snprintf(jobs[i].inst, sizeof jobs[i].inst, "i%d", i);
		conf_create_instance(c, jobs[i].inst);
	}
	for (int i = 0; i < NACK; i++)
		assert_int_equal(conf_msg(c, jobs[i].inst, 2, "ev"), DURQ_OK);
	for (int i = 0; i < NACK; i++) {
		durq_turn *t = conf_turn_for(c, jobs[i].inst);
		jobs[i].db = c->db;
		jobs[i].token = t->token;
		jobs[i].event_id = (i == 3) ? 1 : 2; /* i3 repeats a stored event id */
		durq_turn_free(t);
	}
	run_acks(jobs, NACK);
	for (int i = 0; i < NACK; i++) {
		durq_event *h = NULL;
		size_t n = conf_history(c, jobs[i].inst, 0, &h);
		durq_events_free(h, n);
		if (i == 3) {
			assert_int_equal(jobs[i].rc, DURQ_EDUP);
			assert_int_equal(n, 1);
		} else {
			assert_int_equal(jobs[i].rc, DURQ_OK);
			assert_int_equal(n, 2);
		}
	}
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, 100, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, NACK - 1);
	durq_work_items_free(it, n);
	conf_assert_no_turn(c); /* i3 keeps its lease and its message */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.orch_leased, 1);
	assert_int_equal(d.instances_locked, 1);
}

typedef struct wack_job {
	durq *db;
	pthread_barrier_t *bar;
	int64_t id;
	durq_token token;
	char inst[32];
	int rc;
} wack_job;

static void *wack_thread(void *p)
{
	wack_job *j = p;
	durq_message done = conf_m(j->inst, 7, "done");
	pthread_barrier_wait(j->bar);
	j->rc = durq_work_ack(j->db, j->id, &j->token, &done);
	return NULL;
}

static void test_group_commit_stale_work_ack_fails_alone(void **state)
{
	conf_ctx *c = *state;
	enum { N = 16 };
	wack_job jobs[N];
	pthread_t th[N];
	pthread_barrier_t bar;
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < N; i++) {
		char id[32];
		snprintf(id, sizeof id, "w%d", i);
		assert_int_equal(conf_activity(c, id, 1, (uint64_t)i, "a"), DURQ_OK);
	}
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, NULL, N, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, N);
	int bad = 5;
	for (int i = 0; i < N; i++) {
		jobs[i].db = c->db;
		jobs[i].id = it[i].id;
		jobs[i].token = i == bad ? conf_forged_token() : it[i].token;
		snprintf(jobs[i].inst, sizeof jobs[i].inst, "%s", it[i].instance_id);
	}
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		jobs[i].bar = &bar;
		pthread_create(&th[i], NULL, wack_thread, &jobs[i]);
	}
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < N; i++)
		assert_int_equal(jobs[i].rc, i == bad ? DURQ_ELOCKLOST : DURQ_OK);
	int turns = 0;
	durq_turn *t = NULL;
	while (conf_turn(c, &t, 0) == DURQ_OK) {
		assert_string_not_equal(t->instance_id, jobs[bad].inst);
		turns++;
		durq_turn_free(t);
	}
	assert_int_equal(turns, N - 1);
	conf_assert_no_work(c, NULL); /* the bad one is still leased by its owner */
	assert_int_equal(durq_work_ack(c->db, it[bad].id, &it[bad].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_failed_ack_with_duplicate_in_delta_changes_nothing),
		T(test_failed_ack_duplicate_of_stored_event_changes_nothing),
		T(test_failed_ack_keeps_tagged_messages_and_lease),
		T(test_failed_ack_too_big_work_payload_changes_nothing),
		T(test_ack_commits_all_parts_together),
		T(test_failed_work_ack_completion_too_big_keeps_item),
		T(test_failed_work_ack_with_stale_token_changes_nothing),
		T(test_group_commit_stale_turn_ack_fails_alone),
		T(test_per_op_mode_stale_turn_ack_fails_alone),
		T(test_group_commit_duplicate_event_ack_fails_alone),
		T(test_group_commit_stale_work_ack_fails_alone),
	};
	return cmocka_run_group_tests_name("conf_atomicity", tests, conf_group_setup,
					   conf_group_teardown);
}
