/*
 * conf_durability.c — design.md §2.8/§2.9: an OK'd enqueue or ack survives close/reopen;
 * delivery is at-least-once with no redelivery after an OK ack; many threads hammering one
 * queue never see an item under two live leases, lose none, and ack each exactly once.
 *
 * Provider-aware tests: durability across close/reopen applies to providers whose data
 * outlives the handle (conf_ctx.durable: sqlite-file). For sqlite-memory the same tests
 * assert the documented in-memory semantics instead: every handle is a private database,
 * so a reopened handle is empty and two handles never see each other's data.
 */
#include "conf_factory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void test_enqueue_survives_close_and_reopen(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, "q", "persist-w", 3, 0), DURQ_OK);
	assert_int_equal(conf_msg(c, "i1", 4, "persist-m"), DURQ_OK);
	assert_int_equal(conf_reopen(c), DURQ_OK);
	durq_work_item *it = NULL;
	if (!c->durable) {
		conf_assert_no_work(c, "q");
		conf_assert_no_turn(c);
		return;
	}
	assert_int_equal(conf_fetch1(c, &it, "q", 0), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "persist-w");
	assert_int_equal(it->priority, 3);
	durq_work_items_free(it, 1);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->messages[0].kind, 4);
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "persist-m");
	durq_turn_free(t);
}

static void test_turn_ack_survives_close_and_reopen(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event ev[2] = {conf_ev(1, "a"), conf_ev(2, "b")};
	durq_work w = conf_w(NULL, "act");
	durq_message timer = conf_m("i1", 6, "timer");
	timer.visible_at_ms = CONF_T0 + 100;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.history = ev;
	r.n_history = 2;
	r.work = &w;
	r.n_work = 1;
	r.messages = &timer;
	r.n_messages = 1;
	r.set_custom_status = 1;
	r.custom_status = "cs";
	r.custom_status_len = 2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_reopen(c), DURQ_OK);
	if (!c->durable) {
		assert_int_equal(conf_status(c, "i1"), -1);
		return;
	}
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_string_equal(info->name, "wf");
	assert_payload(info->custom_status, info->custom_status_len, "cs");
	durq_instance_info_free(info);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 2);
	durq_events_free(h, 2);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_assert_no_turn(c); /* the start message was consumed; the timer is not due */
	conf_advance(c, 100);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->messages[0].kind, 6);
	durq_turn_free(t);
}

static void test_work_ack_survives_close_and_reopen(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "a"), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "b", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_message done = conf_m("i1", 3, "r");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_OK);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_reopen(c), DURQ_OK);
	if (!c->durable) {
		conf_assert_no_work(c, NULL);
		return;
	}
	conf_advance(c, 10 * CONF_LEASE); /* even with every lease long expired */
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "b"); /* "a" is never redelivered */
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, NULL);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_payload(t->messages[0].payload, t->messages[0].payload_len, "r");
	durq_turn_free(t);
}

static void test_live_lease_survives_close_and_reopen(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "a", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(conf_reopen(c), DURQ_OK);
	if (!c->durable) {
		conf_assert_no_work(c, NULL);
		durq_work_items_free(it, 1);
		return;
	}
	conf_assert_no_work(c, NULL); /* still leased */
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_advance(c, 2000);
	conf_assert_no_work(c, NULL);
}

static void test_unacked_item_is_redelivered_after_reopen(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "a", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	durq_work_items_free(it, 1);
	assert_int_equal(conf_reopen(c), DURQ_OK); /* the "crash" */
	if (!c->durable) {
		conf_assert_no_work(c, NULL);
		return;
	}
	conf_advance(c, 1001);
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	assert_int_equal(it->attempt, 2);
	durq_work_items_free(it, 1);
}

