/*
 * conf_errors.c — every bad input gets its documented code (design.md §7, durq.h) and the
 * failure has no side effect; error messages and the retryable classification.
 */
#include "conf_factory.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static void assert_msg_nonempty(void)
{
	const char *m = durq_error_last();
	assert_non_null(m);
	assert_true(strlen(m) > 0);
}

/* Open c's URL again with raw options; closes the handle if it unexpectedly opened. */
static int open_with(conf_ctx *c, const durq_options *o)
{
	durq *db = NULL;
	int rc = durq_open(&db, c->url, o);
	if (rc == DURQ_OK)
		durq_free(db);
	else
		assert_null(db);
	return rc;
}

static void test_open_null_out_or_url_is_einval(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(durq_open(NULL, c->url, NULL), DURQ_EINVAL);
	assert_msg_nonempty();
	durq *db = NULL;
	assert_int_equal(durq_open(&db, NULL, NULL), DURQ_EINVAL);
	assert_msg_nonempty();
	assert_null(db);
}

static void test_open_unknown_url_scheme_is_einval(void **state)
{
	(void)state;
	durq *db = NULL;
	assert_int_equal(durq_open(&db, "mysql://localhost/x", NULL), DURQ_EINVAL);
	assert_msg_nonempty();
	assert_null(db);
	assert_int_equal(durq_open(&db, "", NULL), DURQ_EINVAL);
	assert_int_equal(durq_open(&db, "no-scheme-at-all", NULL), DURQ_EINVAL);
	assert_null(db);
}

static void test_open_unreadable_path_is_eio(void **state)
{
	(void)state;
	durq *db = NULL;
	assert_int_equal(durq_open(&db, "sqlite:/nonexistent-dir/x/y.db", NULL), DURQ_EIO);
	assert_msg_nonempty();
	assert_null(db);
	assert_true(durq_error_retryable(DURQ_EIO));
}

static void pool_size_rejected(conf_ctx *c, int size)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.pool_size = size;
	assert_int_equal(open_with(c, &o), DURQ_EINVAL);
	const char *m = durq_error_last();
	if (!strstr(m, "5") || !strstr(m, "20"))
		fail_msg("pool_size=%d: message should name the range 5..20, got '%s'", size, m);
}

static void test_pool_size_4_is_einval_naming_range(void **state)
{
	pool_size_rejected(*state, 4);
}

static void test_pool_size_21_is_einval_naming_range(void **state)
{
	pool_size_rejected(*state, 21);
	pool_size_rejected(*state, -1);
}

static void test_pool_size_5_and_20_are_accepted(void **state)
{
	conf_opts o = {.pool_size = 5};
	conf_ctx *c = conf_use(state, &o);
	durq_options got;
	assert_int_equal(durq_options_get(c->db, &got), DURQ_OK);
	assert_int_equal(got.pool_size, 5);
	o.pool_size = 20;
	c = conf_use(state, &o);
	assert_int_equal(durq_options_get(c->db, &got), DURQ_OK);
	assert_int_equal(got.pool_size, 20);
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
}

static void test_negative_max_batch_is_einval(void **state)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.max_batch = -1;
	assert_int_equal(open_with(*state, &o), DURQ_EINVAL);
	assert_msg_nonempty();
}

static void test_backlog_not_power_of_two_is_einval(void **state)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.backlog = 1000;
	assert_int_equal(open_with(*state, &o), DURQ_EINVAL);
	assert_msg_nonempty();
	o.backlog = 1024;
	assert_int_equal(open_with(*state, &o), DURQ_OK);
}

static void test_unknown_synchronous_value_is_einval(void **state)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.synchronous = 99;
	assert_int_equal(open_with(*state, &o), DURQ_EINVAL);
	o.synchronous = -1;
	assert_int_equal(open_with(*state, &o), DURQ_EINVAL);
	assert_msg_nonempty();
}

static void test_unknown_commit_mode_is_einval(void **state)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = 7;
	assert_int_equal(open_with(*state, &o), DURQ_EINVAL);
	assert_msg_nonempty();
}

static void test_unknown_options_version_is_einval(void **state)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.version = 999;
	assert_int_equal(open_with(*state, &o), DURQ_EINVAL);
	assert_msg_nonempty();
	assert_int_equal(durq_options_init(&o, 999), DURQ_EINVAL);
	assert_int_equal(durq_options_init(&o, DURQ_OPTIONS_VERSION), DURQ_OK);
	assert_int_equal(o.version, DURQ_OPTIONS_VERSION);
}

