/*
 * pg_baseline.c — what PostgreSQL does for a queue without durq: libpq by hand, the two usual
 * ways, on the same server as the durq postgresql rows.
 *
 *  pg-naive    per worker one connection; per item one transaction: BEGIN; SELECT id, payload
 *              ... ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED; DELETE FROM q WHERE id = $1;
 *              COMMIT. The row lock is the lease; 1 item in flight per worker.
 *  pg-batched  hand-written batching: per worker one connection; claim 128 items in one
 *              transaction (UPDATE q SET lease_until = now() + 5 min WHERE id = ANY(ARRAY(
 *              SELECT id ... ORDER BY id LIMIT 128 FOR UPDATE SKIP LOCKED)) RETURNING id,
 *              payload), then delete them in one transaction (DELETE ... WHERE id = ANY($1));
 *              128 items in flight per worker.
 *
 * Own schema (table q: id bigserial, payload bytea, visible_at, lease_until; a partial
 * "ready" index on id WHERE lease_until IS NULL), in a fresh database per row. Prepared
 * statements, binary results, synchronous_commit on (off only with --sync OFF). Prefill N
 * items in one INSERT ... SELECT FROM generate_series and ANALYZE (unless --pg-no-analyze;
 * the durq rows get the same; not timed), then the workers run
 * until the queue is drained or --duration passes (each finishes the transaction it is in).
 * Throughput = items deleted / (start -> last worker left). Latency of an item = start of
 * the transaction that claimed it -> COMMIT of its delete returned; ack latency = start of
 * its delete -> that COMMIT returned; fetch latency = its claim.
 *
 * Owns: its connections, threads and database. Does not own: the server (pg_server.c).
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#ifdef DURQ_BENCH_PG

#include <endian.h>
#include <pthread.h>
#include <stdlib.h>

#include <libpq-fe.h>

#define BATCH BENCH_PG_BATCH

static const char *const schema =
	"CREATE TABLE q("
	" id bigserial PRIMARY KEY,"
	" payload bytea NOT NULL,"
	" visible_at timestamptz NOT NULL DEFAULT now(),"
	" lease_until timestamptz);"
	"CREATE INDEX q_ready ON q(id) WHERE lease_until IS NULL";

static const char *const sql_prefill =
	"INSERT INTO q(payload) SELECT $1::bytea FROM generate_series(1, $2::int)";
static const char *const sql_naive_claim =
	"SELECT id, payload FROM q WHERE lease_until IS NULL AND visible_at <= now()"
	" ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";
static const char *const sql_naive_ack = "DELETE FROM q WHERE id = $1::bigint";
static const char *const sql_batch_claim =
	"UPDATE q SET lease_until = now() + interval '5 minutes'"
	" WHERE id = ANY(ARRAY(SELECT id FROM q WHERE lease_until IS NULL AND visible_at <= now()"
	" ORDER BY id LIMIT $1::int FOR UPDATE SKIP LOCKED)) RETURNING id, payload";
static const char *const sql_batch_ack = "DELETE FROM q WHERE id = ANY($1::bigint[])";

struct pctx;

typedef struct pworker {
	struct pctx *q;
	PGconn *c;
	pthread_t th;
	int started;
	bench_tally t;
} pworker;

typedef struct pctx {
	bench_row *row;
	int batched;
	uint64_t deadline_ns; /* 0 = until drained */
	atomic_long done;
	atomic_int alive;
	_Atomic uint64_t last_exit_ns;
	pworker *w;
	int nw;
} pctx;

/* ---- libpq helpers ---------------------------------------------------------------- */

static void note_pg(bench_row *row, const char *what, PGconn *c)
{
	bench_note_msg(row, what, DURQ_EIO, PQerrorMessage(c));
}

/* A command that returns no rows; 0 = OK. */
static int cmd(PGconn *c, const char *sql, bench_row *row)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		note_pg(row, sql, c);
	PQclear(r);
	return ok ? 0 : -1;
}

