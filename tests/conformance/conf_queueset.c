/*
 * conf_queueset.c — fetching from several worker queues at once (issue 10, G2): only the
 * named queues, the default queue and the named ones, or every queue; ordered across the
 * queues as within one (priority, then FIFO); one long poll woken by any of them.
 */
#include "conf_factory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void put(conf_ctx *c, const char *queue, const char *payload, int priority)
{
	assert_int_equal(conf_work(c, queue, payload, priority, 0), DURQ_OK);
}

static durq_queue_set set_of(int select, const char *const *names, size_t n)
{
	durq_queue_set qs = DURQ_QUEUE_SET_INIT;
	qs.select = select;
	qs.names = names;
	qs.n = n;
	return qs;
}

/* Fetch from qs (timeout 0) and return the payloads as "p1,p2" (acking nothing). */
static void fetch_set(conf_ctx *c, const durq_queue_set *qs, size_t max, char *out)
{
	durq_work_item *it = NULL;
	size_t n = 0;
	out[0] = '\0';
	int rc = durq_work_fetch_set(c->db, &it, &n, qs, max, CONF_LEASE, 0);
	if (rc == DURQ_EMPTY)
		return;
	if (rc != DURQ_OK)
		fail_msg("durq_work_fetch_set: %s: %s", durq_error_name(rc), durq_error_last());
	for (size_t i = 0; i < n; i++)
		sprintf(out + strlen(out), "%s%.*s", i ? "," : "", (int)it[i].payload_len,
			(const char *)it[i].payload);
	durq_work_items_free(it, n);
}

static void test_only_named_queues_fifo_across_them(void **state)
{
	conf_ctx *c = *state;
	put(c, "a", "a1", 0);
	put(c, "b", "b1", 0);
	put(c, "c", "c1", 0);
	put(c, "a", "a2", 0);
	put(c, "b", "b2", 0);
	const char *names[] = {"a", "b"};
	durq_queue_set qs = set_of(DURQ_QUEUES_ONLY, names, 2);
	char got[256];
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, "a1,b1,a2,b2");
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, ""); /* all leased; c1 is not theirs */
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, "c", CONF_LEASE), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "c1");
	durq_work_items_free(it, 1);
}

static void test_priority_first_then_fifo_across_queues(void **state)
{
	conf_ctx *c = *state;
	put(c, "a", "a-low", 0);
	put(c, "b", "b-low", 0);
	put(c, "a", "a-high", 5);
	put(c, "b", "b-high", 5);
	const char *names[] = {"b", "a"}; /* the order of the names changes nothing */
	durq_queue_set qs = set_of(DURQ_QUEUES_ONLY, names, 2);
	char got[256];
	fetch_set(c, &qs, 3, got);
	assert_string_equal(got, "a-high,b-high,a-low");
	fetch_set(c, &qs, 3, got);
	assert_string_equal(got, "b-low");
}

static void test_default_and_named(void **state)
{
	conf_ctx *c = *state;
	put(c, NULL, "d1", 0);
	put(c, "x", "x1", 0);
	put(c, "y", "y1", 0);
	put(c, "", "d2", 0);
	const char *names[] = {"x"};
	durq_queue_set qs = set_of(DURQ_QUEUES_DEFAULT_AND, names, 1);
	char got[256];
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, "d1,x1,d2");
	qs = set_of(DURQ_QUEUES_DEFAULT_AND, NULL, 0); /* the default queue alone */
	put(c, NULL, "d3", 0);
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, "d3");
}

static void test_any_queue(void **state)
{
	conf_ctx *c = *state;
	put(c, "q1", "1", 0);
	put(c, NULL, "2", 0);
	put(c, "q2", "3", 1);
	durq_queue_set qs = set_of(DURQ_QUEUES_ANY, NULL, 0);
	char got[256];
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, "3,1,2");
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, "");
}

static void test_expired_leases_come_back_through_the_set(void **state)
{
	conf_ctx *c = *state;
	put(c, "a", "a1", 0);
	put(c, "b", "b1", 0);
	const char *names[] = {"a", "b"};
	durq_queue_set qs = set_of(DURQ_QUEUES_ONLY, names, 2);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &qs, 10, 1000, 0), DURQ_OK);
	assert_int_equal(n, 2);
	durq_work_items_free(it, n);
	conf_advance(c, 1001);
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &qs, 10, 1000, 0), DURQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(it[0].attempt, 2);
	assert_int_equal(durq_work_ack(c->db, it[0].id, &it[0].token, NULL), DURQ_OK);
	assert_int_equal(durq_work_ack(c->db, it[1].id, &it[1].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	conf_assert_no_work(c, "a");
	conf_assert_no_work(c, "b");
}

static void test_poisoned_items_of_the_set_are_dead_lettered(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	put(c, "a", "bad", 0);
	put(c, "b", "good", 0);
	const char *names[] = {"a", "b"};
	durq_queue_set qs = set_of(DURQ_QUEUES_ONLY, names, 2);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &qs, 1, 1000, 0), DURQ_OK);
	assert_payload(it[0].payload, it[0].payload_len, "bad");
	durq_work_items_free(it, n);
	conf_advance(c, 1001);
	char got[64];
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, "good");
	assert_int_equal(conf_dead_count(c), 1);
}