static void test_environment_override_is_validated(void **state)
{
	conf_ctx *c = *state;
	setenv("DURQ_POOL_SIZE", "4", 1);
	int rc = open_with(c, NULL);
	unsetenv("DURQ_POOL_SIZE");
	assert_int_equal(rc, DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "DURQ_POOL_SIZE"));

	setenv("DURQ_MAX_ATTEMPTS", "3", 1);
	durq *db = NULL;
	rc = durq_open(&db, c->url, NULL);
	unsetenv("DURQ_MAX_ATTEMPTS");
	assert_int_equal(rc, DURQ_OK);
	durq_options got;
	assert_int_equal(durq_options_get(db, &got), DURQ_OK);
	durq_free(db);
	assert_int_equal(got.max_attempts, 3);
}

static void test_null_handle_is_einval(void **state)
{
	(void)state;
	durq_work_item *items = NULL;
	size_t n = 0;
	durq_turn *t = NULL;
	durq_token tok = conf_forged_token();
	int64_t until = 0;
	durq_message m = conf_m("i", 1, "x");
	durq_work w = conf_w(NULL, "x");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	durq_instance_info *info = NULL;
	char **ids = NULL;
	durq_event *ev = NULL;
	durq_execution_info *ex = NULL;
	durq_dead_letter *dl = NULL;
	durq_queue_depths d;
	durq_options o;
	durq_stats st;
	char buf[64];
	size_t pr = 0;

	assert_int_equal(durq_orch_enqueue(NULL, &m, 1), DURQ_EINVAL);
	assert_msg_nonempty();
	assert_int_equal(durq_work_enqueue(NULL, &w, 1), DURQ_EINVAL);
	assert_int_equal(durq_work_fetch(NULL, &items, &n, NULL, 1, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_work_ack(NULL, 1, &tok, NULL), DURQ_EINVAL);
	assert_int_equal(durq_work_abandon(NULL, 1, &tok, 0, 0), DURQ_EINVAL);
	assert_int_equal(durq_work_renew(NULL, &until, 1, &tok, 1000), DURQ_EINVAL);
	assert_int_equal(durq_orch_fetch(NULL, &t, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_orch_ack(NULL, "i", &tok, &r), DURQ_EINVAL);
	assert_int_equal(durq_orch_abandon(NULL, "i", &tok, 0, 0), DURQ_EINVAL);
	assert_int_equal(durq_orch_renew(NULL, &until, "i", &tok, 1000), DURQ_EINVAL);
	assert_int_equal(durq_instance_get(NULL, &info, "i"), DURQ_EINVAL);
	assert_int_equal(durq_instance_list(NULL, &ids, &n, -1), DURQ_EINVAL);
	assert_int_equal(durq_history_read(NULL, &ev, &n, "i", 0), DURQ_EINVAL);
	assert_int_equal(durq_execution_list(NULL, &ex, &n, "i"), DURQ_EINVAL);
	assert_int_equal(durq_instance_delete(NULL, "i"), DURQ_EINVAL);
	assert_int_equal(durq_execution_prune(NULL, &pr, "i", 1), DURQ_EINVAL);
	assert_int_equal(durq_dead_list(NULL, &dl, &n, 10), DURQ_EINVAL);
	assert_int_equal(durq_dead_requeue(NULL, 1), DURQ_EINVAL);
	assert_int_equal(durq_queue_depths_get(NULL, &d, NULL), DURQ_EINVAL);
	assert_int_equal(durq_options_get(NULL, &o), DURQ_EINVAL);
	assert_int_equal(durq_pragma_get(NULL, buf, sizeof buf, "journal_mode"), DURQ_EINVAL);
	assert_int_equal(durq_stats_get(NULL, &st), DURQ_EINVAL);
	assert_int_equal(durq_stats_prometheus(NULL, buf, sizeof buf, &pr), DURQ_EINVAL);
	assert_int_equal(durq_wake(NULL), DURQ_EINVAL);
	durq_free(NULL); /* must be a no-op */
}

static void test_null_out_params_are_einval(void **state)
{
	conf_ctx *c = *state;
	durq_work_item *items = NULL;
	size_t n = 0;
	durq_token tok = conf_forged_token();
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	char **ids = NULL;
	durq_event *ev = NULL;
	durq_execution_info *ex = NULL;
	durq_dead_letter *dl = NULL;

	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	assert_int_equal(durq_work_fetch(c->db, NULL, &n, NULL, 1, 1000, 0), DURQ_EINVAL);
	assert_msg_nonempty();
	assert_int_equal(durq_work_fetch(c->db, &items, NULL, NULL, 1, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_orch_fetch(c->db, NULL, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_instance_get(c->db, NULL, "i"), DURQ_EINVAL);
	assert_int_equal(durq_instance_list(c->db, NULL, &n, -1), DURQ_EINVAL);
	assert_int_equal(durq_instance_list(c->db, &ids, NULL, -1), DURQ_EINVAL);
	assert_int_equal(durq_history_read(c->db, NULL, &n, "i", 0), DURQ_EINVAL);
	assert_int_equal(durq_history_read(c->db, &ev, NULL, "i", 0), DURQ_EINVAL);
	assert_int_equal(durq_execution_list(c->db, NULL, &n, "i"), DURQ_EINVAL);
	assert_int_equal(durq_execution_list(c->db, &ex, NULL, "i"), DURQ_EINVAL);
	assert_int_equal(durq_dead_list(c->db, NULL, &n, 10), DURQ_EINVAL);
	assert_int_equal(durq_dead_list(c->db, &dl, NULL, 10), DURQ_EINVAL);
	assert_int_equal(durq_queue_depths_get(c->db, NULL, NULL), DURQ_EINVAL);
	assert_int_equal(durq_options_get(c->db, NULL), DURQ_EINVAL);
	assert_int_equal(durq_stats_get(c->db, NULL), DURQ_EINVAL);
	/* NULL token / result / instance id on the lease calls */
	assert_int_equal(durq_work_ack(c->db, 1, NULL, NULL), DURQ_EINVAL);
	assert_int_equal(durq_work_abandon(c->db, 1, NULL, 0, 0), DURQ_EINVAL);
	assert_int_equal(durq_orch_ack(c->db, "i", &tok, NULL), DURQ_EINVAL);
	assert_int_equal(durq_orch_ack(c->db, "i", NULL, &r), DURQ_EINVAL);
	assert_int_equal(durq_orch_ack(c->db, NULL, &tok, &r), DURQ_EINVAL);
	assert_int_equal(durq_orch_abandon(c->db, NULL, &tok, 0, 0), DURQ_EINVAL);
	/* the item enqueued above was not consumed by any of this */
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_work_items_free(it, 1);
}

static void test_fetch_with_bad_sizes_is_einval(void **state)
{
	conf_ctx *c = *state;
	durq_work_item *items = NULL;
	size_t n = 0;
	durq_turn *t = NULL;
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	assert_int_equal(conf_msg(c, "i", 1, "x"), DURQ_OK);
	assert_int_equal(durq_work_fetch(c->db, &items, &n, NULL, 0, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_work_fetch(c->db, &items, &n, NULL, 1, -5, 0), DURQ_EINVAL);
	assert_int_equal(durq_orch_fetch(c->db, &t, -5, 0), DURQ_EINVAL);
	/* nothing was leased by the rejected calls */
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_work_items_free(it, 1);
	t = conf_turn_for(c, "i");
	durq_turn_free(t);
}

static void test_enqueue_null_array_with_count_is_einval(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(durq_orch_enqueue(c->db, NULL, 1), DURQ_EINVAL);
	assert_int_equal(durq_work_enqueue(c->db, NULL, 1), DURQ_EINVAL);
	durq_message m = conf_m("i", 1, NULL);
	m.payload_len = 5; /* length without bytes */
	assert_int_equal(durq_orch_enqueue(c->db, &m, 1), DURQ_EINVAL);
	conf_assert_no_turn(c);
}

/* Zero items is not an error, with or without an array: OK, nothing written. */
static void test_enqueue_of_zero_items_is_ok_and_writes_nothing(void **state)
{
	conf_ctx *c = *state;
	durq_message m = conf_m("i", 1, "x");
	durq_work w = conf_w(NULL, "x");
	assert_int_equal(durq_orch_enqueue(c->db, NULL, 0), DURQ_OK);
	assert_int_equal(durq_orch_enqueue(c->db, &m, 0), DURQ_OK);
	assert_int_equal(durq_work_enqueue(c->db, NULL, 0), DURQ_OK);
	assert_int_equal(durq_work_enqueue(c->db, &w, 0), DURQ_OK);
	conf_assert_no_turn(c);
	conf_assert_no_work(c, NULL);
}

static void test_payload_over_max_is_etoobig(void **state)
{
	conf_ctx *c = *state;
	size_t max = DURQ_DEFAULT_MAX_PAYLOAD;
	char *big = calloc(1, max + 1);
	assert_non_null(big);
	durq_message m = conf_m("i1", 1, NULL);
	m.payload = big;
	m.payload_len = max + 1;
	durq_work w = conf_w(NULL, NULL);
	w.payload = big;
	w.payload_len = max + 1;
	int rc1 = durq_orch_enqueue(c->db, &m, 1);
	int rc2 = durq_work_enqueue(c->db, &w, 1);
	free(big);
	assert_int_equal(rc1, DURQ_ETOOBIG);
	assert_int_equal(rc2, DURQ_ETOOBIG);
	assert_msg_nonempty();
	conf_assert_no_turn(c);
	conf_assert_no_work(c, NULL);
}

static void test_payload_exactly_max_is_ok(void **state)
{
	conf_ctx *c = *state;
	size_t max = DURQ_DEFAULT_MAX_PAYLOAD;
	unsigned char *big = malloc(max);
	assert_non_null(big);
	for (size_t i = 0; i < max; i++)
		big[i] = (unsigned char)(i * 131 + 7);
	durq_work w = conf_w(NULL, NULL);
	w.payload = big;
	w.payload_len = max;
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_OK);
	durq_message m = conf_m("i1", 1, NULL);
	m.payload = big;
	m.payload_len = max;
	assert_int_equal(durq_orch_enqueue(c->db, &m, 1), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_int_equal(it->payload_len, max);
	assert_memory_equal(it->payload, big, max);
	durq_work_items_free(it, 1);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->messages[0].payload_len, max);
	assert_memory_equal(t->messages[0].payload, big, max);
	durq_turn_free(t);
	free(big);
}

static void test_max_payload_option_is_enforced(void **state)
{
	conf_opts o = {.max_payload = 10};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_work(c, NULL, "0123456789", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "0123456789A", 0, 0), DURQ_ETOOBIG);
	assert_int_equal(conf_msg(c, "i", 1, "0123456789A"), DURQ_ETOOBIG);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "0123456789");
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, NULL);
}

static void make_id(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	buf[len] = '\0';
}

static void test_instance_id_of_257_bytes_is_einval(void **state)
{
	conf_ctx *c = *state;
	char id[DURQ_INSTANCE_ID_MAX + 2];
	make_id(id, DURQ_INSTANCE_ID_MAX + 1);
	assert_int_equal(conf_msg(c, id, 1, "x"), DURQ_EINVAL);
	assert_msg_nonempty();
	durq_work w = conf_w(NULL, "x");
	w.instance_id = id;
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_EINVAL);
	conf_assert_no_turn(c);
	conf_assert_no_work(c, NULL);
}

