/*
 * conf_kv.c — the per-instance key/value state (issue 10, G3): changed atomically by a turn
 * (set, clear one, clear all, in that documented order), a snapshot delivered with each
 * turn, read by key and whole; it survives continue-as-new and pruning, goes with the
 * instance (and with every descendant a cascade delete takes), and bad input or too many keys
 * change nothing. Instances' keys are kept apart, keys are stored literally and ordered by
 * their bytes, and a value of max_payload bytes round-trips.
 */
#include "conf_factory.h"

#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

static durq_kv kv(const char *key, const char *value)
{
	durq_kv e = {key, value, value ? strlen(value) : 0};
	return e;
}

/* Fetch inst's turn (after one message) and ack it with r; returns the ack's code and,
 * through *seen (may be NULL), the snapshot as "k=v,k=v". */
static int turn(conf_ctx *c, const char *inst, const durq_turn_result *r, char *seen)
{
	assert_int_equal(conf_msg(c, inst, 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	if (seen) {
		seen[0] = '\0';
		for (size_t i = 0; i < t->n_kv; i++)
			sprintf(seen + strlen(seen), "%s%s=%.*s", i ? "," : "", t->kv[i].key,
				(int)t->kv[i].value_len, (const char *)t->kv[i].value);
	}
	int rc = durq_orch_ack(c->db, inst, &t->token, r);
	durq_turn_free(t);
	return rc;
}

static void set(conf_ctx *c, const char *inst, const durq_kv *e, size_t n)
{
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.kv_set = e;
	r.n_kv_set = n;
	assert_int_equal(turn(c, inst, &r, NULL), DURQ_OK);
}

/* The stored state as "k=v,k=v" through durq_kv_list. */
static void assert_state(conf_ctx *c, const char *inst, const char *want)
{
	durq_kv_entry *e = NULL;
	size_t n = 0;
	char got[4096] = "";
	assert_int_equal(durq_kv_list(c->db, &e, &n, inst), DURQ_OK);
	for (size_t i = 0; i < n; i++)
		sprintf(got + strlen(got), "%s%s=%.*s", i ? "," : "", e[i].key,
			(int)e[i].value_len, (const char *)e[i].value);
	durq_kv_entries_free(e, n);
	assert_string_equal(got, want);
}

static void test_turn_sets_keys_and_the_next_turn_sees_them(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_kv e[] = {kv("b", "2"), kv("a", "1")};
	set(c, "i1", e, 2);
	char seen[256];
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	assert_int_equal(turn(c, "i1", &r, seen), DURQ_OK);
	assert_string_equal(seen, "a=1,b=2");
	void *v = NULL;
	size_t len = 0;
	assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", "b"), DURQ_OK);
	assert_payload(v, len, "2");
	free(v);
	assert_state(c, "i1", "a=1,b=2");
}

static void test_first_turn_sets_keys_with_the_instance(void **state)
{
	conf_ctx *c = *state;
	durq_kv e[] = {kv("k", "v")};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.kv_set = e;
	r.n_kv_set = 1;
	char seen[64];
	assert_int_equal(turn(c, "new", &r, seen), DURQ_OK);
	assert_string_equal(seen, ""); /* a new instance has none */
	assert_state(c, "new", "k=v");
}

static void test_clear_all_then_clear_then_set(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_kv e[] = {kv("a", "1"), kv("b", "2"), kv("c", "3")};
	set(c, "i1", e, 3);
	durq_kv d[] = {kv("d", "4")};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.kv_clear_all = 1;
	r.kv_set = d;
	r.n_kv_set = 1;
	assert_int_equal(turn(c, "i1", &r, NULL), DURQ_OK);
	assert_state(c, "i1", "d=4");
	const char *clear[] = {"d", "absent"};
	durq_kv again[] = {kv("d", "x"), kv("e", "5"), kv("e", "6")};
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.kv_clear = clear;
	r.n_kv_clear = 2;
	r.kv_set = again;
	r.n_kv_set = 3;
	assert_int_equal(turn(c, "i1", &r, NULL), DURQ_OK);
	assert_state(c, "i1", "d=x,e=6"); /* set after clear; a later set of a key wins */
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.kv_clear = clear;
	r.n_kv_clear = 1;
	assert_int_equal(turn(c, "i1", &r, NULL), DURQ_OK);
	assert_state(c, "i1", "e=6");
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.kv_clear_all = 1;
	assert_int_equal(turn(c, "i1", &r, NULL), DURQ_OK);
	assert_state(c, "i1", "");
}

static void test_state_survives_continue_as_new_and_pruning(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_kv e[] = {kv("cursor", "41")};
	set(c, "i1", e, 1);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = 2;
	assert_int_equal(turn(c, "i1", &r, NULL), DURQ_OK);
	size_t pruned = 0;
	assert_int_equal(durq_execution_prune(c->db, &pruned, "i1", 2), DURQ_OK);
	assert_int_equal(pruned, 1);
	char seen[64];
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	assert_int_equal(turn(c, "i1", &r, seen), DURQ_OK);
	assert_string_equal(seen, "cursor=41");
}

static void test_state_goes_with_the_instance(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_kv e[] = {kv("a", "1")};
	set(c, "i1", e, 1);
	const char *ids[] = {"i1"};
	assert_int_equal(durq_instance_delete_many(c->db, NULL, ids, 1, DURQ_DELETE_FORCE),
			 DURQ_OK);
	void *v = NULL;
	size_t len;
	assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", "a"), DURQ_ENOTFOUND);
	conf_create_instance(c, "i1"); /* the same id again starts empty */
	assert_state(c, "i1", "");
	set(c, "i1", e, 1);
	assert_int_equal(durq_instance_delete(c->db, "i1"), DURQ_OK);
	conf_create_instance(c, "i1");
	assert_state(c, "i1", "");
}

static void test_refused_turn_changes_no_key(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_kv e[] = {kv("a", "1")};
	set(c, "i1", e, 1);
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_event dup = conf_ev(1, "again"); /* event 1 is stored: EDUP */
	durq_kv change[] = {kv("a", "changed"), kv("b", "new")};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &dup;
	r.n_history = 1;
	r.kv_set = change;
	r.n_kv_set = 2;
	r.kv_clear_all = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EDUP);
	assert_state(c, "i1", "a=1");
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT; /* the lease was kept */
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
}

static void test_too_many_keys_is_etoobig_and_keeps_the_lease(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	size_t n = DURQ_KV_MAX_KEYS - 1;
	durq_kv *e = calloc(DURQ_KV_MAX_KEYS + 1, sizeof(*e));
	char (*keys)[16] = calloc(DURQ_KV_MAX_KEYS + 1, sizeof(*keys));
	assert_non_null(e);
	assert_non_null(keys);
	for (size_t i = 0; i <= DURQ_KV_MAX_KEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%04zu", i);
		e[i] = kv(keys[i], "v");
	}
	set(c, "i1", e, n); /* 999 keys */
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_kv, n);
	durq_event ev = conf_ev(2, "x");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.history = &ev;
	r.n_history = 1;
	r.kv_set = &e[n - 1]; /* one stored (k0998), two new: 1001 */
	r.n_kv_set = 3;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	r.n_kv_set = DURQ_KV_MAX_KEYS + 1; /* refused before it reaches the database */
	r.kv_set = e;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_ETOOBIG);
	durq_event *h;
	size_t nh = conf_history(c, "i1", 0, &h);
	assert_int_equal(nh, 1); /* the refused turn's event is not there either */
	durq_events_free(h, nh);
	r.kv_set = &e[n - 1];
	r.n_kv_set = 2; /* exactly the limit */
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_kv_entry *all;
	size_t na;
	assert_int_equal(durq_kv_list(c->db, &all, &na, "i1"), DURQ_OK);
	assert_int_equal(na, DURQ_KV_MAX_KEYS);
	durq_kv_entries_free(all, na);
	free(e);
	free(keys);
}

