/*
 * bench.h — shared types of durq-bench: the run configuration, one row of results, and the
 * small helpers (clock, latency samples, CPU time) every workload uses.
 *
 * Owns: the row/config structs and helper prototypes. Does not own: argument parsing
 * (main.c), the workloads (wl_queue.c, wl_inflight.c, wl_orch.c, ceiling.c, sq_baseline.c,
 * pg_baseline.c),
 * the PostgreSQL server (pg_server.c), output (report.c), the slow sync VFS (slowvfs.c).
 */
#ifndef DURQ_BENCH_H
#define DURQ_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "durq.h"

enum bench_provider { PROV_FILE = 0, PROV_MEMORY = 1, PROV_PG = 2 };
enum bench_workload { WL_QUEUE = 0, WL_QUEUE_PRODUCE = 1, WL_ORCH = 2 };
/* The baselines (no durq): the raw-SQLite ceiling; on SQLite, the sqlite3 API by hand with
 * 128 items per transaction (sqlite-batched, issue #8's bar); on PostgreSQL, libpq by hand
 * one item per transaction (pg-naive) and 128 per transaction (pg-batched). */
/* ack-fetch: durq in group mode, each worker acking its items and fetching the next ones
 * with one durq_work_ack_fetch call (async rows of the queue workload only). */
enum bench_mode { MODE_GROUP = 0, MODE_PER_OP = 1, MODE_CEILING = 2, MODE_PG_NAIVE = 3,
		  MODE_PG_BATCHED = 4, MODE_SQ_BATCHED = 5, MODE_ACK_FETCH = 6 };
#define BENCH_NMODES 7

static inline int bench_mode_is_baseline(int m)
{
	return m >= MODE_CEILING && m != MODE_ACK_FETCH;
}

typedef struct bench_pg bench_pg; /* pg_server.c: the bench's PostgreSQL server */
#define BENCH_PG_BASE_WORKERS 2   /* connections of the pg-naive and pg-batched rows */
#define BENCH_PG_BATCH 128        /* pg-batched: items claimed (and deleted) per transaction */
#define BENCH_SQ_BASE_WORKERS 2   /* sqlite-batched: threads, one sqlite3 connection each */
#define BENCH_SQ_BATCH 128        /* sqlite-batched: items claimed (and deleted) per transaction */

/* What one row runs: fixed for the row, filled by main.c. */
typedef struct bench_row_cfg {
	int provider;           /* enum bench_provider */
	int workload;           /* enum bench_workload */
	int mode;               /* enum bench_mode */
	int workers;            /* queue: W; orchestration: activity workers A */
	int dispatchers;        /* orchestration: D (0 for queue rows) */
	long items;             /* queue: items; orchestration: orchestrations (0 = unbounded) */
	double duration_s;      /* 0 = run until items are done */
	size_t payload;         /* payload bytes per item / message */
	int sync;               /* enum durq_sync */
	int activity_ms;        /* orchestration: simulated work per activity */
	int async;              /* queue workloads: 1 = asynchronous acks at a fixed in_flight */
	int orch_async;         /* orchestration: turns and activities acked asynchronously */
	int in_flight;          /* work in flight: orchestrations kept running (orchestration);
				 * items fetched and not acked, all workers (async queue rows);
				 * = workers for the synchronous queue rows (one item each) */
	const char *vfs;        /* file rows: the slow-sync VFS (xSync counted, delayed) */
	const char *mem_vfs;    /* memory rows: the counting VFS (xSync counted, no delay) */
	const char *tmpdir;     /* parent of the per-row database directory */
	bench_pg *pg;           /* postgresql rows: the server each row makes its database on */
	int pg_analyze;         /* postgresql rows: ANALYZE after the prefill (not timed) */
	int quiet;
} bench_row_cfg;

/* What one row measured. Everything a table cell or a JSON key shows. */
typedef struct bench_row {
	bench_row_cfg cfg;
	int skipped;            /* 1 = combination not applicable (note says why) */
	char note[160];
	double elapsed_s;       /* measured window */
	long items_done;        /* queue: acked cycles; orchestration: completed orchestrations */
	long activities_done;   /* orchestration only */
	double throughput;      /* cycles/s or orch/s */
	double act_throughput;  /* orchestration: act/s */
	double p50_ms, p99_ms;  /* queue: fetch start -> ack returned OK; orch: start -> completed */
	double ack_p50_ms, ack_p99_ms; /* durq_work_ack call -> returned OK (activity ack for orch) */
	double fetch_p50_ms, fetch_p99_ms; /* durq_work_fetch call that returned an item */
	double success_rate;    /* ok ops / attempted ops (fetch errors other than EMPTY, acks) */
	long failures;
	uint64_t busy_retries;  /* hidden: SQLITE_BUSY retried inside durq */
	uint64_t busy_surfaced; /* DURQ_EBUSY returned to callers */
	uint64_t transactions;
	double ops_per_txn;
	double txn_per_item;
	double cpu_s_per_1k;
	/* CPU of the whole machine per item, us (/proc/stat: every process, the database
	 * server's included; async and pg baseline rows; 0 = not measured) */
	double machine_us_per_item;
	double commit_ms_mean;
	uint64_t fsyncs;        /* xSync calls through the bench's VFS in the window */
	uint64_t db_fsyncs;     /* of which on the database file (WAL mode: checkpoints) */
	uint64_t flushed_commits; /* of which on a WAL after frames were written: commits */
	uint64_t flushed_ops;   /* ops of every kind but claims (claims commit unflushed) */
	double ops_per_fsync;   /* flushed_ops / flushed_commits */
	double e2e_p50_ms, e2e_p99_ms; /* async queue-produce: enqueue submit -> ack durable */
	int workers_run;        /* async rows: worker threads that ran (<= in_flight) */
	double rss_mib, rss_anon_mib; /* async rows: VmRSS / RssAnon at the end of the window */
	double bound;           /* orchestration theoretical bound, orch/s (0 = n/a) */
	double pct_of_bound;
	char first_error[160];
} bench_row;

