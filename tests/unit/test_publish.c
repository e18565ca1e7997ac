/*
 * test_publish.c — cross-process stats (src/publish.c): a handle publishes its counters
 * into the database on its write calls, at most once per stats_publish_ms, riding in the
 * transaction of the write that triggered it (no transaction of its own when the handle is
 * busy), never while it makes no write calls; durq_close deletes its row; rows not updated
 * for 3 intervals read as not fresh and go with the next publication of any handle; export
 * leaves the table out; the option and its environment variable. On SQLite files, and on
 * PostgreSQL (the fixture's server, a schema per test) when DURQ_TEST_PG_URL_FILE is set.
 * Commits are counted with durq_stats_get (transactions, txn_ops); batches are built with
 * the committer's pause hook, so nothing depends on timing but the interval itself, which
 * the tests wait out on the monotonic clock (1 ms).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <unistd.h>
#ifdef DURQ_WITH_POSTGRES
#include <libpq-fe.h>
#endif

#include "durq_internal.h" /* durq_committer_pause, durq_committer_backlog */
#include "durq/admin.h"
#include "unit_util.h"

typedef struct tfx {
	char *dir;
	char url[1200];
	int pg;
	char schema[64];
	char server[1024];
} tfx;

/* ---- fixtures ----------------------------------------------------------------------- */

static int setup_sqlite(void **state)
{
	tfx *f = calloc(1, sizeof(*f));
	f->dir = test_tmpdir();
	snprintf(f->url, sizeof(f->url), "sqlite:%s/p.db", f->dir);
	*state = f;
	return 0;
}

#ifdef DURQ_WITH_POSTGRES
static void pg_exec(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}
#endif

#ifdef DURQ_WITH_POSTGRES
static int schema_seq;

static int setup_pg(void **state)
{
	tfx *f = calloc(1, sizeof(*f));
	const char *file = getenv("DURQ_TEST_PG_URL_FILE");
	FILE *in = file ? fopen(file, "r") : NULL;
	if (!in || !fgets(f->server, sizeof(f->server), in))
		fail_msg("DURQ_TEST_PG_URL_FILE is unset or unreadable: run through ctest");
	fclose(in);
	f->server[strcspn(f->server, "\n")] = '\0';
	f->pg = 1;
	snprintf(f->schema, sizeof(f->schema), "durq_pub_%d_%d", (int)getpid(), ++schema_seq);
	char sql[256];
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", f->schema,
		 f->schema);
	pg_exec(f->server, sql);
	snprintf(f->url, sizeof(f->url), "%s%coptions=-csearch_path%%3D%s", f->server,
		 strchr(f->server, '?') ? '&' : '?', f->schema);
	*state = f;
	return 0;
}
#endif

static int teardown(void **state)
{
	tfx *f = *state;
#ifdef DURQ_WITH_POSTGRES
	if (f->pg) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
		pg_exec(f->server, sql);
	}
#endif
	test_rmdir(f->dir);
	free(f);
	return 0;
}

static durq *open_with(const tfx *f, int interval_ms, int mode)
{
	durq *db;
	durq_options o = DURQ_OPTIONS_INIT;
	o.stats_publish_ms = interval_ms;
	o.commit_mode = mode;
	o.pool_size = 5;
	if (durq_open(&db, f->url, &o) != DURQ_OK)
		fail_msg("open %s: %s", f->url, durq_error_last());
	return db;
}

/* A reader that publishes nothing itself. */
static durq *open_reader(const tfx *f)
{
	return open_with(f, DURQ_STATS_PUBLISH_OFF, DURQ_COMMIT_GROUP);
}

/* The interval of the tests: 1 ms (a row stays fresh for 3 intervals, at least 3 s) */
#define FAST 1

/* Let an interval of ms pass (on the monotonic clock the publisher reads). */
static void interval_passes(int ms)
{
	uint64_t until = durq_clock_mono_ns() + (uint64_t)(ms + 1) * 1000000u;
	while (durq_clock_mono_ns() < until)
		sched_yield();
}

static durq_stats stats(durq *db)
{
	durq_stats s;
	assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
	return s;
}