static void test_bad_key_value_input_is_refused(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	char longkey[DURQ_KV_KEY_MAX + 2];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	durq_options o;
	assert_int_equal(durq_options_get(c->db, &o), DURQ_OK);
	char *big = calloc(o.max_payload + 1, 1);
	assert_non_null(big);
	durq_kv bad[5] = {{NULL, "v", 1}, {"", "v", 1}, {longkey, "v", 1},
			  {"k", NULL, 3}, {"k", big, o.max_payload + 1}};
	int want[5] = {DURQ_EINVAL, DURQ_EINVAL, DURQ_EINVAL, DURQ_EINVAL, DURQ_ETOOBIG};
	for (int i = 0; i < 5; i++) {
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.kv_set = &bad[i];
		r.n_kv_set = 1;
		assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), want[i]);
	}
	free(big);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	const char *clear[] = {""};
	r.kv_clear = clear;
	r.n_kv_clear = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.kv_clear_all = 2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.n_kv_set = 1; /* NULL array with a count */
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.flags = DURQ_TURN_DISCARD;
	r.kv_clear_all = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_state(c, "i1", "");
}

static void test_empty_value_and_reads_of_unknowns(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_state(c, "i1", "");
	durq_kv e[] = {kv("empty", NULL)};
	set(c, "i1", e, 1);
	void *v = NULL;
	size_t len = 9;
	assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", "empty"), DURQ_OK);
	assert_non_null(v);
	assert_int_equal(len, 0);
	free(v);
	assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", "absent"), DURQ_ENOTFOUND);
	assert_null(v);
	assert_int_equal(durq_kv_get(c->db, &v, &len, "nobody", "empty"), DURQ_ENOTFOUND);
	durq_kv_entry *all = NULL;
	size_t n = 0;
	assert_int_equal(durq_kv_list(c->db, &all, &n, "nobody"), DURQ_ENOTFOUND);
	assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", ""), DURQ_EINVAL);
	assert_int_equal(durq_kv_get(c->db, NULL, &len, "i1", "k"), DURQ_EINVAL);
	assert_int_equal(durq_kv_list(c->db, NULL, &n, "i1"), DURQ_EINVAL);
}