static void test_duplicate_names_count_once(void **state)
{
	conf_ctx *c = *state;
	put(c, "a", "a1", 0);
	put(c, NULL, "d1", 0);
	const char *names[] = {"a", "a", ""};
	durq_queue_set qs = set_of(DURQ_QUEUES_DEFAULT_AND, names, 3);
	char got[64];
	fetch_set(c, &qs, 10, got);
	assert_string_equal(got, "a1,d1");
}

typedef struct waiter {
	durq *db;
	const durq_queue_set *qs;
	int rc;
	char payload[32];
} waiter;

static void *wait_fetch(void *arg)
{
	waiter *w = arg;
	durq_work_item *it = NULL;
	size_t n = 0;
	w->rc = durq_work_fetch_set(w->db, &it, &n, w->qs, 1, CONF_LEASE, CONF_NEVER_MS);
	if (w->rc == DURQ_OK)
		snprintf(w->payload, sizeof w->payload, "%.*s", (int)it[0].payload_len,
			 (const char *)it[0].payload);
	durq_work_items_free(it, n);
	return NULL;
}

static void test_one_long_poll_is_woken_by_any_queue_of_the_set(void **state)
{
	conf_opts o = {.wall_clock = 1};
	conf_ctx *c = conf_use(state, &o);
	const char *names[] = {"a", "b"};
	durq_queue_set qs = set_of(DURQ_QUEUES_ONLY, names, 2);
	durq_stats s;
	assert_int_equal(durq_stats_get(c->db, &s), DURQ_OK);
	uint64_t claims = s.ops[DURQ_OP_WORK_CLAIM];
	waiter w = {.db = c->db, .qs = &qs};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_fetch, &w), 0);
	_Atomic int stop = 0;
	assert_true(conf_wait_ops(c->db, DURQ_OP_WORK_CLAIM, claims + 1, &stop));
	put(c, "b", "woke", 0);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, DURQ_OK);
	assert_string_equal(w.payload, "woke");
}

static void test_bad_queue_sets_are_refused(void **state)
{
	conf_ctx *c = *state;
	durq_work_item *it = NULL;
	size_t n = 0;
	const char *names[DURQ_QUEUE_SET_MAX + 1];
	for (int i = 0; i <= DURQ_QUEUE_SET_MAX; i++)
		names[i] = "q";
	char longname[DURQ_QUEUE_NAME_MAX + 2];
	memset(longname, 'q', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	const char *bad_name[] = {longname};
	durq_queue_set ok = set_of(DURQ_QUEUES_ONLY, names, 1);
	durq_queue_set sets[6] = {
		set_of(DURQ_QUEUES_ONLY, NULL, 0),        /* names nothing */
		set_of(DURQ_QUEUES_ANY, names, 1),        /* ANY takes no names */
		set_of(7, names, 1),                      /* unknown select */
		set_of(DURQ_QUEUES_ONLY, NULL, 2),        /* NULL names with a count */
		set_of(DURQ_QUEUES_ONLY, bad_name, 1),    /* a name too long */
		ok,
	};
	sets[5].version = 99;
	for (int i = 0; i < 6; i++)
		assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &sets[i], 1, CONF_LEASE, 0),
				 DURQ_EINVAL);
	durq_queue_set many = set_of(DURQ_QUEUES_ONLY, names, DURQ_QUEUE_SET_MAX + 1);
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &many, 1, CONF_LEASE, 0),
			 DURQ_ETOOBIG);
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, NULL, 1, CONF_LEASE, 0), DURQ_EINVAL);
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &ok, 0, CONF_LEASE, 0), DURQ_EINVAL);
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &ok, 1, 0, 0), DURQ_EINVAL);
	many.n = DURQ_QUEUE_SET_MAX; /* the most allowed: fine */
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &many, 1, CONF_LEASE, 0), DURQ_EMPTY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_only_named_queues_fifo_across_them),
		T(test_priority_first_then_fifo_across_queues),
		T(test_default_and_named),
		T(test_any_queue),
		T(test_expired_leases_come_back_through_the_set),
		T(test_poisoned_items_of_the_set_are_dead_lettered),
		T(test_duplicate_names_count_once),
		T(test_one_long_poll_is_woken_by_any_queue_of_the_set),
		T(test_bad_queue_sets_are_refused),
	};
	return cmocka_run_group_tests_name("conf_queueset", tests, conf_group_setup,
					   conf_group_teardown);
}