static int prepare(PGconn *c, const char *name, const char *sql, bench_row *row)
{
	PGresult *r = PQprepare(c, name, sql, 0, NULL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		note_pg(row, name, c);
	PQclear(r);
	return ok ? 0 : -1;
}

static PGconn *connect_row(const char *url, const bench_row_cfg *cfg, bench_row *row)
{
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		note_pg(row, "connect", c);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, NULL, NULL);
	if (cmd(c, cfg->sync == DURQ_SYNC_OFF ? "SET synchronous_commit = off"
					      : "SET synchronous_commit = on", row) < 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static int64_t bin_int8(const PGresult *r, int row, int col)
{
	uint64_t v = 0;
	if (PQgetlength(r, row, col) == 8)
		memcpy(&v, PQgetvalue(r, row, col), 8);
	return (int64_t)be64toh(v);
}

/* ---- workers ---------------------------------------------------------------------- */

static int past_deadline(const pctx *q)
{
	return q->deadline_ns && bench_now_ns() >= q->deadline_ns;
}

/* One item: 1 = done, 0 = queue empty, -1 = failed (the transaction was rolled back). */
static int naive_one(pworker *w)
{
	bench_row *row = w->q->row;
	uint64_t t0 = bench_now_ns();
	char idbuf[24];
	const char *params[1] = {idbuf};
	if (cmd(w->c, "BEGIN", row) < 0)
		return -1;
	PGresult *r = PQexecPrepared(w->c, "claim", 0, NULL, NULL, NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		note_pg(row, "pg-naive claim", w->c);
		goto fail;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		cmd(w->c, "ROLLBACK", row);
		return 0;
	}
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)bin_int8(r, 0, 0));
	PQclear(r);
	uint64_t t1 = bench_now_ns();
	r = PQexecPrepared(w->c, "ack", 1, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(r), "1") != 0) {
		note_pg(row, "pg-naive delete", w->c);
		goto fail;
	}
	PQclear(r);
	if (cmd(w->c, "COMMIT", row) < 0)
		return -1;
	uint64_t t2 = bench_now_ns();
	bench_tally_items(&w->t, 1, t0, t1, t2);
	w->t.txns++;
	w->t.txn_ns += t2 - t0;
	return 1;
fail:
	PQclear(r);
	PQclear(PQexec(w->c, "ROLLBACK"));
	return -1;
}

/* One batch: items deleted (> 0), 0 = queue empty, -1 = failed. */
static int batched_one(pworker *w, char *ids, size_t idlen)
{
	bench_row *row = w->q->row;
	char limit[16];
	const char *p1[1] = {limit};
	snprintf(limit, sizeof(limit), "%d", BATCH);
	uint64_t t0 = bench_now_ns();
	PGresult *r = PQexecPrepared(w->c, "claim", 1, p1, NULL, NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		note_pg(row, "pg-batched claim", w->c);
		PQclear(r);
		return -1;
	}
	int k = PQntuples(r);
	size_t n = 0;
	ids[n++] = '{';
	for (int i = 0; i < k; i++)
		n += (size_t)snprintf(ids + n, idlen - n, "%s%lld", i ? "," : "",
				      (long long)bin_int8(r, i, 0));
	ids[n++] = '}';
	ids[n] = 0;
	PQclear(r);
	if (k == 0)
		return 0;
	uint64_t t1 = bench_now_ns();
	const char *p2[1] = {ids};
	r = PQexecPrepared(w->c, "ack", 1, p2, NULL, NULL, 0);
	char expect[16];
	snprintf(expect, sizeof(expect), "%d", k);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), expect) == 0;
	if (!ok)
		note_pg(row, "pg-batched delete", w->c);
	PQclear(r);
	if (!ok)
		return -1;
	uint64_t t2 = bench_now_ns();
	bench_tally_items(&w->t, k, t0, t1, t2);
	w->t.txns += 2;
	w->t.txn_ns += t2 - t0;
	return k;
}