/* ---- helpers (util.c) ---- */

uint64_t bench_now_ns(void);         /* CLOCK_MONOTONIC */
void bench_sleep_us(long us);
/* CPU seconds the whole machine spent (every process, /proc/stat), 0 if unknown */
double bench_machine_cpu_seconds(void);
double bench_cpu_seconds(void);      /* user + system of this process */

/* A growable array of latency samples (ns). One per thread; merged at the end. */
typedef struct bench_lat {
	uint64_t *v;
	size_t n, cap;
} bench_lat;

void bench_lat_add(bench_lat *l, uint64_t ns);
void bench_lat_merge(bench_lat *dst, const bench_lat *src);
/* Sorts in place; q in [0,1]; returns milliseconds (0 if empty). */
double bench_lat_quantile_ms(bench_lat *l, double q);
void bench_lat_free(bench_lat *l);

/* Log-linear latency histogram (32 buckets per power of two, ~3% wide), fixed size, so a
 * completion callback can record into it without allocating. Adds are atomic: any thread. */
#define BENCH_HIST_SUB_BITS 5
#define BENCH_HIST_BUCKETS (64 << BENCH_HIST_SUB_BITS)
typedef struct bench_hist {
	uint64_t count[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_add(bench_hist *h, uint64_t ns);
void bench_hist_merge(bench_hist *dst, const bench_hist *src);
/* q in [0,1]; milliseconds (middle of the bucket), 0 if empty. */
double bench_hist_quantile_ms(const bench_hist *h, double q);

/* VmRSS and RssAnon of this process in MiB (from /proc/self/status); 0 if unknown. */
void bench_rss_mib(double *rss, double *anon);

/* Record the first error message of a row (thread-safe). */
void bench_note_error(bench_row *row, const char *what, int code);
/* Same, with the message given (a completion's, not this thread's durq_error_last()). */
void bench_note_msg(bench_row *row, const char *what, int code, const char *msg);

/* Open a durq handle for a row: fresh database, commit mode, sync, VFS. dir receives what
 * bench_close removes: the row's directory (sqlite) or database name (postgresql). */
int bench_open(durq **out, const bench_row_cfg *cfg, char *dir, size_t dirlen);
/* Close the handle and remove the row's database (directory, or the postgresql database). */
void bench_close(durq *db, const bench_row_cfg *cfg, const char *dir);
/* After a row's (untimed) prefill: on postgresql with cfg->pg_analyze, ANALYZE the row's
 * database, so the planner sees the prefilled table as the baselines' does (a fresh table
 * has no statistics until autovacuum gets to it). Nothing on sqlite. */
void bench_after_prefill(const bench_row_cfg *cfg, bench_row *row, const char *dir);
/* Fill row's stats columns from the difference of two snapshots; and ops per flushed
 * commit from the xSync calls counted in the same interval. */
void bench_fill_stats(bench_row *row, const durq_stats *before, const durq_stats *after,
		      double cpu_s, long items);
typedef struct bench_syncs {
	long all, db, commits; /* bench_slowvfs_syncs, _db_syncs, _commit_syncs */
} bench_syncs;
bench_syncs bench_syncs_now(void);
void bench_fill_fsyncs(bench_row *row, const durq_stats *before, const durq_stats *after,
		       const bench_syncs *s0, const bench_syncs *s1);

/* Fresh per-row directory under cfg->tmpdir (or /dev/shm for the memory ceiling). */
int bench_mkdir(char *dir, size_t len, const char *parent);
void bench_rmdir(const char *dir);

/* ---- workloads ---- */
void bench_run_queue(bench_row *row);       /* wl_queue.c: queue and queue-produce */
void bench_run_inflight(bench_row *row);    /* wl_inflight.c: the same, asynchronous acks */
void bench_run_orch(bench_row *row);        /* wl_orch.c */
/* What one thread of a hand-written baseline (pg-naive, pg-batched, sqlite-batched) counts;
 * util.c. */
typedef struct bench_tally {
	long done, failures;
	uint64_t txns, txn_ns;
	bench_lat lat, acklat, fetchlat; /* claim start -> delete committed; the delete; the claim */
} bench_tally;
/* k items claimed from t0 (claim committed at t1) and deleted (committed at t2). */
void bench_tally_items(bench_tally *t, int k, uint64_t t0, uint64_t t1, uint64_t t2);
void bench_tally_add(bench_tally *sum, const bench_tally *t);
/* The row's counts, rates and latencies from the threads' sum over elapsed_ns; frees sum. */
void bench_tally_fill(bench_row *row, bench_tally *sum, int threads, uint64_t elapsed_ns,
		      double cpu);
void bench_tally_free(bench_tally *t);

void bench_run_ceiling(bench_row *row);     /* ceiling.c */
void bench_run_sq_baseline(bench_row *row); /* sq_baseline.c: sqlite-batched */
void bench_run_pg_baseline(bench_row *row); /* pg_baseline.c: pg-naive, pg-batched */

/* ---- the raw-SQLite baselines' shared parts (ceiling.c; used by sq_baseline.c) ---- */
struct sqlite3;
/* The queue table of the raw-SQLite baselines: item rows with a lease token, a partial
 * index on ready rows. */
extern const char *const bench_sq_schema;
/* "PRAGMA synchronous=FULL|NORMAL|OFF" for an enum durq_sync. */
const char *bench_sq_sync_pragma(int sync);
/* The row's first error (thread-safe): "<mode>: <what>: <msg>". */
void bench_sq_note(bench_row *row, const char *what, const char *msg);
/* sqlite3_exec; on failure the first error goes to row->first_error (bench_sq_note).
 * Returns the SQLite code. */
int bench_sq_exec(struct sqlite3 *db, const char *sql, bench_row *row);
/* A fresh directory for the row's database: under /dev/shm for sqlite-memory (a WAL file
 * on tmpfs; cfg->tmpdir if /dev/shm is not writable), else under cfg->tmpdir. -1 = skipped
 * (the note says why). */
int bench_sq_mkdir(bench_row *row, char *dir, size_t len);
/* Open dir/bench.db through the row's VFS (file rows: cfg->vfs, the slow-sync one; memory
 * rows: cfg->mem_vfs, counting only) with the seeds' PRAGMAs: journal_mode=WAL,
 * synchronous as --sync, temp_store=MEMORY, busy_timeout=5000. create = 1: also the
 * schema. On failure *db may be set (close it) and first_error says why. */
int bench_sq_open(bench_row *row, const char *dir, int create, struct sqlite3 **db);
/* Insert n ready items (payload of cfg->payload zero bytes), 1,000 per transaction. */
int bench_sq_prefill(struct sqlite3 *db, bench_row *row, long n);
/* Wall-clock milliseconds (the schema's visible_at / locked_until). */
int64_t bench_sq_wall_ms(void);
/* A random 16-byte lease token from a xorshift state. */
void bench_sq_token(uint64_t *seed, unsigned char tok[16]);

/* ---- PostgreSQL server and per-row databases (pg_server.c) ---- */
/* 1 if this durq-bench was built with libpq (DURQ_WITH_POSTGRES=ON). */
int bench_pg_available(void);
/* url = NULL: start a throwaway server with scripts/pg-server.sh (DURQ_PG_SERVER_SCRIPT
 * overrides the path) and stop it in bench_pg_stop, or when this process ends in any way
 * (a watchdog process); else use the server at url (its user must be allowed CREATE
 * DATABASE). Prints the reason on stderr and returns -1 on failure. */
int bench_pg_start(bench_pg **out, const char *url, int quiet);
void bench_pg_stop(bench_pg *pg);
/* One line saying which server (no password), e.g. for the table's heading. */
void bench_pg_describe(const bench_pg *pg, char *buf, size_t len);
/* A fresh database durq_bench_<pid>_<n>: name and a URL naming it. -1 (message in err). */
int bench_pg_db_create(bench_pg *pg, char *name, size_t nlen, char *url, size_t ulen,
		       char *err, size_t errlen);
/* DROP DATABASE name WITH (FORCE); complains on stderr if it fails. */
void bench_pg_db_drop(bench_pg *pg, const char *name);
/* ANALYZE in database name, on a connection of its own. -1 (message in err). */
int bench_pg_db_analyze(bench_pg *pg, const char *name, char *err, size_t errlen);

/* ---- slow sync VFS (slowvfs.c) ---- */
#include "slowvfs.h"

/* ---- progress ---- */
/* Prints a progress line to stderr unless quiet; called by the row's main thread. */
void bench_progress(const bench_row_cfg *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- output (report.c) ---- */
const char *bench_provider_name(int p);
const char *bench_workload_name(int w);
const char *bench_mode_name(int m);
void bench_print_header(void);
void bench_print_row(const bench_row *row);
void bench_print_inflight_header(void);
void bench_print_inflight_row(const bench_row *row);
int bench_write_json(const char *path, const bench_row *rows, size_t n, const char *cmdline);
int bench_write_plot(const char *path, const bench_row *rows, size_t n);

#endif
