/*
 * conf_limits.c — size limits of one call (durq.h "limits"): options.max_turn_entries per
 * array of a turn result and per enqueue call, the payload bytes of one turn
 * (DURQ_TURN_PAYLOAD_FACTOR * max_payload), DURQ_NAME_MAX for name / version tag, and keyset
 * paging of instance ids (durq_instance_list_page). A refused call writes nothing and a
 * refused turn keeps its lease.
 *
 * The unpaged durq_instance_list's cap (DURQ_INSTANCE_LIST_MAX ids) needs 100,001 instances;
 * creating them through turns is too slow for this suite, so tests/unit/test_limits.c fills
 * the SQLite table directly to pin it.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

/* Reopen c's URL with options.max_turn_entries = max (the rest as the fixture's). */
static void reopen_with_entries(conf_ctx *c, size_t max)
{
	c->opts.max_turn_entries = max;
	assert_int_equal(conf_reopen(c), DURQ_OK);
}

static void assert_msg_has(const char *a, const char *b, const char *d)
{
	const char *m = durq_error_last();
	if (!strstr(m, a) || (b && !strstr(m, b)) || (d && !strstr(m, d)))
		fail_msg("message '%s' lacks '%s' / '%s' / '%s'", m, a, b ? b : "", d ? d : "");
}

static int64_t orch_leased(conf_ctx *c)
{
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	return d.orch_leased;
}

/* Nothing of a refused first turn is stored and its message is still leased. */
static void assert_first_turn_unwritten(conf_ctx *c, const char *inst)
{
	assert_int_equal(conf_status(c, inst), -1);
	assert_int_equal(orch_leased(c), 1);
	conf_assert_no_work(c, NULL);
}

/* ---- max_turn_entries ---------------------------------------------------------------- */

static void test_turn_over_max_entries_is_etoobig_and_keeps_lease(void **state)
{
	conf_ctx *c = *state;
	reopen_with_entries(c, 3);
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event ev[4] = {conf_ev(1, "a"), conf_ev(2, "b"), conf_ev(3, "c"), conf_ev(4, "d")};
	durq_message m[4] = {conf_m("i1", 5, "m"), conf_m("i1", 5, "m"), conf_m("i1", 5, "m"),
			     conf_m("i1", 5, "m")};
	durq_work w[4] = {conf_w(NULL, "w"), conf_w(NULL, "w"), conf_w(NULL, "w"),
			  conf_w(NULL, "w")};
	durq_activity_ref cancel[4] = {{1, 7}, {1, 8}, {1, 9}, {1, 10}};
	for (int k = 0; k < 4; k++)
		w[k].instance_id = "i1", w[k].execution_id = 1, w[k].activity_id = (uint64_t)k + 1;
	durq_turn_result ok = DURQ_TURN_RESULT_INIT;
	ok.name = "wf";
	ok.history = ev, ok.n_history = 3;
	ok.messages = m, ok.n_messages = 3;
	ok.work = w, ok.n_work = 3;
	ok.cancel = cancel, ok.n_cancel = 3;

	durq_turn_result r = ok;
	r.n_messages = 4;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_msg_has("messages", "4", "max_turn_entries 3");
	r = ok, r.n_history = 4;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_msg_has("history events", "4", "max_turn_entries 3");
	r = ok, r.n_work = 4;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_msg_has("work items", "4", "max_turn_entries 3");
	r = ok, r.n_cancel = 4;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_msg_has("cancels", "4", "max_turn_entries 3");
	assert_first_turn_unwritten(c, "i1");

	/* the lease was kept: the same token acks a result at the limit */
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &ok), DURQ_OK);
	durq_turn_free(t);
	durq_event *hist = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &hist), 3);
	durq_events_free(hist, 3);
	durq_work_item *items = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(c->db, &items, &n, NULL, 10, CONF_LEASE, 0), DURQ_OK);
	assert_int_equal(n, 3);
	durq_work_items_free(items, n);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_messages, 3);
	durq_turn_free(t);
}

static void test_enqueue_over_max_entries_is_etoobig(void **state)
{
	conf_ctx *c = *state;
	reopen_with_entries(c, 3);
	durq_message m[4] = {conf_m("i1", 1, "a"), conf_m("i2", 1, "b"), conf_m("i3", 1, "c"),
			     conf_m("i4", 1, "d")};
	durq_work w[4] = {conf_w(NULL, "a"), conf_w(NULL, "b"), conf_w(NULL, "c"),
			  conf_w(NULL, "d")};
	assert_int_equal(durq_orch_enqueue(c->db, m, 4), DURQ_ETOOBIG);
	assert_msg_has("messages", "4", "max_turn_entries 3");
	assert_int_equal(durq_work_enqueue(c->db, w, 4), DURQ_ETOOBIG);
	assert_msg_has("work items", "4", "max_turn_entries 3");
	conf_assert_no_turn(c);
	conf_assert_no_work(c, NULL);
	assert_int_equal(durq_orch_enqueue(c->db, m, 3), DURQ_OK);
	assert_int_equal(durq_work_enqueue(c->db, w, 3), DURQ_OK);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.orch_ready, 3);
	assert_int_equal(d.work_ready, 3);
}