static void test_two_handles_share_or_isolate_per_provider(void **state)
{
	conf_ctx *c = *state;
	durq *other = NULL;
	assert_int_equal(conf_open_second(c, &other), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "from-first", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(other, &it, &n, NULL, 1, CONF_LEASE, 0);
	if (c->durable) {
		assert_int_equal(rc, DURQ_OK);
		assert_payload(it[0].payload, it[0].payload_len, "from-first");
		/* the lease taken by the other handle is seen by this one */
		conf_assert_no_work(c, NULL);
		assert_int_equal(durq_work_ack(c->db, it[0].id, &it[0].token, NULL), DURQ_OK);
		durq_work_items_free(it, n);
	} else {
		assert_int_equal(rc, DURQ_EMPTY); /* memory handles are private databases */
	}
	durq_free(other);
}

static void test_file_defaults_to_wal_and_synchronous_full(void **state)
{
	conf_ctx *c = *state;
	char buf[64];
	assert_int_equal(durq_pragma_get(c->db, buf, sizeof buf, "synchronous"), DURQ_OK);
	if (c->durable) {
		if (strcmp(buf, "2") != 0 && strcasecmp(buf, "full") != 0)
			fail_msg("file provider synchronous = '%s', want FULL (2)", buf);
		assert_int_equal(durq_pragma_get(c->db, buf, sizeof buf, "journal_mode"), DURQ_OK);
		assert_true(strcasecmp(buf, "wal") == 0);
	}
	if (strncmp(c->provider, "sqlite", 6) != 0) {
		/* SQLite's schema hardening has no meaning elsewhere: refused by name */
		assert_int_equal(durq_pragma_get(c->db, buf, sizeof buf, "trusted_schema"),
				 DURQ_EINVAL);
		return;
	}
	assert_int_equal(durq_pragma_get(c->db, buf, sizeof buf, "trusted_schema"), DURQ_OK);
	assert_string_equal(buf, "0");
}

/* ---- hammer: 8 consumers (and producers) on one queue ---- */

#define NCONS 8
#define NPROD 4
#define PER_PROD 300
#define NITEMS (NPROD * PER_PROD)

typedef struct hammer {
	durq *db;
	pthread_barrier_t *bar;
	_Atomic int *live;     /* per item: number of live leases right now */
	_Atomic int *acked;    /* per item: OK acks */
	_Atomic int *produced_done;
	_Atomic int *total_acked;
	int prod_index;
	int overlap, errors, last_rc, abandons;
} hammer;

static void *producer(void *p)
{
	hammer *h = p;
	pthread_barrier_wait(h->bar);
	for (int i = 0; i < PER_PROD; i++) {
		char buf[16];
		snprintf(buf, sizeof buf, "%d", h->prod_index * PER_PROD + i);
		durq_work w = {.queue = "hammer", .payload = buf, .payload_len = strlen(buf)};
		int rc = durq_work_enqueue(h->db, &w, 1);
		if (rc != DURQ_OK) {
			h->errors++;
			h->last_rc = rc;
		}
	}
	atomic_fetch_add(h->produced_done, 1);
	return NULL;
}

static void *consumer(void *p)
{
	hammer *h = p;
	unsigned seen = 0;
	pthread_barrier_wait(h->bar);
	int64_t deadline = conf_mono_ms() + 120000; /* a lost item must fail, not hang */
	while (atomic_load(h->total_acked) < NITEMS && !h->errors) {
		if (conf_mono_ms() > deadline) {
			h->errors++;
			h->last_rc = DURQ_EMPTY; /* reported as: items never delivered */
			break;
		}
		durq_work_item *it = NULL;
		size_t n = 0;
		int rc = durq_work_fetch(h->db, &it, &n, "hammer", 4, 3600000, 5);
		if (rc == DURQ_EMPTY)
			continue;
		if (rc != DURQ_OK) {
			h->errors++;
			h->last_rc = rc;
			break;
		}
		for (size_t k = 0; k < n; k++) {
			char buf[16];
			snprintf(buf, sizeof buf, "%.*s", (int)it[k].payload_len,
				 (const char *)it[k].payload);
			int idx = atoi(buf);
			if (idx < 0 || idx >= NITEMS) {
				h->errors++;
				continue;
			}
			if (atomic_fetch_add(&h->live[idx], 1) != 0)
				h->overlap++;
			/* every 7th delivery is abandoned once (it comes back; still acked once) */
			if (++seen % 7 == 0 && it[k].attempt == 1) {
				atomic_fetch_sub(&h->live[idx], 1);
				rc = durq_work_abandon(h->db, it[k].id, &it[k].token, 0, 0);
				h->abandons++;
			} else {
				/* the count drops only after the ack: nobody may hold it meanwhile */
				rc = durq_work_ack(h->db, it[k].id, &it[k].token, NULL);
				atomic_fetch_sub(&h->live[idx], 1);
				if (rc == DURQ_OK) {
					atomic_fetch_add(&h->acked[idx], 1);
					atomic_fetch_add(h->total_acked, 1);
				}
			}
			if (rc != DURQ_OK) {
				h->errors++;
				h->last_rc = rc;
			}
		}
		durq_work_items_free(it, n);
	}
	return NULL;
}

static void hammer_queue2(conf_ctx *c, durq *second);

static void hammer_queue(conf_ctx *c)
{
	hammer_queue2(c, NULL);
}

/* Consumers alternate between c->db and second (if given): two "processes" on one file. */
static void hammer_queue2(conf_ctx *c, durq *second)
{
	static _Atomic int live[NITEMS], acked[NITEMS];
	_Atomic int produced_done = 0, total_acked = 0;
	for (int i = 0; i < NITEMS; i++) {
		atomic_init(&live[i], 0);
		atomic_init(&acked[i], 0);
	}
	hammer hs[NCONS + NPROD];
	pthread_t th[NCONS + NPROD];
	pthread_barrier_t bar;
	memset(hs, 0, sizeof hs);
	pthread_barrier_init(&bar, NULL, NCONS + NPROD);
	for (int i = 0; i < NCONS + NPROD; i++) {
		hs[i].db = (second && i < NCONS && i % 2) ? second : c->db;
		hs[i].bar = &bar;
		hs[i].live = live;
		hs[i].acked = acked;
		hs[i].produced_done = &produced_done;
		hs[i].total_acked = &total_acked;
		hs[i].prod_index = i - NCONS;
		pthread_create(&th[i], NULL, i < NCONS ? consumer : producer, &hs[i]);
	}
	for (int i = 0; i < NCONS + NPROD; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	int abandons = 0;
	for (int i = 0; i < NCONS + NPROD; i++) {
		if (hs[i].errors)
			fail_msg("thread %d: %d errors, last %s", i, hs[i].errors,
				 durq_error_name(hs[i].last_rc));
		assert_int_equal(hs[i].overlap, 0);
		abandons += hs[i].abandons;
	}
	for (int i = 0; i < NITEMS; i++)
		if (atomic_load(&acked[i]) != 1)
			fail_msg("item %d acked %d times (want exactly 1)", i, atomic_load(&acked[i]));
	assert_true(abandons > 0);
	conf_assert_no_work(c, "hammer");
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, "hammer"), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_leased + d.work_delayed, 0);
}

