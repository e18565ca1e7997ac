/*
 * util.c — helpers shared by the workloads: monotonic clock, sleeps, CPU time, latency
 * samples, histograms and quantiles, resident memory, opening a fresh durq handle per row
 * (a fresh directory, or a fresh database on the bench's PostgreSQL server),
 * and turning two durq_stats snapshots (and the xSync count) into the row's stats columns.
 *
 * Owns: nothing global except the error-note lock. Does not own: workloads or output.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "durq/provider.h" /* durq_error_set */

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

double bench_machine_cpu_seconds(void)
{
	unsigned long long user, nice, sys, idle, iowait, irq, softirq;
	FILE *f = fopen("/proc/stat", "r");
	double s = 0;
	if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
			&iowait, &irq, &softirq) == 7) {
		long hz = sysconf(_SC_CLK_TCK);
		s = (double)(user + nice + sys + irq + softirq) / (double)(hz > 0 ? hz : 100);
	}
	if (f)
		fclose(f);
	return s;
}

double bench_cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

void bench_lat_add(bench_lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return; /* drop the sample rather than abort the run */
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ns;
}

void bench_lat_merge(bench_lat *dst, const bench_lat *src)
{
	for (size_t i = 0; i < src->n; i++)
		bench_lat_add(dst, src->v[i]);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

double bench_lat_quantile_ms(bench_lat *l, double q)
{
	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
	size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
	if (i >= l->n)
		i = l->n - 1;
	return (double)l->v[i] / 1e6;
}

void bench_lat_free(bench_lat *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

void bench_tally_items(bench_tally *t, int k, uint64_t t0, uint64_t t1, uint64_t t2)
{
	for (int i = 0; i < k; i++) {
		bench_lat_add(&t->lat, t2 - t0);
		bench_lat_add(&t->acklat, t2 - t1);
		bench_lat_add(&t->fetchlat, t1 - t0);
	}
}

void bench_tally_add(bench_tally *sum, const bench_tally *t)
{
	sum->done += t->done;
	sum->failures += t->failures;
	sum->txns += t->txns;
	sum->txn_ns += t->txn_ns;
	bench_lat_merge(&sum->lat, &t->lat);
	bench_lat_merge(&sum->acklat, &t->acklat);
	bench_lat_merge(&sum->fetchlat, &t->fetchlat);
}

void bench_tally_fill(bench_row *row, bench_tally *sum, int threads, uint64_t elapsed_ns,
		      double cpu)
{
	row->items_done += sum->done;
	row->failures += sum->failures;
	row->elapsed_s = (double)elapsed_ns / 1e9;
	row->throughput = row->elapsed_s > 0 ? (double)row->items_done / row->elapsed_s : 0;
	row->success_rate = row->items_done + row->failures > 0
				    ? (double)row->items_done / (double)(row->items_done + row->failures)
				    : 0;
	row->p50_ms = bench_lat_quantile_ms(&sum->lat, 0.50);
	row->p99_ms = bench_lat_quantile_ms(&sum->lat, 0.99);
	row->ack_p50_ms = bench_lat_quantile_ms(&sum->acklat, 0.50);
	row->ack_p99_ms = bench_lat_quantile_ms(&sum->acklat, 0.99);
	row->fetch_p50_ms = bench_lat_quantile_ms(&sum->fetchlat, 0.50);
	row->fetch_p99_ms = bench_lat_quantile_ms(&sum->fetchlat, 0.99);
	row->transactions = sum->txns;
	/* ops = a claim and a delete per item, as the ceiling counts them */
	row->ops_per_txn = sum->txns ? 2.0 * (double)row->items_done / (double)sum->txns : 0;
	row->txn_per_item = row->items_done ? (double)sum->txns / (double)row->items_done : 0;
	row->commit_ms_mean = sum->txns ? (double)sum->txn_ns / (double)sum->txns / 1e6 : 0;
	row->cpu_s_per_1k = row->items_done ? cpu * 1000.0 / (double)row->items_done : 0;
	row->workers_run = threads;
	bench_tally_free(sum);
}

void bench_tally_free(bench_tally *t)
{
	bench_lat_free(&t->lat);
	bench_lat_free(&t->acklat);
	bench_lat_free(&t->fetchlat);
}

static unsigned hist_index(uint64_t v)
{
	const unsigned sub = 1u << BENCH_HIST_SUB_BITS;
	if (v < sub)
		return (unsigned)v;
	int msb = 63 - __builtin_clzll(v);
	int shift = msb - BENCH_HIST_SUB_BITS;
	return (unsigned)(shift + 1) * sub + (unsigned)((v >> shift) & (sub - 1));
}

/* Middle of bucket i in ns. */
static double hist_value(unsigned i)
{
	const unsigned sub = 1u << BENCH_HIST_SUB_BITS;
	if (i < sub)
		return (double)i;
	int shift = (int)(i / sub) - 1;
	double low = (double)((uint64_t)(sub + i % sub) << shift);
	return low + (double)((uint64_t)1 << shift) / 2.0;
}

void bench_hist_add(bench_hist *h, uint64_t ns)
{
	ck_pr_inc_64(&h->count[hist_index(ns)]);
}

void bench_hist_merge(bench_hist *dst, const bench_hist *src)
{
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->count[i] += ck_pr_load_64((uint64_t *)&src->count[i]);
}

double bench_hist_quantile_ms(const bench_hist *h, double q)
{
	uint64_t total = 0, seen = 0;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		total += h->count[i];
	if (total == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)total + 0.5);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank)
			return hist_value(i) / 1e6;
	}
	return hist_value(BENCH_HIST_BUCKETS - 1) / 1e6;
}

