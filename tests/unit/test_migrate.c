/*
 * test_migrate.c — a database written by an older durq is migrated on open (issue 10):
 * SQLite user_version 1 -> 5 and 4 -> 5, PostgreSQL schema version 2 -> 7 and 5 -> 7. The
 * old rows keep their meaning (per-execution name and version from the instance,
 * completion times from the finished rows' update time; queued items and dead letters have
 * no session), the new calls work on them, and dead-letter ids stay above every id the old
 * table handed out; the key/value state, runtime pins and activity sessions work.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <durq.h>

#ifdef DURQ_WITH_POSTGRES
#include <libpq-fe.h>
#endif

/* The schema of durq 0.1 (SQLite user_version 1), as it wrote it. */
static const char v1_schema[] =
	"CREATE TABLE IF NOT EXISTS instances("
	" id TEXT PRIMARY KEY, name TEXT, version TEXT, execution_id INTEGER NOT NULL,"
	" status INTEGER NOT NULL, output BLOB, custom_status BLOB,"
	" custom_status_version INTEGER NOT NULL DEFAULT 0, parent_id TEXT,"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS instances_status ON instances(status);"
	"CREATE TABLE IF NOT EXISTS executions("
	" instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL, status INTEGER NOT NULL,"
	" output BLOB, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY(instance_id, execution_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS history("
	" instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL, event_id INTEGER NOT NULL,"
	" payload BLOB, PRIMARY KEY(instance_id, execution_id, event_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS orch_queue("
	" id INTEGER PRIMARY KEY, instance_id TEXT NOT NULL, kind INTEGER NOT NULL, payload BLOB,"
	" visible_at INTEGER NOT NULL, lock_token BLOB, attempt INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS orch_ready ON orch_queue(visible_at, id) WHERE lock_token IS NULL;"
	"CREATE INDEX IF NOT EXISTS orch_instance ON orch_queue(instance_id, visible_at);"
	"CREATE TABLE IF NOT EXISTS instance_locks("
	" instance_id TEXT PRIMARY KEY, token BLOB NOT NULL, locked_until INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS instance_locks_until ON instance_locks(locked_until);"
	"CREATE TABLE IF NOT EXISTS work_queue("
	" id INTEGER PRIMARY KEY, queue TEXT NOT NULL, instance_id TEXT, execution_id INTEGER,"
	" activity_id INTEGER, priority INTEGER NOT NULL, payload BLOB, visible_at INTEGER NOT NULL,"
	" lock_token BLOB, locked_until INTEGER, attempt INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS work_ready ON work_queue(queue, priority DESC, id)"
	" WHERE lock_token IS NULL;"
	"CREATE INDEX IF NOT EXISTS work_leased ON work_queue(queue, locked_until)"
	" WHERE lock_token IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS work_activity ON work_queue(instance_id, execution_id, activity_id)"
	" WHERE instance_id IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS dead_letters("
	" id INTEGER PRIMARY KEY, source INTEGER NOT NULL, queue TEXT, instance_id TEXT,"
	" execution_id INTEGER, activity_id INTEGER, kind INTEGER, priority INTEGER, payload BLOB,"
	" attempt INTEGER NOT NULL, dead_at INTEGER NOT NULL);"
	"PRAGMA user_version = 1;";

static const char v1_rows[] =
	"INSERT INTO instances VALUES('i1', 'wf', 'v1', 2, 2, x'6f6b', NULL, 0, NULL, 1000, 3000);"
	"INSERT INTO instances VALUES('i2', 'wf', 'v1', 1, 1, NULL, NULL, 0, NULL, 1000, 1000);"
	"INSERT INTO executions VALUES('i1', 1, 4, NULL, 1000, 2000);"
	"INSERT INTO executions VALUES('i1', 2, 2, x'6f6b', 2000, 3000);"
	"INSERT INTO executions VALUES('i2', 1, 1, NULL, 1000, 1000);"
	"INSERT INTO history VALUES('i1', 1, 1, x'61');"
	"INSERT INTO history VALUES('i1', 2, 1, x'62');"
	"INSERT INTO history VALUES('i2', 1, 1, x'63');"
	"INSERT INTO dead_letters VALUES(5, 2, '', NULL, NULL, NULL, 0, 0, x'64', 3, 1500);";