static void test_hammer_8_threads_each_item_acked_exactly_once(void **state)
{
	hammer_queue(*state);
}

static void test_hammer_per_op_mode_each_item_acked_exactly_once(void **state)
{
	conf_opts o = {.commit_mode = DURQ_COMMIT_PER_OP};
	hammer_queue(conf_use(state, &o));
}

static void test_hammer_two_handles_on_one_database(void **state)
{
	conf_ctx *c = *state;
	durq *second = NULL;
	if (c->durable) /* sqlite-memory: a second handle is another database; one handle */
		assert_int_equal(conf_open_second(c, &second), DURQ_OK);
	hammer_queue2(c, second);
	if (second)
		durq_free(second);
}

static void test_hammered_queue_survives_reopen(void **state)
{
	conf_ctx *c = *state;
	enum { N = 500 };
	durq_work w[N];
	char bufs[N][8];
	for (int i = 0; i < N; i++) {
		snprintf(bufs[i], sizeof bufs[i], "%d", i);
		w[i] = conf_w("q", bufs[i]);
	}
	assert_int_equal(durq_work_enqueue(c->db, w, N), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &it, &n, "q", 200, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 200);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(durq_work_ack(c->db, it[i].id, &it[i].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	assert_int_equal(conf_reopen(c), DURQ_OK);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, "q"), DURQ_OK);
	assert_int_equal(d.work_ready, c->durable ? N - 200 : 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_enqueue_survives_close_and_reopen),
		T(test_turn_ack_survives_close_and_reopen),
		T(test_work_ack_survives_close_and_reopen),
		T(test_live_lease_survives_close_and_reopen),
		T(test_unacked_item_is_redelivered_after_reopen),
		T(test_two_handles_share_or_isolate_per_provider),
		T(test_file_defaults_to_wal_and_synchronous_full),
		T(test_hammer_8_threads_each_item_acked_exactly_once),
		T(test_hammer_per_op_mode_each_item_acked_exactly_once),
		T(test_hammer_two_handles_on_one_database),
		T(test_hammered_queue_survives_reopen),
	};
	return cmocka_run_group_tests_name("conf_durability", tests, conf_group_setup,
					   conf_group_teardown);
}
