/*
 * ceiling.c — the speed limit of the schema on this disk: one thread, the sqlite3 API
 * directly, no durq, no threads.
 *
 * Own schema equivalent to a worker queue (item rows with a lease token, a partial index on
 * ready rows). Prefill N rows in transactions of 1,000 (not timed), then per item: claim
 * (UPDATE ... SET lock_token, locked_until, attempt = attempt + 1 on the oldest ready row)
 * and ack (DELETE by id and token), 1,000 items per BEGIN IMMEDIATE ... COMMIT. Same PRAGMAs
 * as a durq file database (WAL, synchronous as --sync) and the same slow-sync VFS if asked.
 * The in-memory provider's ceiling uses a WAL database on /dev/shm (tmpfs).
 *
 * Latency of an item = its claim start -> COMMIT of its transaction returned.
 * Owns: its own sqlite3 connection and files; and the parts the raw-SQLite baselines share
 * (bench_sq_*: the schema, opening with the seeds' PRAGMAs, the prefill), which
 * sq_baseline.c (sqlite-batched) uses too. Does not own: anything of durq.
 */
#include "bench.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TXN_ITEMS 1000

const char *const bench_sq_schema =
	"CREATE TABLE work("
	" id INTEGER PRIMARY KEY,"
	" queue TEXT NOT NULL DEFAULT '',"
	" instance_id TEXT, execution_id INTEGER, activity_id INTEGER,"
	" priority INTEGER NOT NULL DEFAULT 0,"
	" payload BLOB,"
	" visible_at INTEGER NOT NULL,"
	" lock_token BLOB, locked_until INTEGER,"
	" attempt INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX work_ready ON work(queue, priority DESC, id) WHERE lock_token IS NULL;";

const char *bench_sq_sync_pragma(int sync)
{
	switch (sync) {
	case DURQ_SYNC_OFF:
		return "PRAGMA synchronous=OFF";
	case DURQ_SYNC_NORMAL:
		return "PRAGMA synchronous=NORMAL";
	default:
		return "PRAGMA synchronous=FULL";
	}
}

static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;

void bench_sq_note(bench_row *row, const char *what, const char *msg)
{
	pthread_mutex_lock(&note_lock);
	if (!row->first_error[0])
		snprintf(row->first_error, sizeof(row->first_error), "%s: %.40s: %.100s",
			 bench_mode_name(row->cfg.mode), what, msg);
	pthread_mutex_unlock(&note_lock);
}

int bench_sq_exec(sqlite3 *db, const char *sql, bench_row *row)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		bench_sq_note(row, sql, err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
	}
	return rc;
}

int64_t bench_sq_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

void bench_sq_token(uint64_t *seed, unsigned char tok[16])
{
	uint64_t r1 = xorshift(seed), r2 = xorshift(seed);
	memcpy(tok, &r1, 8);
	memcpy(tok + 8, &r2, 8);
}

int bench_sq_prefill(sqlite3 *db, bench_row *row, long n)
{
	sqlite3_stmt *ins = NULL;
	size_t plen = row->cfg.payload;
	unsigned char *payload = calloc(1, plen ? plen : 1);
	int rc = sqlite3_prepare_v2(db,
				    "INSERT INTO work(queue, priority, payload, visible_at)"
				    " VALUES('', 0, ?1, ?2)",
				    -1, &ins, NULL);
	for (long done = 0; rc == SQLITE_OK && done < n;) {
		rc = bench_sq_exec(db, "BEGIN IMMEDIATE", row);
		for (long i = 0; rc == SQLITE_OK && i < TXN_ITEMS && done < n; i++, done++) {
			sqlite3_bind_blob(ins, 1, payload, (int)plen, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 2, bench_sq_wall_ms());
			rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
			sqlite3_reset(ins);
		}
		if (rc == SQLITE_OK)
			rc = bench_sq_exec(db, "COMMIT", row);
	}
	sqlite3_finalize(ins);
	free(payload);
	return rc;
}

int bench_sq_mkdir(bench_row *row, char *dir, size_t len)
{
	const bench_row_cfg *cfg = &row->cfg;
	const char *parent = cfg->provider == PROV_MEMORY ? "/dev/shm" : cfg->tmpdir;
	if (cfg->provider == PROV_MEMORY && access("/dev/shm", W_OK) != 0)
		parent = cfg->tmpdir;
	if (bench_mkdir(dir, len, parent) < 0) {
		row->skipped = 1;
		snprintf(row->note, sizeof(row->note), "cannot create a directory under %s", parent);
		return -1;
	}
	return 0;
}

int bench_sq_open(bench_row *row, const char *dir, int create, sqlite3 **db)
{
	const bench_row_cfg *cfg = &row->cfg;
	char path[4200];
	snprintf(path, sizeof(path), "%s/bench.db", dir);
	/* The slow-sync VFS models a slower disk: the file rows only, like durq's rows; the
	 * memory rows go through the counting VFS (no delay). */
	int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				 cfg->provider == PROV_FILE ? cfg->vfs : cfg->mem_vfs);
	if (rc != SQLITE_OK) {
		bench_sq_note(row, "open", sqlite3_errstr(rc));
		return rc;
	}
	if ((rc = bench_sq_exec(*db, "PRAGMA journal_mode=WAL", row)) ||
	    (rc = bench_sq_exec(*db, bench_sq_sync_pragma(cfg->sync), row)) ||
	    (rc = bench_sq_exec(*db, "PRAGMA temp_store=MEMORY", row)) ||
	    (rc = bench_sq_exec(*db, "PRAGMA busy_timeout=5000", row)))
		return rc;
	return create ? bench_sq_exec(*db, bench_sq_schema, row) : SQLITE_OK;
}

