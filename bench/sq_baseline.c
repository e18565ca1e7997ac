/*
 * sq_baseline.c — sqlite-batched: what one writes for a queue on SQLite by hand, with
 * batching, and no durq. The bar issue #8 names: "a plain SQLite table with the seeds'
 * PRAGMAs and hand-written batching (claim 128 rows in one transaction, delete them in one
 * transaction, 2 threads = 256 in flight, WAL FULL)"; durq's group mode with per-item
 * asynchronous acks must at least match it.
 *
 * The raw-SQLite ceiling's schema, PRAGMAs and prefill (ceiling.c, bench_sq_*), in a fresh
 * directory per row (sqlite-memory: a WAL file on /dev/shm, as the memory ceiling). Prefill
 * N items (not timed), then BENCH_SQ_BASE_WORKERS threads, each with its own sqlite3
 * connection (journal_mode=WAL, synchronous as --sync, busy_timeout=5000,
 * temp_store=MEMORY; the file rows through the slow-sync VFS), loop:
 *
 *   BEGIN IMMEDIATE; UPDATE work SET lock_token = ?, locked_until = ?, attempt = attempt + 1
 *     WHERE id IN (SELECT id FROM work WHERE queue = '' AND lock_token IS NULL AND
 *     visible_at <= ? ORDER BY priority DESC, id LIMIT 128) RETURNING id; COMMIT;
 *   BEGIN IMMEDIATE; DELETE FROM work WHERE id = ? AND lock_token = ? (one prepared
 *     statement, stepped once per claimed id); COMMIT;
 *
 * until the queue is drained or the deadline passes (a thread finishes the batch it is in).
 * BEGIN IMMEDIATE waits for the other thread's write lock in SQLite's busy_timeout handler
 * (reproduced here to count its waits: busy "h"); an SQLITE_BUSY after the 5 s timeout is
 * counted (busy "s") and retried, as the seeds did.
 *
 * Throughput = items deleted / (start -> last thread left). Latency of an item = start of
 * the transaction that claimed it -> COMMIT of its delete returned; ack latency = start of
 * its delete transaction -> that COMMIT; fetch latency = its claim transaction.
 *
 * Owns: its threads, connections and files. Does not own: the schema and opening
 * (ceiling.c), anything of durq.
 */
#include "bench.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH BENCH_SQ_BATCH
#define BUSY_TIMEOUT_MS 5000 /* the seeds' PRAGMA busy_timeout */
#define LEASE_MS 300000      /* locked_until = now + 5 min, as the async rows' lease */

static const char *const sql_claim =
	"UPDATE work SET lock_token = ?1, locked_until = ?2, attempt = attempt + 1"
	" WHERE id IN (SELECT id FROM work WHERE queue = '' AND lock_token IS NULL AND"
	" visible_at <= ?3 ORDER BY priority DESC, id LIMIT ?4) RETURNING id";
static const char *const sql_delete = "DELETE FROM work WHERE id = ?1 AND lock_token = ?2";

struct sctx;

typedef struct sworker {
	struct sctx *q;
	sqlite3 *db;
	sqlite3_stmt *claim, *del;
	pthread_t th;
	int started;
	uint64_t seed;
	bench_tally t; /* txn_ns: lock held (BEGIN returned) -> COMMIT returned */
	uint64_t busy_waits, busy_errors; /* busy handler sleeps; SQLITE_BUSY from BEGIN */
} sworker;

typedef struct sctx {
	bench_row *row;
	uint64_t deadline_ns; /* 0 = until drained */
	atomic_long done;
	atomic_int alive;
	_Atomic uint64_t last_exit_ns;
	sworker *w;
	int nw;
} sctx;

/* SQLite's busy_timeout handler (sqliteDefaultBusyCallback, with usleep: sleeps of 1, 2, 5,
 * 10, 15, 20, 25, 25, 25, 50, 50 ms, then 100 ms each, until the timeout), the same waits,
 * counted. */
static int busy_wait(void *arg, int count)
{
	static const int delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
	static const int totals[] = {0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228};
	const int nd = (int)(sizeof(delays) / sizeof(delays[0]));
	sworker *w = arg;
	int delay, prior;
	if (count < nd) {
		delay = delays[count];
		prior = totals[count];
	} else {
		delay = delays[nd - 1];
		prior = totals[nd - 1] + delay * (count - (nd - 1));
	}
	if (prior + delay > BUSY_TIMEOUT_MS) {
		delay = BUSY_TIMEOUT_MS - prior;
		if (delay <= 0)
			return 0;
	}
	w->busy_waits++;
	sqlite3_sleep(delay);
	return 1;
}