static void test_instance_id_of_256_bytes_is_ok(void **state)
{
	conf_ctx *c = *state;
	char id[DURQ_INSTANCE_ID_MAX + 1];
	make_id(id, DURQ_INSTANCE_ID_MAX);
	conf_create_instance(c, id);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, id), DURQ_OK);
	assert_string_equal(info->id, id);
	durq_instance_info_free(info);
}

/* Ids, queue names and key/value keys are UTF-8 on every provider (PostgreSQL refuses
 * anything else, so durq refuses it alike, before anything is written). */
static void test_ids_names_and_keys_that_are_not_utf8_are_einval(void **state)
{
	conf_ctx *c = *state;
	static const char *const bad[] = {
		"\xff",             /* never in UTF-8 */
		"a\xc0\xaf" "b",    /* overlong '/' */
		"\xed\xa0\x80",     /* a surrogate */
		"\xf4\x90\x80\x80", /* past U+10FFFF */
		"ok\xe2\x82",       /* truncated at the end */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(conf_msg(c, bad[i], 1, "x"), DURQ_EINVAL);
		assert_non_null(strstr(durq_error_last(), "UTF-8"));
		durq_work w = conf_w(NULL, "x");
		w.queue = bad[i];
		assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_EINVAL);
		assert_non_null(strstr(durq_error_last(), "UTF-8"));
		void *v = NULL;
		size_t n = 0;
		assert_int_equal(durq_kv_get(c->db, &v, &n, "i", bad[i]), DURQ_EINVAL);
		assert_int_equal(durq_kv_get(c->db, &v, &n, bad[i], "k"), DURQ_EINVAL);
	}
	conf_assert_no_turn(c);
	conf_assert_no_work(c, NULL);
	conf_create_instance(c, "caf\xc3\xa9-\xe6\x97\xa5\xf0\x9f\x98\x80"); /* café-日😀: fine */
}