static void test_default_max_turn_entries_is_10000(void **state)
{
	conf_ctx *c = *state;
	durq_options o;
	assert_int_equal(durq_options_get(c->db, &o), DURQ_OK);
	assert_int_equal(o.max_turn_entries, DURQ_DEFAULT_MAX_TURN_ENTRIES);
	size_t n = DURQ_DEFAULT_MAX_TURN_ENTRIES + 1;
	durq_work *w = calloc(n, sizeof(*w));
	assert_non_null(w);
	int rc = durq_work_enqueue(c->db, w, n);
	free(w);
	assert_int_equal(rc, DURQ_ETOOBIG);
	assert_msg_has("10001", "max_turn_entries 10000", NULL);
	conf_assert_no_work(c, NULL);
}

static void test_max_turn_entries_out_of_range_is_einval_at_open(void **state)
{
	conf_ctx *c = *state;
	durq_options o = c->opts;
	durq *db = NULL;
	size_t bad[] = {DURQ_MAX_TURN_ENTRIES_LIMIT + 1, (size_t)-1};
	for (size_t i = 0; i < 2; i++) {
		o.max_turn_entries = bad[i];
		assert_int_equal(durq_open(&db, c->url, &o), DURQ_EINVAL);
		assert_null(db);
		assert_msg_has("max_turn_entries", "1..1000000", NULL);
	}
	size_t good[] = {1, DURQ_MAX_TURN_ENTRIES_LIMIT};
	for (size_t i = 0; i < 2; i++) {
		durq_options got;
		o.max_turn_entries = good[i];
		assert_int_equal(durq_open(&db, c->url, &o), DURQ_OK);
		assert_int_equal(durq_options_get(db, &got), DURQ_OK);
		assert_int_equal(got.max_turn_entries, good[i]);
		durq_free(db);
		db = NULL;
	}
}

static int env_teardown(void **state)
{
	unsetenv("DURQ_MAX_TURN_ENTRIES");
	return conf_teardown(state);
}

static void test_env_max_turn_entries_overrides_and_is_validated(void **state)
{
	conf_ctx *c = *state;
	const char *bad[] = {"0", "1000001", "-3", "lots", ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		durq *db = NULL;
		setenv("DURQ_MAX_TURN_ENTRIES", bad[i], 1);
		assert_int_equal(durq_open(&db, c->url, &c->opts), DURQ_EINVAL);
		assert_null(db);
		assert_msg_has("DURQ_MAX_TURN_ENTRIES", "1..1000000", NULL);
	}
	setenv("DURQ_MAX_TURN_ENTRIES", "2", 1);
	c->opts.max_turn_entries = 500; /* the environment wins over the options */
	assert_int_equal(conf_reopen(c), DURQ_OK);
	unsetenv("DURQ_MAX_TURN_ENTRIES");
	durq_options got;
	assert_int_equal(durq_options_get(c->db, &got), DURQ_OK);
	assert_int_equal(got.max_turn_entries, 2);
	durq_work w[3] = {conf_w(NULL, "a"), conf_w(NULL, "b"), conf_w(NULL, "c")};
	assert_int_equal(durq_work_enqueue(c->db, w, 3), DURQ_ETOOBIG);
	assert_int_equal(durq_work_enqueue(c->db, w, 2), DURQ_OK);
}

/* ---- names and the size of one turn ------------------------------------------------- */

static void make_str(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	buf[len] = '\0';
}

static void test_name_version_parent_over_256_bytes_are_einval(void **state)
{
	conf_ctx *c = *state;
	char long_s[DURQ_NAME_MAX + 2], max_s[DURQ_NAME_MAX + 1];
	make_str(long_s, DURQ_NAME_MAX + 1);
	make_str(max_s, DURQ_NAME_MAX);
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = long_s;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	assert_msg_has("name", "256", NULL);
	r.name = "wf";
	r.version_tag = long_s;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	assert_msg_has("version_tag", "256", NULL);
	r.version_tag = "v1";
	r.parent_id = long_s;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	assert_msg_has("parent_id", "256", NULL);
	assert_first_turn_unwritten(c, "i1");
	/* 256 bytes each is accepted and stored whole, by the same lease */
	r.name = r.version_tag = r.parent_id = max_s;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_instance_info *info = NULL;
	assert_int_equal(durq_instance_get(c->db, &info, "i1"), DURQ_OK);
	assert_string_equal(info->name, max_s);
	assert_string_equal(info->version, max_s);
	assert_string_equal(info->parent_id, max_s);
	durq_instance_info_free(info);
}