static uint64_t ops_of(const durq_stats *s)
{
	uint64_t n = 0;
	for (int i = 0; i < DURQ_OP__COUNT; i++)
		n += s->ops[i];
	return n;
}

static void enqueue(durq *db, int n)
{
	durq_work w = {.queue = "q", .payload = "x", .payload_len = 1};
	for (int i = 0; i < n; i++)
		assert_int_equal(durq_work_enqueue(db, &w, 1), DURQ_OK);
}

/* The rows as a reader sees them; *n set. */
static durq_handle_stats *rows(durq *db, size_t *n)
{
	durq_handle_stats *v;
	assert_int_equal(durq_handle_stats_list(db, &v, n), DURQ_OK);
	return v;
}

/* Three async enqueues posted while the committer is paused: with a publication due, it
 * is posted ahead of the first, and all four go in the one batch the resume commits. */
static void paused_batch(durq *db)
{
	durq_group *g;
	durq_work w = {.queue = "q", .payload = "y", .payload_len = 1};
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	durq_async how = {.group = g};
	durq_committer_pause(db, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(durq_work_enqueue_async(db, &w, 1, &how), DURQ_OK);
	durq_committer_pause(db, 0);
	size_t failed = 9;
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	assert_int_equal(failed, 0);
	durq_group_free(g);
}

/* ---- tests -------------------------------------------------------------------------- */

/* A busy handle's publication adds no transaction: it rides in the batch of the writes. */
static void test_busy_publish_adds_no_transaction(void **state)
{
	tfx *f = *state;
	durq *db = open_with(f, FAST, DURQ_COMMIT_GROUP);
	enqueue(db, 1);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	durq_stats s0 = stats(db);
	interval_passes(FAST);
	paused_batch(db);
	durq_stats s1 = stats(db);
	assert_int_equal(s1.transactions - s0.transactions, 1); /* one batch, no more */
	size_t n;
	durq *r = open_reader(f);
	durq_handle_stats *v = rows(r, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].pid, (int64_t)getpid());
	assert_int_equal(v[0].fresh, 1); /* 3 intervals, at least 3 s */
	assert_int_equal(v[0].interval_ms, FAST);
	assert_int_equal(strlen(v[0].key), 32);
	assert_int_equal(v[0].ops, ops_of(&s0)); /* the counters when the batch was submitted */
	assert_int_equal(v[0].transactions, s0.transactions);
	assert_int_equal(v[0].txn_ops, s0.txn_ops);
	assert_true(v[0].commit_latency.count == s0.commit_latency.count &&
		    v[0].commit_latency.count > 0);
	assert_true(v[0].updated_ms >= v[0].started_ms);
	durq_handle_stats_free(v);
	durq_free(r);
	durq_free(db);
}

typedef struct fetcher {
	durq *db;
	int rc;
} fetcher;

static void *fetch_one(void *arg)
{
	fetcher *t = arg;
	durq_work_item *it;
	size_t n;
	t->rc = durq_work_fetch(t->db, &it, &n, "q", 1, 60000, 0);
	if (t->rc == DURQ_OK)
		durq_work_items_free(it, n);
	return NULL;
}

/* A claim's publication rides with the claim: in the claims' unflushed transaction
 * (SQLite: both in the committer's batch, built here with the pause hook), or in the
 * claim's own transaction beside the batch (PostgreSQL). */
static void test_claim_publish_rides_with_the_claim(void **state)
{
	tfx *f = *state;
	durq *db = open_with(f, FAST, DURQ_COMMIT_GROUP);
	enqueue(db, 2);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	durq_stats s0 = stats(db);
	fetcher t = {.db = db, .rc = 1};
	interval_passes(FAST);
	if (f->pg) { /* claims run beside the batch, on the fetching thread */
		fetch_one(&t);
	} else {
		pthread_t th;
		durq_committer_pause(db, 1);
		assert_int_equal(pthread_create(&th, NULL, fetch_one, &t), 0);
		while (durq_committer_backlog(db) < 2) /* the publication, then the claim */
			sched_yield();
		durq_committer_pause(db, 0);
		pthread_join(th, NULL);
	}
	assert_int_equal(t.rc, DURQ_OK);
	durq_stats s1 = stats(db);
	assert_int_equal(s1.transactions - s0.transactions, 1);
	size_t n;
	durq_handle_stats *v = rows(db, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].ops, ops_of(&s0));
	durq_handle_stats_free(v);
	durq_free(db);
}