static int past_deadline(const sctx *q)
{
	return q->deadline_ns && bench_now_ns() >= q->deadline_ns;
}

/* BEGIN IMMEDIATE, retried after an SQLITE_BUSY (the busy handler gave up). 0 = the write
 * lock is held; -1 = another error (noted). */
static int begin(sworker *w)
{
	for (;;) {
		int rc = sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			return 0;
		if (rc != SQLITE_BUSY) {
			bench_sq_note(w->q->row, "BEGIN IMMEDIATE", sqlite3_errmsg(w->db));
			return -1;
		}
		w->busy_errors++;
	}
}

static void rollback(sworker *w)
{
	sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
}

/* COMMIT the transaction whose lock was taken at tl, counting it; the time it returned, or
 * 0 if it failed (rolled back). */
static uint64_t commit(sworker *w, uint64_t tl)
{
	if (bench_sq_exec(w->db, "COMMIT", w->q->row) != SQLITE_OK) {
		rollback(w);
		return 0;
	}
	uint64_t t = bench_now_ns();
	w->t.txns++;
	w->t.txn_ns += t - tl;
	return t;
}

/* One batch: items deleted (0 = the queue is empty), -1 = an error (noted; the thread
 * stops). */
static int batch(sworker *w)
{
	bench_row *row = w->q->row;
	int64_t ids[BATCH];
	unsigned char tok[16];
	int k = 0, lost = 0, rc;

	uint64_t t0 = bench_now_ns();
	if (begin(w) < 0)
		return -1;
	uint64_t tl = bench_now_ns();
	int64_t now = bench_sq_wall_ms();
	bench_sq_token(&w->seed, tok);
	sqlite3_bind_blob(w->claim, 1, tok, 16, SQLITE_STATIC);
	sqlite3_bind_int64(w->claim, 2, now + LEASE_MS);
	sqlite3_bind_int64(w->claim, 3, now);
	sqlite3_bind_int(w->claim, 4, BATCH);
	while ((rc = sqlite3_step(w->claim)) == SQLITE_ROW)
		if (k < BATCH)
			ids[k++] = sqlite3_column_int64(w->claim, 0);
	sqlite3_reset(w->claim);
	if (rc != SQLITE_DONE) {
		bench_sq_note(row, "claim", sqlite3_errmsg(w->db));
		rollback(w);
		return -1;
	}
	uint64_t t1 = commit(w, tl);
	if (!t1)
		return -1;
	if (k == 0)
		return 0;

	if (begin(w) < 0)
		return -1;
	tl = bench_now_ns();
	for (int i = 0; i < k; i++) {
		sqlite3_bind_int64(w->del, 1, ids[i]);
		sqlite3_bind_blob(w->del, 2, tok, 16, SQLITE_STATIC);
		rc = sqlite3_step(w->del);
		int changed = sqlite3_changes(w->db);
		sqlite3_reset(w->del);
		if (rc != SQLITE_DONE) {
			bench_sq_note(row, "delete", sqlite3_errmsg(w->db));
			rollback(w);
			return -1;
		}
		if (changed != 1) {
			lost++; /* not ours any more: cannot happen with a 5 min lease */
			bench_sq_note(row, "delete", "no row with that id and token");
		}
	}
	uint64_t t2 = commit(w, tl);
	if (!t2)
		return -1;
	bench_tally_items(&w->t, k, t0, t1, t2);
	w->t.failures += lost;
	return k - lost;
}

static void *worker_main(void *arg)
{
	sworker *w = arg;
	sctx *q = w->q;
	while (!past_deadline(q)) {
		int k = batch(w);
		if (k < 0)
			w->t.failures++;
		if (k <= 0)
			break; /* drained, or an error */
		w->t.done += k;
		atomic_fetch_add(&q->done, k);
	}
	uint64_t now = bench_now_ns(), prev = atomic_load(&q->last_exit_ns);
	while (prev < now && !atomic_compare_exchange_weak(&q->last_exit_ns, &prev, now))
		;
	atomic_fetch_sub(&q->alive, 1);
	return NULL;
}

/* ---- the row ---------------------------------------------------------------------- */