static void test_async_turn_copies_its_keys(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	char key[8] = "key", value[8] = "value";
	durq_kv e = {key, value, 5};
	const char *clear[] = {key};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.kv_set = &e;
	r.n_kv_set = 1;
	r.kv_clear = clear;
	r.n_kv_clear = 1;
	assert_int_equal(durq_orch_ack_async(c->db, "i1", &t->token, &r, NULL), DURQ_OK);
	memcpy(key, "xxx", 4);
	memcpy(value, "yyyyy", 6);
	assert_int_equal(durq_flush(c->db, -1), DURQ_OK);
	durq_turn_free(t);
	assert_state(c, "i1", "key=value");
}

static void test_same_key_in_two_instances_holds_two_values(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "a");
	conf_create_instance(c, "a:b");
	/* "a" + "b:c" and "a:b" + "c" would collide in a store keyed by id and key joined */
	durq_kv ea[] = {kv("shared", "from_a"), kv("b:c", "a's")};
	durq_kv eb[] = {kv("shared", "from_ab"), kv("c", "ab's")};
	set(c, "a", ea, 2);
	set(c, "a:b", eb, 2);
	void *v = NULL;
	size_t len = 0;
	assert_int_equal(durq_kv_get(c->db, &v, &len, "a", "shared"), DURQ_OK);
	assert_payload(v, len, "from_a");
	free(v);
	assert_int_equal(durq_kv_get(c->db, &v, &len, "a:b", "shared"), DURQ_OK);
	assert_payload(v, len, "from_ab");
	free(v);
	v = NULL;
	assert_int_equal(durq_kv_get(c->db, &v, &len, "a", "c"), DURQ_ENOTFOUND);
	assert_int_equal(durq_kv_get(c->db, &v, &len, "a:b", "b:c"), DURQ_ENOTFOUND);
	assert_null(v);
	assert_state(c, "a", "b:c=a's,shared=from_a");
	assert_state(c, "a:b", "c=ab's,shared=from_ab");
	char seen[256]; /* each turn carries its own instance's keys only */
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	assert_int_equal(turn(c, "a", &r, seen), DURQ_OK);
	assert_string_equal(seen, "b:c=a's,shared=from_a");
	assert_int_equal(turn(c, "a:b", &r, seen), DURQ_OK);
	assert_string_equal(seen, "c=ab's,shared=from_ab");
}

static void test_clearing_one_instance_leaves_the_others_keys(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "a");
	conf_create_instance(c, "b");
	durq_kv e[] = {kv("k1", "1"), kv("k2", "2")};
	set(c, "a", e, 2);
	set(c, "b", e, 2);
	const char *clear[] = {"k1"};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.kv_clear = clear;
	r.n_kv_clear = 1;
	assert_int_equal(turn(c, "a", &r, NULL), DURQ_OK);
	assert_state(c, "a", "k2=2");
	assert_state(c, "b", "k1=1,k2=2");
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.kv_clear_all = 1;
	assert_int_equal(turn(c, "a", &r, NULL), DURQ_OK);
	assert_state(c, "a", "");
	assert_state(c, "b", "k1=1,k2=2");
	char seen[64];
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	assert_int_equal(turn(c, "b", &r, seen), DURQ_OK);
	assert_string_equal(seen, "k1=1,k2=2");
}