void bench_rss_mib(double *rss, double *anon)
{
	char line[256];
	long kib;
	FILE *f = fopen("/proc/self/status", "r");
	*rss = *anon = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			*rss = kib / 1024.0;
		else if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			*anon = kib / 1024.0;
	}
	fclose(f);
}

static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;

void bench_note_msg(bench_row *row, const char *what, int code, const char *msg)
{
	pthread_mutex_lock(&note_lock);
	if (!row->first_error[0])
		snprintf(row->first_error, sizeof(row->first_error), "%s: %s %s", what,
			 durq_error_name(code), msg ? msg : "");
	pthread_mutex_unlock(&note_lock);
}

void bench_note_error(bench_row *row, const char *what, int code)
{
	bench_note_msg(row, what, code, durq_error_last());
}

int bench_mkdir(char *dir, size_t len, const char *parent)
{
	snprintf(dir, len, "%s/durq-bench-XXXXXX", parent);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "durq-bench: mkdtemp %s: %s\n", dir, strerror(errno));
		dir[0] = 0;
		return -1;
	}
	return 0;
}

void bench_rmdir(const char *dir)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char path[4200];
	if (!dir || !dir[0])
		return;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s/bench.db%s", dir, suffix[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void bench_log(void *ctx, int level, const char *tag, const char *message)
{
	(void)ctx;
	fprintf(stderr, "durq-bench: durq log level %d [%s] %s\n", level, tag, message);
}