/* With max_payload 10 a turn carries at most 64 * 10 = 640 payload bytes; every part counts. */
static void test_turn_payload_bytes_over_limit_are_etoobig(void **state)
{
	conf_opts co = {.max_payload = 10};
	conf_ctx *c = conf_use(state, &co);
	enum { N = DURQ_TURN_PAYLOAD_FACTOR + 1 };
	static durq_event ev[N];
	static durq_message m[N];
	static durq_work w[N];
	for (int i = 0; i < N; i++) {
		ev[i] = conf_ev((uint64_t)i + 1, "0123456789");
		m[i] = conf_m("i1", 5, "0123456789");
		w[i] = conf_w(NULL, "0123456789");
	}
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = ev, r.n_history = N;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_msg_has("650", "640", "max_payload");
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.messages = m, r.n_messages = N;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.work = w, r.n_work = N;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.history = ev, r.n_history = N - 1; /* 640: at the limit */
	r.output = "x", r.output_len = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_msg_has("641", "640", NULL);
	r.output = NULL, r.output_len = 0;
	r.set_custom_status = 1, r.custom_status = "x", r.custom_status_len = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	assert_msg_has("641", "640", NULL);
	assert_first_turn_unwritten(c, "i1");
	r.set_custom_status = 0, r.custom_status = NULL, r.custom_status_len = 0;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_event *hist = NULL;
	assert_int_equal(conf_history(c, "i1", 0, &hist), N - 1);
	durq_events_free(hist, N - 1);
}

/* ---- instance list paging ----------------------------------------------------------- */

static void complete(conf_ctx *c, const char *inst)
{
	assert_int_equal(conf_msg(c, inst, 2, "end"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	assert_int_equal(durq_orch_ack(c->db, inst, &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

/* Page through every id with the status, max per page; assert sizes, order, no repeats.
 * Returns the number of ids; sizes[] gets each page's size (terminated by the empty page or
 * a short one). */
static size_t page_all(conf_ctx *c, int status, size_t max, size_t *sizes, size_t nsizes,
		       char seen[][16])
{
	char last[DURQ_INSTANCE_ID_MAX + 1] = "";
	size_t total = 0, page = 0;
	for (;;) {
		char **ids = NULL;
		size_t n = 99;
		assert_int_equal(durq_instance_list_page(c->db, &ids, &n, status,
							 total ? last : NULL, max), DURQ_OK);
		assert_true(page < nsizes);
		sizes[page++] = n;
		for (size_t i = 0; i < n; i++) {
			if (total || i)
				assert_true(strcmp(last, ids[i]) < 0); /* strictly increasing */
			assert_true(strlen(ids[i]) < 16);
			strcpy(seen[total++], ids[i]);
			strcpy(last, ids[i]);
		}
		durq_strings_free(ids, n);
		if (n < max)
			return total;
	}
}

static void test_instance_list_page_walks_ids_in_order(void **state)
{
	conf_ctx *c = *state;
	char id[16];
	/* created in an order unlike the id order, each at a later created_ms */
	for (int k = 0; k < 25; k++) {
		snprintf(id, sizeof id, "inst-%02d", (k * 7) % 25);
		conf_create_instance(c, id);
		conf_advance(c, 1);
	}
	for (int k = 0; k < 25; k += 3) { /* 9 completed: 00 03 ... 24 */
		snprintf(id, sizeof id, "inst-%02d", k);
		complete(c, id);
	}
	char seen[32][16];
	size_t sizes[8];
	assert_int_equal(page_all(c, -1, 10, sizes, 8, seen), 25);
	assert_int_equal(sizes[0], 10);
	assert_int_equal(sizes[1], 10);
	assert_int_equal(sizes[2], 5);
	for (int k = 0; k < 25; k++) {
		snprintf(id, sizeof id, "inst-%02d", k);
		assert_string_equal(seen[k], id);
	}
	assert_int_equal(page_all(c, DURQ_STATUS_COMPLETED, 4, sizes, 8, seen), 9);
	assert_int_equal(sizes[0], 4);
	assert_int_equal(sizes[1], 4);
	assert_int_equal(sizes[2], 1);
	for (int k = 0; k < 9; k++) {
		snprintf(id, sizeof id, "inst-%02d", k * 3);
		assert_string_equal(seen[k], id);
	}
	assert_int_equal(page_all(c, DURQ_STATUS_RUNNING, 10, sizes, 8, seen), 16);
	assert_int_equal(sizes[0], 10);
	assert_int_equal(sizes[1], 6);
	for (int k = 0; k < 16; k++)
		assert_int_not_equal(atoi(seen[k] + 5) % 3, 0);
	assert_int_equal(page_all(c, DURQ_STATUS_FAILED, 10, sizes, 8, seen), 0);
	/* a page that ends exactly at the last id: the next one is empty */
	assert_int_equal(page_all(c, -1, 5, sizes, 8, seen), 25);
	assert_int_equal(sizes[5], 0);
}

static void test_instance_list_page_sizes_and_bad_arguments(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "b");
	conf_create_instance(c, "a");
	char **ids = NULL;
	size_t n = 0;
	/* max 0 = the default page; a huge max is clamped, not an error */
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, NULL, 0), DURQ_OK);
	assert_int_equal(n, 2);
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, NULL, (size_t)-1), DURQ_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "a");
	durq_strings_free(ids, n);
	/* after_id need not exist; past the last id is an empty page */
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, "a0", 10), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "b");
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, "zzz", 10), DURQ_OK);
	assert_int_equal(n, 0);
	assert_null(ids);
	char long_id[DURQ_INSTANCE_ID_MAX + 2];
	make_str(long_id, DURQ_INSTANCE_ID_MAX + 1);
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, long_id, 10), DURQ_EINVAL);
	assert_msg_has("after_id", NULL, NULL);
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, "", 10), DURQ_EINVAL);
	assert_int_equal(durq_instance_list_page(c->db, NULL, &n, -1, NULL, 10), DURQ_EINVAL);
	assert_int_equal(durq_instance_list_page(c->db, &ids, NULL, -1, NULL, 10), DURQ_EINVAL);
	assert_int_equal(durq_instance_list_page(NULL, &ids, &n, -1, NULL, 10), DURQ_EINVAL);
}