static void test_empty_or_null_instance_id_is_einval(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "", 1, "x"), DURQ_EINVAL);
	assert_msg_nonempty();
	assert_int_equal(conf_msg(c, NULL, 1, "x"), DURQ_EINVAL);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, ""), DURQ_EINVAL);
	conf_assert_no_turn(c);
}

static void test_queue_name_of_257_bytes_is_einval(void **state)
{
	conf_ctx *c = *state;
	char q[DURQ_QUEUE_NAME_MAX + 2];
	make_id(q, DURQ_QUEUE_NAME_MAX + 1);
	assert_int_equal(conf_work(c, q, "x", 0, 0), DURQ_EINVAL);
	durq_work_item *items = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &items, &n, q, 1, 1000, 0), DURQ_EINVAL);
	q[DURQ_QUEUE_NAME_MAX] = '\0';
	assert_int_equal(conf_work(c, q, "x", 0, 0), DURQ_OK);
	assert_int_equal(durq_work_fetch(c->db, &items, &n, q, 1, 1000, 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(items[0].queue, q);
	durq_work_items_free(items, n);
}

static void test_enqueue_batch_with_one_bad_item_enqueues_nothing(void **state)
{
	conf_ctx *c = *state;
	durq_message m[3] = {conf_m("a", 1, "x"), conf_m("", 1, "x"), conf_m("c", 1, "x")};
	assert_int_equal(durq_orch_enqueue(c->db, m, 3), DURQ_EINVAL);
	conf_assert_no_turn(c);
	durq_work w[2] = {conf_w(NULL, "ok"), conf_w(NULL, "bad")};
	w[1].payload = NULL; /* length without bytes */
	w[1].payload_len = 3;
	assert_int_equal(durq_work_enqueue(c->db, w, 2), DURQ_EINVAL);
	conf_assert_no_work(c, NULL);
}

static void test_forged_work_token_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_token bad = conf_forged_token();
	durq_token zero;
	memset(&zero, 0, sizeof zero);
	int64_t until = 0;
	assert_int_equal(durq_work_ack(c->db, it->id, &bad, NULL), DURQ_ELOCKLOST);
	assert_msg_nonempty();
	assert_int_equal(durq_work_ack(c->db, it->id, &zero, NULL), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_renew(c->db, &until, it->id, &bad, 99999), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_abandon(c->db, it->id, &bad, 0, 0), DURQ_ELOCKLOST);
	/* the real lease is untouched: nobody else can fetch, the owner can ack */
	conf_assert_no_work(c, NULL);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
}