int bench_open(durq **out, const bench_row_cfg *cfg, char *dir, size_t dirlen)
{
	char url[4200];
	durq_options o;
	int rc = durq_options_init(&o, DURQ_OPTIONS_VERSION);
	if (rc < 0)
		return rc;
	o.commit_mode = cfg->mode == MODE_PER_OP ? DURQ_COMMIT_PER_OP : DURQ_COMMIT_GROUP;
	o.synchronous = cfg->sync;
	o.log = bench_log;
	o.log_level = DURQ_LOG_ERROR;
	dir[0] = 0;
	if (cfg->provider == PROV_PG) {
		char err[512];
		if (!cfg->pg || bench_pg_db_create(cfg->pg, dir, dirlen, url, sizeof(url), err,
						   sizeof(err)) < 0) {
			durq_error_set(DURQ_EIO, "create database: %s",
				       cfg->pg ? err : "no PostgreSQL server");
			return DURQ_EIO;
		}
	} else if (cfg->provider == PROV_FILE) {
		if (bench_mkdir(dir, dirlen, cfg->tmpdir) < 0)
			return DURQ_EIO;
		snprintf(url, sizeof(url), "sqlite:%s/bench.db", dir);
		/* The slow-sync VFS models a slower disk; the in-memory provider has none. */
		o.sqlite_vfs = cfg->vfs;
	} else {
		snprintf(url, sizeof(url), "sqlite::memory:");
		o.sqlite_vfs = cfg->mem_vfs; /* counts xSync, never delays it */
	}
	rc = durq_open(out, url, &o);
	if (rc < 0) {
		fprintf(stderr, "durq-bench: durq_open(%s): %s %s\n",
			cfg->provider == PROV_PG ? "postgresql://..." : url, durq_error_name(rc),
			durq_error_last());
		if (cfg->provider == PROV_PG)
			bench_pg_db_drop(cfg->pg, dir);
		else
			bench_rmdir(dir);
		dir[0] = 0;
	}
	return rc;
}

void bench_close(durq *db, const bench_row_cfg *cfg, const char *dir)
{
	if (db) {
		int rc = durq_close(db);
		if (rc < 0)
			fprintf(stderr, "durq-bench: durq_close: %s %s\n", durq_error_name(rc),
				durq_error_last());
		durq_free(db);
	}
	if (cfg->provider == PROV_PG)
		bench_pg_db_drop(cfg->pg, dir);
	else
		bench_rmdir(dir);
}

void bench_after_prefill(const bench_row_cfg *cfg, bench_row *row, const char *dir)
{
	char err[96]; /* first_error keeps 160 bytes anyway */
	if (cfg->provider != PROV_PG || !cfg->pg_analyze)
		return;
	bench_progress(cfg, "  ANALYZE...\n");
	if (bench_pg_db_analyze(cfg->pg, dir, err, sizeof(err)) < 0)
		bench_note_msg(row, "ANALYZE after the prefill", DURQ_EIO, err);
}

void bench_fill_stats(bench_row *row, const durq_stats *b, const durq_stats *a, double cpu_s,
		      long items)
{
	uint64_t txn = a->transactions - b->transactions;
	uint64_t ops = a->txn_ops - b->txn_ops;
	row->transactions = txn;
	row->busy_retries = a->busy_retries - b->busy_retries;
	row->busy_surfaced = a->busy_surfaced - b->busy_surfaced;
	row->ops_per_txn = txn ? (double)ops / (double)txn : 0;
	row->txn_per_item = items > 0 ? (double)txn / (double)items : 0;
	row->commit_ms_mean = txn ? (double)(a->commit_ns_total - b->commit_ns_total) / txn / 1e6 : 0;
	row->cpu_s_per_1k = items > 0 ? cpu_s * 1000.0 / (double)items : 0;
}

bench_syncs bench_syncs_now(void)
{
	bench_syncs s = {bench_slowvfs_syncs(), bench_slowvfs_db_syncs(),
			 bench_slowvfs_commit_syncs()};
	return s;
}

static uint64_t delta(long a, long b)
{
	return b > a ? (uint64_t)(b - a) : 0;
}

void bench_fill_fsyncs(bench_row *row, const durq_stats *b, const durq_stats *a,
		       const bench_syncs *s0, const bench_syncs *s1)
{
	uint64_t ops = 0;
	for (int k = 0; k < DURQ_OP__COUNT; k++)
		if (k != DURQ_OP_WORK_CLAIM && k != DURQ_OP_ORCH_CLAIM)
			ops += a->ops[k] - b->ops[k];
	row->flushed_ops = ops;
	row->fsyncs = delta(s0->all, s1->all);
	row->db_fsyncs = delta(s0->db, s1->db);
	row->flushed_commits = delta(s0->commits, s1->commits);
	row->ops_per_fsync = row->flushed_commits ? (double)ops / (double)row->flushed_commits : 0;
}

void bench_progress(const bench_row_cfg *cfg, const char *fmt, ...)
{
	va_list ap;
	if (cfg->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}