static void assert_value(const void *v, size_t len, const unsigned char *want, size_t n)
{
	assert_int_equal(len, n);
	assert_memory_equal(v, want, n);
}

static void test_value_of_max_payload_bytes_round_trips(void **state)
{
	conf_ctx *c = *state;
	conf_create_instance(c, "i1");
	durq_options o;
	assert_int_equal(durq_options_get(c->db, &o), DURQ_OK);
	size_t n = o.max_payload, n64 = 64 * 1024;
	assert_true(n > n64);
	unsigned char *big = malloc(n);
	assert_non_null(big);
	for (size_t i = 0; i < n; i++) /* every byte value, NUL included, not periodic in 256 */
		big[i] = (unsigned char)(i * 131 + i / 251);
	durq_kv e[] = {{"big", big, n}, {"64k", big + 1, n64}};
	set(c, "i1", e, 2);
	void *v = NULL;
	size_t len = 0;
	assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", "big"), DURQ_OK);
	assert_value(v, len, big, n);
	free(v);
	assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", "64k"), DURQ_OK);
	assert_value(v, len, big + 1, n64);
	free(v);
	durq_kv_entry *all = NULL;
	size_t na = 0;
	assert_int_equal(durq_kv_list(c->db, &all, &na, "i1"), DURQ_OK);
	assert_int_equal(na, 2);
	assert_string_equal(all[0].key, "64k");
	assert_value(all[0].value, all[0].value_len, big + 1, n64);
	assert_string_equal(all[1].key, "big");
	assert_value(all[1].value, all[1].value_len, big, n);
	durq_kv_entries_free(all, na);
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK); /* and in the turn's snapshot */
	durq_turn *t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_kv, 2);
	assert_string_equal(t->kv[1].key, "big");
	assert_value(t->kv[1].value, t->kv[1].value_len, big, n);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	free(big);
}

#define EMOJI "\xF0\x9F\x8E\x89" /* U+1F389, 4 bytes of UTF-8 */
#define EMOJI16 EMOJI EMOJI EMOJI EMOJI EMOJI EMOJI EMOJI EMOJI \
	EMOJI EMOJI EMOJI EMOJI EMOJI EMOJI EMOJI EMOJI

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_keys_with_special_characters_are_stored_literally(void **state)
{
	conf_ctx *c = *state;
	/* Keys are byte strings (1..DURQ_KV_KEY_MAX bytes, no NUL): compared, ordered and
	 * bound as bytes; no quoting, pattern, case folding, trimming or Unicode normalisation. */
	static const char *const keys[] = {
		"key with spaces", "trailing space ", " leading space", "Key", "key",
		"dotted.key.name", "path/like/key", "back\\slash", "quote\"key", "it's",
		"'; DROP TABLE durq_kv; --", "100%_done", "%", "_", "*", "?", "$1",
		"tab\there\nnewline", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x82\xAD\xE3\x83\xBC",
		"emoji" EMOJI "key", "caf\xC3\xA9" /* NFC */, "cafe\xCC\x81" /* NFD */,
		EMOJI16 EMOJI16 EMOJI16 EMOJI16, /* 256 bytes: the limit is bytes, not characters */
	};
	enum { N = sizeof keys / sizeof keys[0] };
	assert_int_equal(strlen(keys[N - 1]), DURQ_KV_KEY_MAX);
	char vals[N][8];
	durq_kv e[N];
	for (int i = 0; i < N; i++) {
		snprintf(vals[i], sizeof vals[i], "v%02d", i);
		e[i] = kv(keys[i], vals[i]);
	}
	conf_create_instance(c, "i1");
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_kv over = kv(EMOJI16 EMOJI16 EMOJI16 EMOJI16 EMOJI, "x"); /* 65 characters */
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.kv_set = &over;
	r.n_kv_set = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	r.kv_set = e;
	r.n_kv_set = N;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	for (int i = 0; i < N; i++) {
		void *v = NULL;
		size_t len = 0;
		assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", keys[i]), DURQ_OK);
		assert_payload(v, len, vals[i]);
		free(v);
	}
	const char *sorted[N]; /* durq_kv_list and the snapshot: ordered by the keys' bytes */
	memcpy(sorted, keys, sizeof sorted);
	qsort(sorted, N, sizeof sorted[0], by_key);
	durq_kv_entry *all = NULL;
	size_t na = 0;
	assert_int_equal(durq_kv_list(c->db, &all, &na, "i1"), DURQ_OK);
	assert_int_equal(na, N);
	for (int i = 0; i < N; i++)
		assert_string_equal(all[i].key, sorted[i]);
	durq_kv_entries_free(all, na);
	assert_int_equal(conf_msg(c, "i1", 2, "tick"), DURQ_OK);
	t = conf_turn_for(c, "i1");
	assert_int_equal(t->n_kv, N);
	for (int i = 0; i < N; i++)
		assert_string_equal(t->kv[i].key, sorted[i]);
	/* clearing these removes exactly them: not "Key", "100%_done", "_" or the NFC café */
	const char *clear[] = {"'; DROP TABLE durq_kv; --", "%", "key", "cafe\xCC\x81"};
	r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	r.kv_clear = clear;
	r.n_kv_clear = 4;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	for (int i = 0; i < N; i++) {
		int cleared = 0;
		for (int j = 0; j < 4; j++)
			cleared |= strcmp(keys[i], clear[j]) == 0;
		void *v = NULL;
		size_t len = 0;
		assert_int_equal(durq_kv_get(c->db, &v, &len, "i1", keys[i]),
				 cleared ? DURQ_ENOTFOUND : DURQ_OK);
		free(v);
	}
	assert_int_equal(durq_kv_list(c->db, &all, &na, "i1"), DURQ_OK);
	assert_int_equal(na, N - 4);
	durq_kv_entries_free(all, na);
}