static void test_token_of_another_item_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_work(c, NULL, "a", 0, 0), DURQ_OK);
	assert_int_equal(conf_work(c, NULL, "b", 0, 0), DURQ_OK);
	/* two separate fetches: two leases (items of one batch may share a token) */
	durq_work_item *a = NULL, *b = NULL;
	assert_int_equal(conf_fetch1(c, &a, NULL, 0), DURQ_OK);
	assert_int_equal(conf_fetch1(c, &b, NULL, 0), DURQ_OK);
	assert_memory_not_equal(a->token.bytes, b->token.bytes, 16);
	int64_t until = 0;
	assert_int_equal(durq_work_ack(c->db, a->id, &b->token, NULL), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_renew(c->db, &until, a->id, &b->token, 1000), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_abandon(c->db, b->id, &a->token, 0, 0), DURQ_ELOCKLOST);
	conf_assert_no_work(c, NULL);
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, NULL), DURQ_OK);
	assert_int_equal(durq_work_ack(c->db, b->id, &b->token, NULL), DURQ_OK);
	durq_work_items_free(a, 1);
	durq_work_items_free(b, 1);
}

static void test_forged_turn_token_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_token bad = conf_forged_token();
	int64_t until = 0;
	assert_int_equal(conf_ack_event(c, &(durq_turn){.instance_id = "i1", .token = bad}, 1, "x"),
			 DURQ_ELOCKLOST);
	assert_int_equal(durq_orch_renew(c->db, &until, "i1", &bad, 99999), DURQ_ELOCKLOST);
	assert_int_equal(durq_orch_abandon(c->db, "i1", &bad, 0, 0), DURQ_ELOCKLOST);
	/* right token, wrong instance */
	assert_int_equal(durq_orch_abandon(c->db, "other", &t->token, 0, 0), DURQ_ELOCKLOST);
	assert_int_equal(conf_status(c, "i1"), -1);
	conf_assert_no_turn(c);
	assert_int_equal(conf_ack_event(c, t, 1, "x"), DURQ_OK);
	durq_turn_free(t);
}