/* Per-op mode: the publication is applied in the write's own transaction. */
static void test_per_op_publish_rides_in_the_op(void **state)
{
	tfx *f = *state;
	durq *db = open_with(f, FAST, DURQ_COMMIT_PER_OP);
	enqueue(db, 1);
	durq_stats s0 = stats(db);
	interval_passes(FAST);
	enqueue(db, 1);
	durq_stats s1 = stats(db);
	assert_int_equal(s1.transactions - s0.transactions, 1);
	size_t n;
	durq_handle_stats *v = rows(db, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].ops, ops_of(&s0));
	durq_handle_stats_free(v);
	durq_free(db);
}

/* A handle that makes no write calls publishes nothing, however long it stays open; reads
 * do not publish; and nothing is published before the first interval has passed. */
static void test_idle_handle_publishes_nothing(void **state)
{
	tfx *f = *state;
	durq *quiet = open_with(f, 60000, DURQ_COMMIT_GROUP);
	enqueue(quiet, 5); /* within its first minute: no publication at all */
	durq_stats q = stats(quiet);
	assert_int_equal(q.transactions, 5);
	assert_int_equal(q.txn_ops, 5);
	durq_free(quiet);

	durq *db = open_with(f, FAST, DURQ_COMMIT_GROUP);
	interval_passes(FAST);
	enqueue(db, 1); /* publishes (its first interval has passed) */
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	size_t n;
	durq_handle_stats *v = rows(db, &n);
	assert_int_equal(n, 1);
	int64_t updated = v[0].updated_ms;
	durq_handle_stats_free(v);
	durq_stats s0 = stats(db);
	for (int i = 0; i < 5; i++) { /* idle for 5 intervals, reading */
		interval_passes(FAST);
		durq_queue_depths d;
		assert_int_equal(durq_queue_depths_get(db, &d, "q"), DURQ_OK);
		durq_work_info *w;
		size_t k;
		assert_int_equal(durq_work_peek(db, &w, &k, "q", 0, 10), DURQ_OK);
		durq_work_infos_free(w, k);
	}
	durq_stats s1 = stats(db);
	assert_int_equal(s1.transactions, s0.transactions);
	assert_int_equal(s1.txn_ops, s0.txn_ops);
	v = rows(db, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].updated_ms, updated);
	durq_handle_stats_free(v);
	durq_free(db);
}

/* durq_close deletes the handle's row; another handle sees it go. */
static void test_close_deletes_the_row(void **state)
{
	tfx *f = *state;
	durq *r = open_reader(f);
	durq *a = open_with(f, FAST, DURQ_COMMIT_GROUP);
	durq *b = open_with(f, FAST, DURQ_COMMIT_PER_OP);
	interval_passes(FAST);
	enqueue(a, 1);
	enqueue(b, 1);
	assert_int_equal(durq_flush(a, -1), DURQ_OK);
	size_t n;
	durq_handle_stats *v = rows(r, &n);
	assert_int_equal(n, 2);
	assert_string_not_equal(v[0].key, v[1].key);
	durq_handle_stats_free(v);
	durq_free(a);
	v = rows(r, &n);
	assert_int_equal(n, 1);
	durq_handle_stats_free(v);
	durq_free(b);
	v = rows(r, &n);
	assert_int_equal(n, 0);
	durq_handle_stats_free(v);
	durq_free(r);
}

/* A row written as by a process that died 10 s ago: read as not fresh, deleted by the
 * next publication of any handle. */