static void sql(sqlite3 *db, const char *s)
{
	char *err = NULL;
	if (sqlite3_exec(db, s, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s", err);
}

static int user_version(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Activity sessions (G1) on a migrated database: a session item goes to a session fetch
 * only, its session is held, renewed and cleaned up. Leaves no item and no session. */
static void check_sessions(durq *db)
{
	durq_work w = {.payload = "s", .payload_len = 1, .session_id = "sess"};
	assert_int_equal(durq_work_enqueue(db, &w, 1), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 10, 30000, 0), DURQ_EMPTY);
	durq_session_owner o = DURQ_SESSION_OWNER_INIT;
	o.owner_id = "worker-1";
	o.lock_ms = 60000;
	assert_int_equal(durq_work_fetch_session(db, &it, &n, NULL, &o, 10, 30000, 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(it->session_id, "sess");
	assert_int_equal(durq_work_ack(db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	const char *owners[] = {"worker-1"};
	size_t k = 0;
	assert_int_equal(durq_session_renew(db, &k, owners, 1, 60000, 60000), DURQ_OK);
	assert_int_equal(k, 1);
	assert_int_equal(durq_session_cleanup(db, &k, 0), DURQ_OK); /* idle, no items */
	assert_int_equal(k, 1);
}

/* What every migrated database must show (the rows of v1_rows or their PG twins). */
static void check_migrated(durq *db)
{
	durq_execution_info *l = NULL;
	size_t n = 0;
	assert_int_equal(durq_execution_list(db, &l, &n, "i1"), DURQ_OK);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(l[i].name, "wf");
		assert_string_equal(l[i].version, "v1");
	}
	assert_int_equal(l[0].completed_ms, 2000); /* continued as new */
	assert_int_equal(l[1].completed_ms, 3000);
	durq_execution_list_free(l);
	durq_execution_info *e = NULL;
	assert_int_equal(durq_execution_get(db, &e, "i2", 0), DURQ_OK);
	assert_int_equal(e->completed_ms, 0);
	durq_execution_info_free(e);
	/* the instance's completion time serves retention */
	durq_instance_filter f = DURQ_INSTANCE_FILTER_INIT;
	f.completed_before_ms = 3001;
	char **ids;
	assert_int_equal(durq_instance_list_filter(db, &ids, &n, &f, NULL, 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "i1");
	durq_strings_free(ids, n);
	durq_system_counts k;
	assert_int_equal(durq_system_counts_get(db, &k), DURQ_OK);
	assert_int_equal(k.instances, 2);
	assert_int_equal(k.executions, 3);
	assert_int_equal(k.events, 3);
	/* a new turn and a checked delete run on the migrated schema */
	durq_message m = {.instance_id = "i2", .kind = 1, .payload = "x", .payload_len = 1};
	assert_int_equal(durq_orch_enqueue(db, &m, 1), DURQ_OK);
	durq_turn *t = NULL;
	assert_int_equal(durq_orch_fetch(db, &t, 30000, 0), DURQ_OK);
	assert_string_equal(t->version, "v1");
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.execution_id = 2;
	r.version_tag = "v2";
	durq_kv kv = {"k", "v", 1};
	r.kv_set = &kv;
	r.n_kv_set = 1;
	r.runtime_version = 9;
	assert_int_equal(durq_orch_ack(db, "i2", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(durq_execution_get(db, &e, "i2", 0), DURQ_OK);
	assert_string_equal(e->version, "v2");
	assert_int_equal(e->runtime_version, 9);
	durq_execution_info_free(e);
	void *v = NULL;
	size_t vlen = 0;
	assert_int_equal(durq_kv_get(db, &v, &vlen, "i2", "k"), DURQ_OK);
	assert_int_equal(vlen, 1);
	free(v);
	durq_delete_counts dc;
	const char *del[] = {"i1"};
	assert_int_equal(durq_instance_delete_many(db, &dc, del, 1, 0), DURQ_OK);
	assert_int_equal(dc.instances, 1);
	assert_int_equal(dc.events, 2);
	check_sessions(db);
}

static void test_sqlite_v1_database_is_migrated(void **state)
{
	(void)state;
	char dir[] = "/tmp/durq_migrate_XXXXXX", path[600], url[700];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/old.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	sql(raw, "PRAGMA journal_mode=WAL");
	sql(raw, v1_schema);
	sql(raw, v1_rows);
	sqlite3_close(raw);
	assert_int_equal(user_version(path), 1);

	durq *db = NULL;
	if (durq_open(&db, url, NULL) != DURQ_OK)
		fail_msg("open: %s", durq_error_last());
	check_migrated(db);
	/* dead letter 5 (the old table's highest id) requeued; a new one never takes its id */
	assert_int_equal(durq_dead_requeue(db, 5), DURQ_OK);
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 1, 30000, 0), DURQ_OK);
	assert_int_equal(durq_work_abandon(db, it->id, &it->token, 0, 0), DURQ_OK);
	assert_null(it->session_id); /* an old dead letter has no session */
	durq_work_items_free(it, n);
	durq_free(db);
	assert_int_equal(user_version(path), 5);

	durq_options o = DURQ_OPTIONS_INIT;
	o.max_attempts = 1;
	assert_int_equal(durq_open(&db, url, &o), DURQ_OK); /* current: opened as it is */
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 1, 30000, 0), DURQ_EMPTY);
	durq_dead_letter *d = NULL;
	assert_int_equal(durq_dead_list(db, &d, &n, 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_true(d[0].id > 5);
	durq_dead_letters_free(d, n);
	assert_int_equal(durq_dead_requeue(db, 5), DURQ_ENOTFOUND);
	durq_free(db);

	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* A version-4 database (before activity sessions): today's schema with version 5's column,
 * indexes and table dropped and the old ready index back, holding a queued item and a dead
 * letter written the old way. */
static const char sqlite_to_v4[] =
	"DROP TABLE sessions;"
	"DROP INDEX work_session_ready; DROP INDEX work_by_session; DROP INDEX work_ready;"
	"ALTER TABLE work_queue DROP COLUMN session_id;"
	"ALTER TABLE dead_letters DROP COLUMN session_id;"
	"CREATE INDEX work_ready ON work_queue(queue, priority DESC, id) WHERE lock_token IS NULL;"
	"PRAGMA user_version = 4;"
	"INSERT INTO work_queue(queue, instance_id, execution_id, activity_id, priority, payload,"
	" visible_at, attempt, created_ms) VALUES('', NULL, NULL, NULL, 0, x'6f6c64', 0, 0, 0);"
	"INSERT INTO dead_letters(source, queue, instance_id, execution_id, activity_id, kind,"
	" priority, payload, attempt, dead_at) VALUES(2, '', NULL, NULL, NULL, 0, 0, x'64', 3, 0);";

/* One text cell of a query on the database file (NULL-safe copy into out). */
static void query1(const char *path, const char *q, char *out, size_t len)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
	out[0] = '\0';
	while (sqlite3_step(s) == SQLITE_ROW) /* the last row (EXPLAIN QUERY PLAN: the scan) */
		snprintf(out, len, "%s", sqlite3_column_text(s, sqlite3_column_count(s) - 1)
					     ? (const char *)sqlite3_column_text(s, sqlite3_column_count(s) - 1)
					     : "");
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void test_sqlite_v4_database_gets_sessions(void **state)
{
	(void)state;
	char dir[] = "/tmp/durq_migrate_XXXXXX", path[600], url[700], got[1024];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v4.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	durq *db = NULL;
	if (durq_open(&db, url, NULL) != DURQ_OK)
		fail_msg("open: %s", durq_error_last());
	durq_free(db); /* today's schema */
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	sql(raw, sqlite_to_v4);
	sqlite3_close(raw);
	assert_int_equal(user_version(path), 4);

	if (durq_open(&db, url, NULL) != DURQ_OK)
		fail_msg("open: %s", durq_error_last());
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 10, 30000, 0), DURQ_OK);
	assert_int_equal(n, 1); /* the old item has no session: a plain fetch takes it */
	assert_null(it->session_id);
	assert_int_equal(durq_work_ack(db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	durq_dead_letter *d = NULL;
	assert_int_equal(durq_dead_list(db, &d, &n, 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(durq_dead_requeue(db, d[0].id), DURQ_OK);
	durq_dead_letters_free(d, n);
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 10, 30000, 0), DURQ_OK);
	assert_null(it->session_id);
	assert_int_equal(durq_work_ack(db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	check_sessions(db);
	durq_free(db);
	assert_int_equal(user_version(path), 5);
	/* the ready index of plain claims holds no session items, and they read it */
	query1(path, "SELECT sql FROM sqlite_schema WHERE name = 'work_ready'", got, sizeof got);
	assert_non_null(strstr(got, "session_id IS NULL"));
	query1(path, "EXPLAIN QUERY PLAN SELECT id FROM work_queue WHERE queue = '' AND lock_token "
	       "IS NULL AND session_id IS NULL AND visible_at <= 5 ORDER BY priority DESC, id "
	       "LIMIT 10", got, sizeof got);
	assert_non_null(strstr(got, "work_ready"));
	if (durq_open(&db, url, NULL) != DURQ_OK) /* current: opened as it is */
		fail_msg("open: %s", durq_error_last());
	durq_free(db);

	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

#ifdef DURQ_WITH_POSTGRES
static const char *fixture_url(void)
{
	static char url[1024];
	const char *file = getenv("DURQ_TEST_PG_URL_FILE");
	FILE *f = file ? fopen(file, "r") : NULL;
	if (!f || !fgets(url, sizeof(url), f))
		fail_msg("DURQ_TEST_PG_URL_FILE is unset or unreadable: run through ctest (fixture pg)");
	fclose(f);
	url[strcspn(url, "\n")] = '\0';
	return url;
}

static void url_with_db(char *out, size_t len, const char *base, const char *name)
{
	const char *host = strstr(base, "://");
	const char *slash = strchr(host ? host + 3 : base, '/');
	const char *query = strchr(base, '?');
	size_t keep = slash ? (size_t)(slash - base) : strlen(base);
	snprintf(out, len, "%.*s/%s%s", (int)keep, base, name, query ? query : "");
}

static void pg_sql(const char *url, const char *s)
{
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, s);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", s, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* A version-5 database (before activity sessions): today's schema without version 6's
 * table, columns and indexes, the old ready index back, the ack function of version 6
 * dropped (the migration makes it anew), and without version 7's page fill factor. */
#define PG_TO_V5                                                                            \
	"ALTER TABLE durq_work_queue RESET (fillfactor);"                                       \
	"DROP TABLE durq_sessions;"                                                             \
	"DROP INDEX durq_work_session_ready; DROP INDEX durq_work_by_session;"                  \
	"DROP INDEX durq_work_ready;"                                                           \
	"ALTER TABLE durq_work_queue DROP COLUMN session_id;"                                   \
	"ALTER TABLE durq_dead_letters DROP COLUMN session_id;"                                 \
	"CREATE INDEX durq_work_ready ON durq_work_queue(queue, priority DESC, id)"             \
	" WHERE lock_token IS NULL;"                                                            \
	"DROP FUNCTION durq_orch_ack(text, bytea, int8, int8, text, text, text, int4, bytea, bool,"\
	" bytea, int8[], bytea[], text[], text[], int8[], int8[], int4[], bytea[], int8[], int8[],"\
	" int8[], text[], int4[], bytea[], int8[], text[], bytea[], text[], bool, int8, text[]);"

static const char pg_to_v5[] =
	PG_TO_V5
	"UPDATE durq_meta SET value = 5 WHERE key = 'schema_version';"
	"INSERT INTO durq_work_queue(queue, priority, payload, visible_at, attempt, created_ms)"
	" VALUES ('', 0, 'old', 0, 0, 0);";

/* A version-2 database: what durq wrote before issue 10, rebuilt from today's schema by
 * dropping what versions 3 to 6 added and recording version 2. */
static const char pg_to_v2[] =
	PG_TO_V5
	"DROP FUNCTION durq_orch_claim(int8, bytea, int8, int4, bool, int4, int8, int8);"
	"DROP TABLE durq_kv;"
	"ALTER TABLE durq_executions DROP COLUMN runtime_version;"
	"ALTER TABLE durq_instances DROP COLUMN runtime_version;"
	"DROP FUNCTION durq_instance_delete_many(text[], bool);"
	"DROP FUNCTION durq_instance_purge(int8, int8);"
	"DROP FUNCTION durq_execution_prune_ex(text, int8, int8);"
	"DROP FUNCTION durq_delete_ids(text[]);"
	"DROP INDEX durq_instances_parent; DROP INDEX durq_instances_completed;"
	"ALTER TABLE durq_executions DROP COLUMN name, DROP COLUMN version,"
	" DROP COLUMN completed_ms;"
	"ALTER TABLE durq_instances DROP COLUMN completed_ms;"
	"UPDATE durq_meta SET value = 2 WHERE key = 'schema_version';"
	"INSERT INTO durq_instances(id, name, version, execution_id, status, output,"
	" custom_status_version, created_ms, updated_ms) VALUES"
	" ('i1', 'wf', 'v1', 2, 2, 'ok', 0, 1000, 3000), ('i2', 'wf', 'v1', 1, 1, NULL, 0, 1000,"
	" 1000);"
	"INSERT INTO durq_executions(instance_id, execution_id, status, output, created_ms,"
	" updated_ms) VALUES ('i1', 1, 4, NULL, 1000, 2000), ('i1', 2, 2, 'ok', 2000, 3000),"
	" ('i2', 1, 1, NULL, 1000, 1000);"
	"INSERT INTO durq_history VALUES ('i1', 1, 1, 'a'), ('i1', 2, 1, 'b'), ('i2', 1, 1, 'c');";

/* The first value of the first row of s, as text ("" for no row or NULL). */
static void pg_value(const char *url, const char *s, char *out, size_t cap)
{
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, s);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", s, PQerrorMessage(c));
	snprintf(out, cap, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(c);
}

/* Version 7: the work queue's pages are half filled (room for a claim's new row version). */
static void check_fillfactor(const char *url, const char *expect)
{
	char v[256];
	pg_value(url, "SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class "
		 "WHERE oid = 'durq_work_queue'::regclass", v, sizeof(v));
	assert_non_null(strstr(v, "fillfactor"));
	assert_non_null(strstr(v, expect));
}

static void test_postgres_v2_database_is_migrated(void **state)
{
	(void)state;
	const char *base = fixture_url();
	char name[64], sqlbuf[256], url[1100];
	snprintf(name, sizeof(name), "durq_migrate_%d", (int)getpid());
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	pg_sql(base, sqlbuf);
	snprintf(sqlbuf, sizeof(sqlbuf), "CREATE DATABASE %s", name);
	pg_sql(base, sqlbuf);
	url_with_db(url, sizeof(url), base, name);
	durq *db = NULL;
	if (durq_open(&db, url, NULL) != DURQ_OK)
		fail_msg("open: %s", durq_error_last());
	durq_free(db); /* today's schema, made on open */
	check_fillfactor(url, "fillfactor=50");
	pg_sql(url, pg_to_v2);
	char v[256];
	pg_value(url, "SELECT coalesce(array_to_string(reloptions, ','), 'none') FROM pg_class "
		 "WHERE oid = 'durq_work_queue'::regclass", v, sizeof(v));
	assert_null(strstr(v, "fillfactor")); /* the old database had none */
	if (durq_open(&db, url, NULL) != DURQ_OK)
		fail_msg("open: %s", durq_error_last());
	check_migrated(db);
	check_fillfactor(url, "fillfactor=50");
	durq_free(db);
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	pg_sql(base, sqlbuf);
}

static void test_postgres_v5_database_gets_sessions(void **state)
{
	(void)state;
	const char *base = fixture_url();
	char name[64], sqlbuf[256], url[1100];
	snprintf(name, sizeof(name), "durq_migrate5_%d", (int)getpid());
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	pg_sql(base, sqlbuf);
	snprintf(sqlbuf, sizeof(sqlbuf), "CREATE DATABASE %s", name);
	pg_sql(base, sqlbuf);
	url_with_db(url, sizeof(url), base, name);
	durq *db = NULL;
	if (durq_open(&db, url, NULL) != DURQ_OK)
		fail_msg("open: %s", durq_error_last());
	durq_free(db);
	pg_sql(url, pg_to_v5);
	if (durq_open(&db, url, NULL) != DURQ_OK)
		fail_msg("open: %s", durq_error_last());
	check_fillfactor(url, "fillfactor=50");
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 10, 30000, 0), DURQ_OK);
	assert_int_equal(n, 1); /* the old item has no session: a plain fetch takes it */
	assert_null(it->session_id);
	assert_int_equal(durq_work_ack(db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	check_sessions(db);
	/* a turn schedules a session activity through the migrated ack function */
	durq_message m = {.instance_id = "i9", .kind = 1, .payload = "x", .payload_len = 1};
	assert_int_equal(durq_orch_enqueue(db, &m, 1), DURQ_OK);
	durq_turn *t = NULL;
	assert_int_equal(durq_orch_fetch(db, &t, 30000, 0), DURQ_OK);
	durq_work w = {.payload = "a", .payload_len = 1, .session_id = "s9", .activity_id = 1};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.work = &w;
	r.n_work = 1;
	assert_int_equal(durq_orch_ack(db, "i9", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_session_owner o = DURQ_SESSION_OWNER_INIT;
	o.owner_id = "worker-9";
	o.lock_ms = 60000;
	assert_int_equal(durq_work_fetch_session(db, &it, &n, NULL, &o, 10, 30000, 0), DURQ_OK);
	assert_string_equal(it->session_id, "s9");
	assert_string_equal(it->instance_id, "i9");
	durq_work_items_free(it, n);
	durq_free(db);
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	pg_sql(base, sqlbuf);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite_v1_database_is_migrated),
		cmocka_unit_test(test_sqlite_v4_database_gets_sessions),
#ifdef DURQ_WITH_POSTGRES
		cmocka_unit_test(test_postgres_v2_database_is_migrated),
		cmocka_unit_test(test_postgres_v5_database_gets_sessions),
#endif
	};
	return cmocka_run_group_tests_name("test_migrate", tests, NULL, NULL);
}