void bench_run_ceiling(bench_row *row)
{
	const bench_row_cfg *cfg = &row->cfg;
	char dir[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *claim = NULL, *ack = NULL;
	bench_lat lat = {0};
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ bench_now_ns();
	long n = cfg->items > 0 ? cfg->items : 10000, done = 0;
	uint64_t txns = 0, commit_ns = 0;
	int rc;

	if (cfg->workload != WL_QUEUE) {
		row->skipped = 1;
		snprintf(row->note, sizeof(row->note),
			 "ceiling is defined for the queue workload only");
		return;
	}
	if (bench_sq_mkdir(row, dir, sizeof(dir)) < 0)
		return;
	if (bench_sq_open(row, dir, 1, &db) || bench_sq_prefill(db, row, n))
		goto out;
	rc = sqlite3_prepare_v2(db,
				"UPDATE work SET lock_token = ?1, locked_until = ?2,"
				" attempt = attempt + 1"
				" WHERE id = (SELECT id FROM work WHERE queue = '' AND"
				" lock_token IS NULL AND visible_at <= ?3"
				" ORDER BY priority DESC, id LIMIT 1) RETURNING id",
				-1, &claim, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "DELETE FROM work WHERE id = ?1 AND lock_token = ?2", -1,
					&ack, NULL);
	if (rc != SQLITE_OK) {
		bench_sq_note(row, "prepare", sqlite3_errmsg(db));
		goto out;
	}

	double cpu0 = bench_cpu_seconds();
	bench_syncs syncs0 = bench_syncs_now();
	uint64_t t0 = bench_now_ns(), deadline = 0, t1 = t0;
	uint64_t starts[TXN_ITEMS];
	if (cfg->duration_s > 0)
		deadline = t0 + (uint64_t)(cfg->duration_s * 1e9);
	while (done < n && (!deadline || bench_now_ns() < deadline)) {
		uint64_t tb = bench_now_ns();
		long k = 0;
		if (bench_sq_exec(db, "BEGIN IMMEDIATE", row))
			break;
		for (; k < TXN_ITEMS && done + k < n; k++) {
			unsigned char tok[16];
			int64_t now = bench_sq_wall_ms(), id = -1;
			bench_sq_token(&seed, tok);
			starts[k] = bench_now_ns();
			sqlite3_bind_blob(claim, 1, tok, 16, SQLITE_STATIC);
			sqlite3_bind_int64(claim, 2, now + 30000);
			sqlite3_bind_int64(claim, 3, now);
			if (sqlite3_step(claim) == SQLITE_ROW)
				id = sqlite3_column_int64(claim, 0);
			while (sqlite3_step(claim) == SQLITE_ROW)
				;
			sqlite3_reset(claim);
			if (id < 0)
				break;
			sqlite3_bind_int64(ack, 1, id);
			sqlite3_bind_blob(ack, 2, tok, 16, SQLITE_STATIC);
			if (sqlite3_step(ack) != SQLITE_DONE || sqlite3_changes(db) != 1)
				row->failures++;
			sqlite3_reset(ack);
		}
		if (bench_sq_exec(db, "COMMIT", row))
			break;
		t1 = bench_now_ns();
		txns++;
		commit_ns += t1 - tb;
		for (long i = 0; i < k; i++)
			bench_lat_add(&lat, t1 - starts[i]);
		done += k;
		if (k == 0)
			break;
	}
	double cpu = bench_cpu_seconds() - cpu0;
	row->elapsed_s = (t1 - t0) / 1e9;
	row->items_done = done - row->failures;
	row->throughput = row->elapsed_s > 0 ? row->items_done / row->elapsed_s : 0;
	row->success_rate = done > 0 ? (double)row->items_done / (double)done : 0;
	row->p50_ms = bench_lat_quantile_ms(&lat, 0.50);
	row->p99_ms = bench_lat_quantile_ms(&lat, 0.99);
	row->transactions = txns;
	row->ops_per_txn = txns ? 2.0 * (double)done / (double)txns : 0; /* claim + ack per item */
	row->txn_per_item = done ? (double)txns / (double)done : 0;
	row->commit_ms_mean = txns ? (double)commit_ns / (double)txns / 1e6 : 0;
	row->cpu_s_per_1k = done ? cpu * 1000.0 / (double)done : 0;
	/* every item's ack (and claim) rides in a flushed commit: acks per flushed commit */
	bench_syncs syncs1 = bench_syncs_now();
	durq_stats none;
	memset(&none, 0, sizeof(none));
	bench_fill_fsyncs(row, &none, &none, &syncs0, &syncs1);
	row->flushed_ops = (uint64_t)row->items_done;
	row->ops_per_fsync = row->flushed_commits
				     ? (double)row->flushed_ops / (double)row->flushed_commits
				     : 0;
	snprintf(row->note, sizeof(row->note), "sqlite3 direct, 1 thread, %d items/txn", TXN_ITEMS);
out:
	sqlite3_finalize(claim);
	sqlite3_finalize(ack);
	if (db)
		sqlite3_close(db);
	bench_lat_free(&lat);
	bench_rmdir(dir);
}
