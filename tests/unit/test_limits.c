/*
 * test_limits.c — the unpaged durq_instance_list's cap: more than DURQ_INSTANCE_LIST_MAX
 * matching ids is DURQ_ETOOBIG (nothing returned, the message points to the paged call);
 * exactly the cap is returned whole; a page's max is clamped to the cap. 100,001 instances
 * through turns would take minutes, so the instances table of a SQLite file is filled
 * directly (one INSERT ... SELECT). The other limits are in tests/conformance/conf_limits.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "unit_util.h"

static int setup(void **state)
{
	*state = fx_new("limits.db");
	return 0;
}

/* Run sql on the database file of f (the handle is closed meanwhile). */
static void raw_sql(fx *f, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	assert_int_equal(sqlite3_open(strchr(f->url, ':') + 1, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

static void test_unpaged_list_over_the_cap_is_etoobig(void **state)
{
	fx *f = *state;
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK); /* creates the schema */
	durq_free(f->db);
	f->db = NULL;
	raw_sql(f, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k "
		   "WHERE i < 100001) INSERT INTO instances(id, execution_id, status, created_ms, "
		   "updated_ms) SELECT printf('i%06d', i), 1, 1, i, i FROM k");
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	char **ids = (char **)1;
	size_t n = 7;
	assert_int_equal(durq_instance_list(f->db, &ids, &n, -1), DURQ_ETOOBIG);
	assert_null(ids);
	assert_int_equal(n, 0);
	assert_non_null(strstr(durq_error_last(), "durq_instance_list_page"));
	assert_int_equal(durq_instance_list(f->db, &ids, &n, DURQ_STATUS_RUNNING), DURQ_ETOOBIG);
	/* a status that matches few is not refused */
	assert_int_equal(durq_instance_list(f->db, &ids, &n, DURQ_STATUS_FAILED), DURQ_OK);
	assert_int_equal(n, 0);
	/* the paged call clamps its max to the cap */
	assert_int_equal(durq_instance_list_page(f->db, &ids, &n, -1, NULL, SIZE_MAX), DURQ_OK);
	assert_int_equal(n, DURQ_INSTANCE_LIST_MAX);
	assert_string_equal(ids[0], "i000001");
	assert_string_equal(ids[n - 1], "i100000");
	durq_strings_free(ids, n);
	assert_int_equal(durq_instance_list_page(f->db, &ids, &n, -1, "i100000", 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "i100001");
	durq_strings_free(ids, n);
	durq_free(f->db);
	f->db = NULL;

	/* exactly the cap: returned whole, in id order */
	raw_sql(f, "DELETE FROM instances WHERE id = 'i050000'");
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	assert_int_equal(durq_instance_list(f->db, &ids, &n, -1), DURQ_OK);
	assert_int_equal(n, DURQ_INSTANCE_LIST_MAX);
	assert_string_equal(ids[49999], "i050001");
	assert_string_equal(ids[n - 1], "i100001");
	durq_strings_free(ids, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unpaged_list_over_the_cap_is_etoobig, setup,
						fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