static void test_unknown_work_id_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	durq_token bad = conf_forged_token();
	int64_t until = 0;
	assert_int_equal(durq_work_ack(c->db, 987654321, &bad, NULL), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_renew(c->db, &until, 987654321, &bad, 1000), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_abandon(c->db, 987654321, &bad, 0, 0), DURQ_ELOCKLOST);
}

static void test_double_work_ack_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "x"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	durq_message done = conf_m("i1", 4, "r");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_OK);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_ELOCKLOST);
	durq_work_items_free(it, 1);
	/* exactly one completion */
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	durq_turn_free(t);
}

static void test_double_turn_ack_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(conf_ack_event(c, t, 1, "first"), DURQ_OK);
	assert_int_equal(conf_ack_event(c, t, 2, "second"), DURQ_ELOCKLOST);
	durq_turn_free(t);
	durq_event *h = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &h), 1);
	durq_events_free(h, 1);
}

static void test_work_ack_after_lease_expiry_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_activity(c, "i1", 1, 1, "x"), DURQ_OK);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, 1000), DURQ_OK);
	conf_advance(c, 1001);
	durq_message done = conf_m("i1", 4, "r");
	/* nobody refetched it: the lease is expired all the same */
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, &done), DURQ_ELOCKLOST);
	durq_work_items_free(it, 1);
	conf_assert_no_turn(c);
	assert_int_equal(conf_fetch1(c, &it, NULL, 0), DURQ_OK);
	assert_int_equal(it->attempt, 2);
	durq_work_items_free(it, 1);
}

static void test_turn_ack_after_lease_expiry_is_elocklost(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	durq_turn *t = NULL;
	assert_int_equal(conf_turn(c, &t, 1000), DURQ_OK);
	conf_advance(c, 1001);
	assert_int_equal(conf_ack_event(c, t, 1, "late"), DURQ_ELOCKLOST);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, "i1"), -1);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 1);
	durq_turn_free(t);
}

static void test_use_after_close_is_eclosed(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(durq_close(c->db), DURQ_OK);
	durq_work_item *items = NULL;
	size_t n = 0;
	durq_turn *t = NULL;
	durq_token tok = conf_forged_token();
	durq_instance_info *info = NULL;
	assert_int_equal(conf_work(c, NULL, "x", 0, 0), DURQ_ECLOSED);
	assert_msg_nonempty();
	assert_int_equal(conf_msg(c, "i", 1, "x"), DURQ_ECLOSED);
	assert_int_equal(durq_work_fetch(c->db, &items, &n, NULL, 1, 1000, 0), DURQ_ECLOSED);
	assert_int_equal(durq_work_fetch(c->db, &items, &n, NULL, 1, 1000, 50), DURQ_ECLOSED);
	assert_int_equal(durq_orch_fetch(c->db, &t, 1000, 0), DURQ_ECLOSED);
	assert_int_equal(durq_work_ack(c->db, 1, &tok, NULL), DURQ_ECLOSED);
	assert_int_equal(durq_instance_get(c->db, &info, "i"), DURQ_ECLOSED);
	assert_int_equal(durq_close(c->db), DURQ_OK); /* safe to call twice */
}

typedef struct closer_job {
	durq *db;
	pthread_barrier_t *bar;
	_Atomic int *progress; /* OK'd enqueues of all jobs, plus 1000 per job that has finished */
	int ok, closed, other, other_rc, ok_after_closed;
} closer_job;