static void test_stale_rows_read_stale_and_go(void **state)
{
	tfx *f = *state;
	durq *r = open_reader(f); /* makes the table */
	char sql[512];
	snprintf(sql, sizeof(sql), "INSERT INTO %s(handle_key, pid, host, started_ms, "
		 "updated_ms, interval_ms, counters) VALUES ('dead', 1, 'gone', %lld, %lld, "
		 "1000, 'v=1 ops=7 txns=2')", f->pg ? "durq_handle_stats" : "handle_stats",
		 (long long)(durq_now(r) - 20000), (long long)(durq_now(r) - 10000));
	if (f->pg) {
#ifdef DURQ_WITH_POSTGRES
		char full[700];
		snprintf(full, sizeof(full), "SET search_path = %s; %s", f->schema, sql);
		pg_exec(f->server, full);
#endif
	} else {
		sqlite3 *s;
		char path[1100];
		snprintf(path, sizeof(path), "%s/p.db", f->dir);
		assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
		sqlite3_busy_timeout(s, 5000);
		assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(s);
	}
	size_t n;
	durq_handle_stats *v = rows(r, &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].key, "dead");
	assert_string_equal(v[0].host, "gone");
	assert_int_equal(v[0].fresh, 0);
	assert_int_equal(v[0].ops, 7);
	assert_int_equal(v[0].transactions, 2);
	assert_int_equal(v[0].pool_waits, 0); /* keys it lacks read 0 */
	durq_handle_stats_free(v);

	durq *a = open_with(f, FAST, DURQ_COMMIT_GROUP);
	interval_passes(FAST);
	enqueue(a, 1);
	assert_int_equal(durq_flush(a, -1), DURQ_OK);
	v = rows(r, &n);
	assert_int_equal(n, 1);
	assert_string_not_equal(v[0].key, "dead");
	assert_int_equal(v[0].fresh, 1);
	durq_handle_stats_free(v);
	durq_free(a);
	durq_free(r);
}

static int saw_stats_table(void *ctx, const durq_row *row)
{
	if (!strcmp(row->table, "handle_stats"))
		*(int *)ctx = 1;
	return DURQ_OK;
}

static int no_rows(void *ctx, durq_row *row)
{
	(void)ctx;
	(void)row;
	return DURQ_EMPTY;
}

/* export leaves the table out; import does not count its rows as data. */
static void test_export_and_import_leave_it_out(void **state)
{
	tfx *f = *state;
	durq *db = open_with(f, FAST, DURQ_COMMIT_GROUP);
	interval_passes(FAST);
	enqueue(db, 1);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	size_t n;
	durq_handle_stats *v = rows(db, &n);
	assert_int_equal(n, 1);
	durq_handle_stats_free(v);
	int seen = 0;
	assert_int_equal(durq_db_export(db, NULL, saw_stats_table, &seen), DURQ_OK);
	assert_int_equal(seen, 0);
	durq_free(db);

	/* SQLite: a database whose only row is a publication is empty to an import (a fetch
	 * that finds nothing is a write: it publishes, and stores no data) */
	if (f->pg)
		return;
	tfx g = *f;
	snprintf(g.url, sizeof(g.url), "sqlite:%s/empty.db", f->dir);
	durq *t = open_with(&g, FAST, DURQ_COMMIT_GROUP);
	durq_work_item *it;
	interval_passes(FAST);
	assert_int_equal(durq_work_fetch(t, &it, &n, "q", 1, 1000, 0), DURQ_EMPTY);
	assert_int_equal(durq_flush(t, -1), DURQ_OK);
	v = rows(t, &n);
	assert_int_equal(n, 1);
	durq_handle_stats_free(v);
	size_t imported = 9;
	assert_int_equal(durq_db_import(t, &imported, no_rows, NULL), DURQ_OK);
	assert_int_equal(imported, 0);
	durq_free(t);
}