/* The first turn of inst (a child of parent, NULL: none), setting k=inst. */
static void create_with_key(conf_ctx *c, const char *inst, const char *parent)
{
	durq_kv e[] = {kv("k", inst)};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.parent_id = parent;
	r.kv_set = e;
	r.n_kv_set = 1;
	assert_int_equal(turn(c, inst, &r, NULL), DURQ_OK);
}

static void test_cascade_delete_removes_the_keys_of_every_descendant(void **state)
{
	conf_ctx *c = *state;
	create_with_key(c, "p", NULL);
	create_with_key(c, "c1", "p");
	create_with_key(c, "c2", "p");
	create_with_key(c, "g", "c1");
	create_with_key(c, "other", NULL);
	const char *ids[] = {"p"};
	durq_delete_counts k;
	assert_int_equal(durq_instance_delete_many(c->db, &k, ids, 1, DURQ_DELETE_FORCE),
			 DURQ_OK);
	assert_int_equal(k.instances, 4);
	const char *gone[] = {"p", "c1", "c2", "g"};
	for (int i = 0; i < 4; i++) {
		void *v = NULL;
		size_t len;
		durq_kv_entry *all = NULL;
		size_t na = 0;
		assert_int_equal(durq_kv_get(c->db, &v, &len, gone[i], "k"), DURQ_ENOTFOUND);
		assert_int_equal(durq_kv_list(c->db, &all, &na, gone[i]), DURQ_ENOTFOUND);
	}
	assert_state(c, "other", "k=other");
	/* a recreated id starts empty: its first and next turns and the reads see no key */
	const char *parent[] = {NULL, "p", "p", "c1"};
	for (int i = 0; i < 4; i++) {
		char seen[64];
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.parent_id = parent[i];
		assert_int_equal(turn(c, gone[i], &r, seen), DURQ_OK);
		assert_string_equal(seen, "");
		assert_state(c, gone[i], "");
		r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
		assert_int_equal(turn(c, gone[i], &r, seen), DURQ_OK);
		assert_string_equal(seen, "");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_turn_sets_keys_and_the_next_turn_sees_them),
		T(test_first_turn_sets_keys_with_the_instance),
		T(test_clear_all_then_clear_then_set),
		T(test_state_survives_continue_as_new_and_pruning),
		T(test_state_goes_with_the_instance),
		T(test_refused_turn_changes_no_key),
		T(test_too_many_keys_is_etoobig_and_keeps_the_lease),
		T(test_bad_key_value_input_is_refused),
		T(test_empty_value_and_reads_of_unknowns),
		T(test_async_turn_copies_its_keys),
		T(test_same_key_in_two_instances_holds_two_values),
		T(test_clearing_one_instance_leaves_the_others_keys),
		T(test_value_of_max_payload_bytes_round_trips),
		T(test_keys_with_special_characters_are_stored_literally),
		T(test_cascade_delete_removes_the_keys_of_every_descendant),
	};
	return cmocka_run_group_tests_name("conf_kv", tests, conf_group_setup,
					   conf_group_teardown);
}