static void *enqueue_until_closed(void *p)
{
	closer_job *j = p;
	pthread_barrier_wait(j->bar);
	for (int i = 0; i < 400; i++) {
		durq_work w = conf_w("close", "x");
		int rc = durq_work_enqueue(j->db, &w, 1);
		if (rc == DURQ_OK) {
			j->ok++;
			atomic_fetch_add(j->progress, 1);
			if (j->closed)
				j->ok_after_closed++;
		} else if (rc == DURQ_ECLOSED) {
			j->closed++;
		} else {
			j->other++;
			j->other_rc = rc;
		}
	}
	atomic_fetch_add(j->progress, 1000);
	return NULL;
}

static void test_close_with_pending_ops_completes_them(void **state)
{
	conf_ctx *c = *state;
	enum { N = 6 };
	closer_job jobs[N];
	pthread_t th[N];
	pthread_barrier_t bar;
	_Atomic int progress = 0;
	memset(jobs, 0, sizeof jobs);
	pthread_barrier_init(&bar, NULL, N + 1);
	for (int i = 0; i < N; i++) {
		jobs[i].db = c->db;
		jobs[i].bar = &bar;
		jobs[i].progress = &progress;
		pthread_create(&th[i], NULL, enqueue_until_closed, &jobs[i]);
	}
	pthread_barrier_wait(&bar);
	/* close once N enqueues were OK'd (the enqueuers are mid-loop: ops are in flight) or,
	 * on a machine that ran them all first, once they finished; any order is correct */
	while (atomic_load(&progress) < N)
		sched_yield();
	int rc = durq_close(c->db);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(rc, DURQ_OK);
	int ok = 0;
	for (int i = 0; i < N; i++) {
		if (jobs[i].other)
			fail_msg("enqueue racing close returned %s (want OK or ECLOSED)",
				 durq_error_name(jobs[i].other_rc));
		assert_int_equal(jobs[i].ok_after_closed, 0);
		ok += jobs[i].ok;
	}
	assert_true(ok >= N); /* close came after N OKs (or after a job's 400) */
	if (!c->durable)
		return; /* sqlite-memory: the data dies with the handle; codes checked above */
	assert_int_equal(conf_reopen(c), DURQ_OK);
	durq_work_item *items = NULL;
	size_t n = 0;
	rc = durq_work_fetch(c->db, &items, &n, "close", 100000, CONF_LEASE, 0);
	assert_int_equal(rc, DURQ_OK);
	durq_work_items_free(items, n);
	assert_int_equal(n, (size_t)ok); /* every OK'd enqueue survived the close, none extra */
}