static int setup_workers(sctx *q, const char *dir)
{
	bench_row *row = q->row;
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ bench_now_ns();
	for (int i = 0; i < q->nw; i++) {
		sworker *w = &q->w[i];
		w->q = q;
		w->seed = seed + 0x2545f4914f6cdd1dull * (uint64_t)(i + 1);
		if (bench_sq_open(row, dir, 0, &w->db) != SQLITE_OK)
			return -1;
		/* after the PRAGMA: the same waits as busy_timeout=5000, counted */
		sqlite3_busy_handler(w->db, busy_wait, w);
		if (sqlite3_prepare_v2(w->db, sql_claim, -1, &w->claim, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(w->db, sql_delete, -1, &w->del, NULL) != SQLITE_OK) {
			bench_sq_note(row, "prepare", sqlite3_errmsg(w->db));
			return -1;
		}
	}
	return 0;
}

static void collect(sctx *q, bench_row *row, uint64_t t0, double cpu)
{
	bench_tally sum = {0};
	for (int i = 0; i < q->nw; i++) {
		bench_tally_add(&sum, &q->w[i].t);
		row->busy_retries += q->w[i].busy_waits;
		row->busy_surfaced += q->w[i].busy_errors;
	}
	uint64_t t1 = atomic_load(&q->last_exit_ns);
	bench_tally_fill(row, &sum, q->nw, t1 > t0 ? t1 - t0 : 0, cpu);
}

void bench_run_sq_baseline(bench_row *row)
{
	const bench_row_cfg *cfg = &row->cfg;
	char dir[4096] = "";
	long n = cfg->items > 0 ? cfg->items : 20000;
	sqlite3 *admin = NULL;
	sctx q;

	memset(&q, 0, sizeof(q));
	q.row = row;
	q.nw = cfg->workers > 0 ? cfg->workers : BENCH_SQ_BASE_WORKERS;
	snprintf(row->note, sizeof(row->note), "sqlite3 direct, %d threads x %d items/txn", q.nw,
		 BATCH);
	if (cfg->provider == PROV_PG || cfg->workload != WL_QUEUE) {
		row->skipped = 1;
		snprintf(row->note, sizeof(row->note),
			 "sqlite-batched: sqlite-file and sqlite-memory queue rows only");
		return;
	}
	if (bench_sq_mkdir(row, dir, sizeof(dir)) < 0)
		return;
	if (!(q.w = calloc((size_t)q.nw, sizeof(*q.w)))) {
		row->failures = 1;
		goto out;
	}
	bench_progress(cfg, "  prefill %ld items...\n", n);
	if (bench_sq_open(row, dir, 1, &admin) != SQLITE_OK || bench_sq_prefill(admin, row, n) ||
	    setup_workers(&q, dir) < 0) {
		row->failures = 1;
		goto out;
	}

	durq_stats none;
	memset(&none, 0, sizeof(none));
	double cpu0 = bench_cpu_seconds();
	bench_syncs syncs0 = bench_syncs_now();
	uint64_t t0 = bench_now_ns();
	if (cfg->duration_s > 0)
		q.deadline_ns = t0 + (uint64_t)(cfg->duration_s * 1e9);
	for (int i = 0; i < q.nw; i++) {
		atomic_fetch_add(&q.alive, 1);
		q.w[i].started = pthread_create(&q.w[i].th, NULL, worker_main, &q.w[i]) == 0;
		if (!q.w[i].started)
			atomic_fetch_sub(&q.alive, 1);
	}
	uint64_t last = t0;
	while (atomic_load(&q.alive) > 0) {
		bench_sleep_us(50000);
		uint64_t now = bench_now_ns();
		if (now - last >= 1000000000ull) {
			long done = atomic_load(&q.done);
			last = now;
			bench_progress(cfg, "  %ld/%ld deleted, %.0f/s\n", done, n,
				       done / ((now - t0) / 1e9));
		}
	}
	for (int i = 0; i < q.nw; i++)
		if (q.w[i].started)
			pthread_join(q.w[i].th, NULL);
	bench_syncs syncs1 = bench_syncs_now();
	collect(&q, row, t0, bench_cpu_seconds() - cpu0);
	/* items deleted per flushed commit: the claims' commits are flushed too (synchronous
	 * as --sync for every commit), so at FULL about BATCH / 2 */
	bench_fill_fsyncs(row, &none, &none, &syncs0, &syncs1);
	row->flushed_ops = (uint64_t)row->items_done;
	row->ops_per_fsync = row->flushed_commits
				     ? (double)row->flushed_ops / (double)row->flushed_commits
				     : 0;
out:
	for (int i = 0; q.w && i < q.nw; i++) {
		sqlite3_finalize(q.w[i].claim);
		sqlite3_finalize(q.w[i].del);
		if (q.w[i].db)
			sqlite3_close(q.w[i].db);
		bench_tally_free(&q.w[i].t);
	}
	free(q.w);
	if (admin)
		sqlite3_close(admin);
	bench_rmdir(dir);
}