static void *worker_main(void *arg)
{
	pworker *w = arg;
	pctx *q = w->q;
	char ids[BATCH * 21 + 4];
	while (!past_deadline(q)) {
		int k = q->batched ? batched_one(w, ids, sizeof(ids)) : naive_one(w);
		if (k == 0)
			break; /* drained */
		if (k < 0) {
			w->t.failures++;
			if (PQstatus(w->c) != CONNECTION_OK)
				break;
			continue;
		}
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

static int prefill(PGconn *c, bench_row *row, long n)
{
	size_t plen = row->cfg.payload;
	unsigned char *payload = calloc(1, plen ? plen : 1);
	char count[24];
	const char *params[2] = {(const char *)payload, count};
	int lens[2] = {(int)plen, 0}, fmts[2] = {1, 0};
	if (!payload)
		return -1;
	memset(payload, 'x', plen);
	snprintf(count, sizeof(count), "%ld", n);
	int rc = cmd(c, schema, row);
	if (rc == 0) {
		PGresult *r = PQexecParams(c, sql_prefill, 2, NULL, params, lens, fmts, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			note_pg(row, "prefill", c);
			rc = -1;
		}
		PQclear(r);
	}
	if (rc == 0 && row->cfg.pg_analyze)
		rc = cmd(c, "ANALYZE q", row);
	free(payload);
	return rc;
}

static int setup_workers(pctx *q, const char *url)
{
	const bench_row_cfg *cfg = &q->row->cfg;
	for (int i = 0; i < q->nw; i++) {
		pworker *w = &q->w[i];
		w->q = q;
		if (!(w->c = connect_row(url, cfg, q->row)))
			return -1;
		if (prepare(w->c, "claim", q->batched ? sql_batch_claim : sql_naive_claim, q->row) ||
		    prepare(w->c, "ack", q->batched ? sql_batch_ack : sql_naive_ack, q->row))
			return -1;
	}
	return 0;
}

static void collect(pctx *q, bench_row *row, uint64_t t0, double cpu)
{
	bench_tally sum = {0};
	for (int i = 0; i < q->nw; i++)
		bench_tally_add(&sum, &q->w[i].t);
	uint64_t t1 = atomic_load(&q->last_exit_ns);
	bench_tally_fill(row, &sum, q->nw, t1 > t0 ? t1 - t0 : 0, cpu);
}

void bench_run_pg_baseline(bench_row *row)
{
	const bench_row_cfg *cfg = &row->cfg;
	char db[128] = "", url[1200], err[512];
	long n = cfg->items > 0 ? cfg->items : 20000;
	PGconn *admin = NULL;
	pctx q;

	memset(&q, 0, sizeof(q));
	q.row = row;
	q.batched = cfg->mode == MODE_PG_BATCHED;
	q.nw = cfg->workers;
	if (q.batched)
		snprintf(row->note, sizeof(row->note),
			 "libpq direct, %d connections, claim %d/txn + delete %d/txn", q.nw, BATCH,
			 BATCH);
	else
		snprintf(row->note, sizeof(row->note),
			 "libpq direct, %d connections, 1 item/txn (select + delete)", q.nw);
	if (cfg->provider != PROV_PG || cfg->workload != WL_QUEUE || !cfg->pg) {
		row->skipped = 1;
		snprintf(row->note, sizeof(row->note), "pg baselines: postgresql queue rows only");
		return;
	}
	if (bench_pg_db_create(cfg->pg, db, sizeof(db), url, sizeof(url), err, sizeof(err)) < 0) {
		row->skipped = 1;
		snprintf(row->note, sizeof(row->note), "create database: %.140s", err);
		return;
	}
	if (!(q.w = calloc((size_t)q.nw, sizeof(*q.w))))
		goto out;
	bench_progress(cfg, "  prefill %ld items...\n", n);
	if (!(admin = connect_row(url, cfg, row)) || prefill(admin, row, n) < 0 ||
	    setup_workers(&q, url) < 0) {
		row->failures = 1;
		goto out;
	}

	double cpu0 = bench_cpu_seconds(), mcpu0 = bench_machine_cpu_seconds();
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
	double mcpu = bench_machine_cpu_seconds() - mcpu0;
	collect(&q, row, t0, bench_cpu_seconds() - cpu0);
	if (row->items_done > 0)
		row->machine_us_per_item = mcpu * 1e6 / (double)row->items_done;
out:
	for (int i = 0; q.w && i < q.nw; i++) {
		PQfinish(q.w[i].c);
		bench_tally_free(&q.w[i].t);
	}
	free(q.w);
	PQfinish(admin);
	bench_pg_db_drop(cfg->pg, db);
}

#else /* built without libpq */

void bench_run_pg_baseline(bench_row *row)
{
	row->skipped = 1;
	snprintf(row->note, sizeof(row->note), "no PostgreSQL support in this build");
}

#endif