static void test_bad_turn_result_is_rejected_and_keeps_lease(void **state)
{
	conf_opts o = {.max_payload = 8};
	conf_ctx *c = conf_use(state, &o);
	assert_int_equal(conf_msg(c, "i1", 1, "x"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event big = conf_ev(1, "123456789"); /* 9 bytes */
	durq_event ok = conf_ev(1, "1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;

	r.version = 99;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r.version = DURQ_TURN_RESULT_VERSION;
	r.status = 99;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r.status = 0;
	r.history = &big;
	r.n_history = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	r.history = &ok;
	r.output = "123456789";
	r.output_len = 9;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	r.output_len = 8;
	r.n_work = 1; /* count without array */
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r.n_work = 0;
	durq_message bad = conf_m("", 1, "x");
	r.messages = &bad;
	r.n_messages = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	assert_msg_nonempty();

	/* nothing happened and the lease is intact */
	assert_int_equal(conf_status(c, "i1"), -1);
	conf_assert_no_turn(c);
	r.n_messages = 0;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_payload(info->output, info->output_len, "12345678");
	durq_instance_info_free(info);
}

static void test_error_last_is_set_and_named(void **state)
{
	conf_ctx *c = *state;
	durq_token bad = conf_forged_token();
	assert_int_equal(durq_work_ack(c->db, 1, &bad, NULL), DURQ_ELOCKLOST);
	assert_msg_nonempty();
	assert_string_equal(durq_error_name(DURQ_ELOCKLOST), "DURQ_ELOCKLOST");
	assert_string_equal(durq_error_name(DURQ_OK), "DURQ_OK");
	assert_string_equal(durq_error_name(DURQ_EMPTY), "DURQ_EMPTY");
	assert_string_equal(durq_error_name(DURQ_ECLOSED), "DURQ_ECLOSED");
	assert_non_null(durq_error_name(-12345)); /* unknown code: still a string */
}

static void test_error_retryable_only_for_busy_io_full(void **state)
{
	(void)state;
	for (int code = 0; code >= DURQ_ECLOSED; code--) {
		int want = code == DURQ_EBUSY || code == DURQ_EIO || code == DURQ_EFULL;
		if (durq_error_retryable(code) != want)
			fail_msg("durq_error_retryable(%s) = %d, want %d", durq_error_name(code),
				 durq_error_retryable(code), want);
	}
}

static void *read_error(void *p)
{
	char *buf = p;
	snprintf(buf, 256, "%s", durq_error_last());
	durq_open(NULL, "x", NULL); /* an error on this thread only */
	return NULL;
}

static void test_error_last_is_per_thread(void **state)
{
	(void)state;
	assert_int_equal(durq_open(NULL, "sqlite::memory:", NULL), DURQ_EINVAL);
	char mine[256];
	snprintf(mine, sizeof mine, "%s", durq_error_last());
	assert_true(strlen(mine) > 0);
	char theirs[256] = "unset";
	pthread_t th;
	pthread_create(&th, NULL, read_error, theirs);
	pthread_join(th, NULL);
	assert_string_equal(theirs, ""); /* a fresh thread has no error */
	assert_string_equal(durq_error_last(), mine);
}

static void test_pragma_get_rejects_unknown_names(void **state)
{
	conf_ctx *c = *state;
	char buf[64];
	assert_int_equal(durq_pragma_get(c->db, buf, sizeof buf, "writable_schema"), DURQ_EINVAL);
	assert_int_equal(durq_pragma_get(c->db, buf, sizeof buf, "journal_mode; DROP TABLE x"),
			 DURQ_EINVAL);
	assert_int_equal(durq_pragma_get(c->db, buf, sizeof buf, "foreign_keys"), DURQ_OK);
	assert_string_equal(buf, "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_null_out_or_url_is_einval),
		T(test_open_unknown_url_scheme_is_einval),
		T(test_open_unreadable_path_is_eio),
		T(test_pool_size_4_is_einval_naming_range),
		T(test_pool_size_21_is_einval_naming_range),
		T(test_pool_size_5_and_20_are_accepted),
		T(test_negative_max_batch_is_einval),
		T(test_backlog_not_power_of_two_is_einval),
		T(test_unknown_synchronous_value_is_einval),
		T(test_unknown_commit_mode_is_einval),
		T(test_unknown_options_version_is_einval),
		T(test_environment_override_is_validated),
		T(test_null_handle_is_einval),
		T(test_null_out_params_are_einval),
		T(test_fetch_with_bad_sizes_is_einval),
		T(test_enqueue_null_array_with_count_is_einval),
		T(test_enqueue_of_zero_items_is_ok_and_writes_nothing),
		T(test_payload_over_max_is_etoobig),
		T(test_payload_exactly_max_is_ok),
		T(test_max_payload_option_is_enforced),
		T(test_instance_id_of_257_bytes_is_einval),
		T(test_instance_id_of_256_bytes_is_ok),
		T(test_empty_or_null_instance_id_is_einval),
		T(test_ids_names_and_keys_that_are_not_utf8_are_einval),
		T(test_queue_name_of_257_bytes_is_einval),
		T(test_enqueue_batch_with_one_bad_item_enqueues_nothing),
		T(test_forged_work_token_is_elocklost),
		T(test_token_of_another_item_is_elocklost),
		T(test_forged_turn_token_is_elocklost),
		T(test_unknown_work_id_is_elocklost),
		T(test_double_work_ack_is_elocklost),
		T(test_double_turn_ack_is_elocklost),
		T(test_work_ack_after_lease_expiry_is_elocklost),
		T(test_turn_ack_after_lease_expiry_is_elocklost),
		T(test_use_after_close_is_eclosed),
		T(test_close_with_pending_ops_completes_them),
		T(test_bad_turn_result_is_rejected_and_keeps_lease),
		T(test_error_last_is_set_and_named),
		T(test_error_retryable_only_for_busy_io_full),
		T(test_error_last_is_per_thread),
		T(test_pragma_get_rejects_unknown_names),
	};
	return cmocka_run_group_tests_name("conf_errors", tests, conf_group_setup,
					   conf_group_teardown);
}