/* The option: default 1000, DURQ_STATS_PUBLISH_OFF, the environment variable (0 = off). */
static void test_option_and_environment(void **state)
{
	tfx *f = *state;
	durq_options o;
	durq *db = open_with(f, 0, DURQ_COMMIT_GROUP);
	assert_int_equal(durq_options_get(db, &o), DURQ_OK);
	assert_int_equal(o.stats_publish_ms, 1000);
	durq_free(db);

	setenv("DURQ_STATS_PUBLISH_MS", "0", 1);
	db = open_with(f, FAST, DURQ_COMMIT_GROUP);
	assert_int_equal(durq_options_get(db, &o), DURQ_OK);
	assert_int_equal(o.stats_publish_ms, DURQ_STATS_PUBLISH_OFF);
	interval_passes(FAST);
	enqueue(db, 2);
	durq_stats s = stats(db);
	assert_int_equal(s.txn_ops, 2);
	size_t n;
	durq_handle_stats *v = rows(db, &n);
	assert_int_equal(n, 0);
	durq_handle_stats_free(v);
	durq_free(db);

	setenv("DURQ_STATS_PUBLISH_MS", "250", 1);
	db = open_with(f, 0, DURQ_COMMIT_GROUP);
	assert_int_equal(durq_options_get(db, &o), DURQ_OK);
	assert_int_equal(o.stats_publish_ms, 250);
	durq_free(db);

	setenv("DURQ_STATS_PUBLISH_MS", "-5", 1);
	durq_options bad = DURQ_OPTIONS_INIT;
	assert_int_equal(durq_open(&db, f->url, &bad), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "DURQ_STATS_PUBLISH_MS"));
	unsetenv("DURQ_STATS_PUBLISH_MS");
	bad.stats_publish_ms = -2;
	assert_int_equal(durq_open(&db, f->url, &bad), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "stats_publish_ms"));
}

/* An in-memory database (private to its process) publishes nothing. */
static void test_memory_never_publishes(void **state)
{
	(void)state;
	durq *db;
	durq_options o = DURQ_OPTIONS_INIT;
	o.stats_publish_ms = 1;
	assert_int_equal(durq_open(&db, "sqlite::memory:", &o), DURQ_OK);
	interval_passes(FAST);
	enqueue(db, 2);
	durq_stats s = stats(db);
	assert_int_equal(s.txn_ops, 2);
	size_t n;
	durq_handle_stats *v = rows(db, &n);
	assert_int_equal(n, 0);
	durq_handle_stats_free(v);
	durq_free(db);
}

/* The quantile the tools show: the upper bound of the bucket holding the q-th sample. */
static void test_latency_quantile(void **state)
{
	(void)state;
	durq_latency l = {0};
	assert_int_equal(durq_latency_quantile_ns(&l, 0.99), 0);
	l.buckets[0] = 98; /* <= 100 us */
	l.buckets[3] = 2;  /* <= 1 ms */
	assert_int_equal(durq_latency_quantile_ns(&l, 0.98), 100000);
	assert_int_equal(durq_latency_quantile_ns(&l, 0.99), 1000000);
	l.buckets[DURQ_LATENCY_BUCKETS - 1] = 1000; /* over 10 s: the highest bound */
	assert_int_equal(durq_latency_quantile_ns(&l, 0.99), 10000000000ull);
}

#define BOTH(t)                                                                            \
	cmocka_unit_test_setup_teardown(t, setup_sqlite, teardown)
#define PG(t) cmocka_unit_test_setup_teardown(t, setup_pg, teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {
		BOTH(test_busy_publish_adds_no_transaction),
		BOTH(test_claim_publish_rides_with_the_claim),
		BOTH(test_per_op_publish_rides_in_the_op),
		BOTH(test_idle_handle_publishes_nothing),
		BOTH(test_close_deletes_the_row),
		BOTH(test_stale_rows_read_stale_and_go),
		BOTH(test_export_and_import_leave_it_out),
		BOTH(test_option_and_environment),
		cmocka_unit_test(test_memory_never_publishes),
		cmocka_unit_test(test_latency_quantile),
	};
	int failed = cmocka_run_group_tests_name("publish_sqlite", sqlite_tests, NULL, NULL);
	if (!getenv("DURQ_TEST_PG_URL_FILE"))
		return failed;
#ifdef DURQ_WITH_POSTGRES
	const struct CMUnitTest pg_tests[] = {
		PG(test_busy_publish_adds_no_transaction),
		PG(test_claim_publish_rides_with_the_claim),
		PG(test_per_op_publish_rides_in_the_op),
		PG(test_idle_handle_publishes_nothing),
		PG(test_close_deletes_the_row),
		PG(test_stale_rows_read_stale_and_go),
		PG(test_export_and_import_leave_it_out),
	};
	failed += cmocka_run_group_tests_name("publish_postgresql", pg_tests, NULL, NULL);
#endif
	return failed;
}
