/* test_options.c — option defaults, validation with clear messages, environment overrides,
 * and the SQLite profile read back through durq_pragma_get. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

static int setup(void **state)
{
	*state = fx_new("opts.db");
	return 0;
}

static int teardown(void **state)
{
	unsetenv("DURQ_POOL_SIZE");
	unsetenv("DURQ_SYNCHRONOUS");
	unsetenv("DURQ_MAX_BATCH");
	unsetenv("DURQ_GROUP_COMMIT");
	return fx_teardown(state);
}

static void test_defaults_are_resolved(void **state)
{
	fx *f = *state;
	durq *db;
	durq_options o;
	assert_int_equal(durq_open(&db, f->url, NULL), DURQ_OK);
	assert_int_equal(durq_options_get(db, &o), DURQ_OK);
	assert_int_equal(o.pool_size, 8);
	assert_int_equal(o.max_batch, 512);
	assert_int_equal(o.backlog, 4096);
	assert_int_equal(o.commit_mode, DURQ_COMMIT_GROUP);
	assert_int_equal(o.synchronous, DURQ_SYNC_FULL);
	assert_int_equal((int)o.max_payload, DURQ_DEFAULT_MAX_PAYLOAD);
	assert_int_equal(o.max_attempts, 10);
	durq_free(db);
}

static void test_pool_size_4_and_21_rejected_naming_range(void **state)
{
	fx *f = *state;
	int bad[] = {4, 21, -1};
	for (int i = 0; i < 3; i++) {
		durq *db = NULL;
		durq_options o = DURQ_OPTIONS_INIT;
		o.pool_size = bad[i];
		assert_int_equal(durq_open(&db, f->url, &o), DURQ_EINVAL);
		assert_null(db);
		assert_non_null(strstr(durq_error_last(), "5..20"));
	}
	durq *db;
	durq_options o = DURQ_OPTIONS_INIT;
	o.pool_size = 5;
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_OK);
	durq_free(db);
	o.pool_size = 20;
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_OK);
	durq_free(db);
}

static void test_bad_options_rejected(void **state)
{
	fx *f = *state;
	durq *db;
	durq_options o = DURQ_OPTIONS_INIT;
	o.backlog = 1000; /* not a power of two */
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "power of two"));
	o = (durq_options)DURQ_OPTIONS_INIT;
	o.max_batch = -3;
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_EINVAL);
	o = (durq_options)DURQ_OPTIONS_INIT;
	o.synchronous = 42;
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_EINVAL);
	o = (durq_options)DURQ_OPTIONS_INIT;
	o.commit_mode = 7;
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_EINVAL);
	o = (durq_options)DURQ_OPTIONS_INIT;
	o.version = 99;
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "version"));
	assert_int_equal(durq_options_init(&o, 2), DURQ_EINVAL);
	assert_int_equal(durq_options_init(NULL, DURQ_OPTIONS_VERSION), DURQ_EINVAL);
}

static void test_env_overrides_apply(void **state)
{
	fx *f = *state;
	durq *db;
	durq_options o;
	char buf[32];
	setenv("DURQ_POOL_SIZE", "6", 1);
	setenv("DURQ_SYNCHRONOUS", "normal", 1);
	setenv("DURQ_MAX_BATCH", "64", 1);
	setenv("DURQ_GROUP_COMMIT", "0", 1);
	assert_int_equal(durq_open(&db, f->url, NULL), DURQ_OK);
	assert_int_equal(durq_options_get(db, &o), DURQ_OK);
	assert_int_equal(o.pool_size, 6);
	assert_int_equal(o.max_batch, 64);
	assert_int_equal(o.synchronous, DURQ_SYNC_NORMAL);
	assert_int_equal(o.commit_mode, DURQ_COMMIT_PER_OP);
	assert_int_equal(durq_pragma_get(db, buf, sizeof(buf), "synchronous"), DURQ_OK);
	assert_string_equal(buf, "1"); /* NORMAL */
	durq_free(db);
}

static void test_env_values_validated(void **state)
{
	fx *f = *state;
	durq *db = NULL;
	const char *cases[][3] = {
		{"DURQ_POOL_SIZE", "4", "5..20"},
		{"DURQ_POOL_SIZE", "lots", "DURQ_POOL_SIZE"},
		{"DURQ_SYNCHRONOUS", "SOMETIMES", "OFF, NORMAL or FULL"},
		{"DURQ_MAX_BATCH", "0", "DURQ_MAX_BATCH"},
		{"DURQ_GROUP_COMMIT", "maybe", "DURQ_GROUP_COMMIT"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv(cases[i][0], cases[i][1], 1);
		assert_int_equal(durq_open(&db, f->url, NULL), DURQ_EINVAL);
		assert_null(db);
		assert_non_null(strstr(durq_error_last(), cases[i][2]));
		unsetenv(cases[i][0]);
	}
}

static void test_profile_pragmas_read_back(void **state)
{
	fx *f = *state;
	durq *db;
	char buf[64];
	assert_int_equal(durq_open(&db, f->url, NULL), DURQ_OK);
	const char *expect[][2] = {
		{"journal_mode", "wal"}, {"synchronous", "2"}, {"foreign_keys", "1"},
		{"temp_store", "2"}, {"trusted_schema", "0"}, {"busy_timeout", "5000"},
		{"wal_autocheckpoint", "1000"}, {"journal_size_limit", "67108864"},
		{"cache_size", "-16384"}, {"mmap_size", "268435456"}};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(durq_pragma_get(db, buf, sizeof(buf), expect[i][0]), DURQ_OK);
		assert_string_equal(buf, expect[i][1]);
	}
	assert_int_equal(durq_pragma_get(db, buf, sizeof(buf), "writable_schema"), DURQ_EINVAL);
	assert_int_equal(durq_pragma_get(db, buf, sizeof(buf), "synchronous; DROP TABLE x"),
			 DURQ_EINVAL);
	durq_free(db);
}

typedef struct logged {
	int config_lines;
	int saw_journal_mode;
} logged;

static void count_log(void *ctx, int level, const char *tag, const char *msg)
{
	logged *l = ctx;
	(void)level;
	if (strcmp(tag, "CONFIG") == 0) {
		l->config_lines++;
		if (strstr(msg, "journal_mode=WAL"))
			l->saw_journal_mode++;
	}
}

static void test_each_pragma_logged_once(void **state)
{
	fx *f = *state;
	durq *db;
	logged l = {0, 0};
	durq_options o = DURQ_OPTIONS_INIT;
	o.log = count_log;
	o.log_ctx = &l;
	assert_int_equal(durq_open(&db, f->url, &o), DURQ_OK);
	durq_free(db);
	/* 1 writer + 8 pool connections were opened, yet each PRAGMA is logged once */
	assert_int_equal(l.saw_journal_mode, 1);
	assert_true(l.config_lines >= 10);
}

static void test_memory_defaults_to_sync_off(void **state)
{
	(void)state;
	durq *db;
	durq_options o;
	char buf[16];
	assert_int_equal(durq_open(&db, "sqlite::memory:", NULL), DURQ_OK);
	assert_int_equal(durq_options_get(db, &o), DURQ_OK);
	assert_int_equal(o.synchronous, DURQ_SYNC_OFF);
	assert_int_equal(durq_pragma_get(db, buf, sizeof(buf), "journal_mode"), DURQ_OK);
	assert_string_equal(buf, "wal");
	durq_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_are_resolved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_size_4_and_21_rejected_naming_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_values_validated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profile_pragmas_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_pragma_logged_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_defaults_to_sync_off, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