/* Byte order (memcmp), not locale or creation order; the unpaged list uses the same. */
static void test_instance_lists_use_byte_order(void **state)
{
	conf_ctx *c = *state;
	const char *created[] = {"\xc3\xa9t\xc3\xa9", "a", "aa", "Z", "B", "a b"};
	const char *want[] = {"B", "Z", "a", "a b", "aa", "\xc3\xa9t\xc3\xa9"};
	for (size_t i = 0; i < 6; i++) {
		conf_create_instance(c, created[i]);
		conf_advance(c, 1); /* creation order differs from byte order */
	}
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(durq_instance_list(c->db, &ids, &n, -1), DURQ_OK);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(ids[i], want[i]);
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, "a", 2), DURQ_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "a b");
	assert_string_equal(ids[1], "aa");
	durq_strings_free(ids, n);
}

/* Instances created between pages: one sorting before the cursor is not seen, one after it
 * is; nothing repeats. */
static void test_instance_list_page_is_stable_across_inserts(void **state)
{
	conf_ctx *c = *state;
	const char *first[] = {"b", "d", "f", "h"};
	for (size_t i = 0; i < 4; i++)
		conf_create_instance(c, first[i]);
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, NULL, 2), DURQ_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ids[1], "d");
	durq_strings_free(ids, n);
	conf_create_instance(c, "a");
	conf_create_instance(c, "e");
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, "d", 2), DURQ_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "e");
	assert_string_equal(ids[1], "f");
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_list_page(c->db, &ids, &n, -1, "f", 2), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "h");
	durq_strings_free(ids, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_turn_over_max_entries_is_etoobig_and_keeps_lease),
		T(test_enqueue_over_max_entries_is_etoobig),
		T(test_default_max_turn_entries_is_10000),
		T(test_max_turn_entries_out_of_range_is_einval_at_open),
		cmocka_unit_test_setup_teardown(test_env_max_turn_entries_overrides_and_is_validated,
						conf_setup, env_teardown),
		T(test_name_version_parent_over_256_bytes_are_einval),
		T(test_turn_payload_bytes_over_limit_are_etoobig),
		T(test_instance_list_page_walks_ids_in_order),
		T(test_instance_list_page_sizes_and_bad_arguments),
		T(test_instance_lists_use_byte_order),
		T(test_instance_list_page_is_stable_across_inserts),
	};
	return cmocka_run_group_tests(tests, conf_group_setup, conf_group_teardown);
}
