/*
 * wl_queue.c — the queue workloads.
 *
 *  queue          prefill N items (durq_work_enqueue, batches of 1,000, not timed), then W
 *                 workers loop durq_work_fetch(max 1, lease 30 s) -> durq_work_ack until the
 *                 queue is drained (or --duration passes). A cycle counts only once its ack
 *                 returned DURQ_OK. Latency = fetch start -> ack returned OK.
 *  queue-produce  one producer thread enqueues batches of 16 while W workers consume; the
 *                 producer keeps at most 32*W items outstanding so latency measures the
 *                 pipeline, not an ever-growing backlog. Latency = enqueue call start -> ack
 *                 returned OK (the timestamp travels in the payload).
 *
 * Owns: the worker/producer threads of one row. Does not own: the handle (util.c).
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFILL_BATCH 1000
#define PRODUCE_BATCH 16
#define LEASE_MS 30000

typedef struct qctx {
	durq *db;
	bench_row *row;
	long target;          /* items to process */
	int produce;          /* 1 = queue-produce */
	uint64_t deadline_ns; /* 0 = none */
	atomic_int stop;
	atomic_long acked;
	atomic_long failures;
	atomic_long produced;
	atomic_int producer_done;
	atomic_int alive;     /* worker threads still running */
	_Atomic uint64_t last_exit_ns; /* when the last worker left: end of the window */
	pthread_mutex_t lat_lock;
	bench_lat lat, acklat, fetchlat;
} qctx;

static void fill_payload(unsigned char *p, size_t len, uint64_t stamp, long seq)
{
	memset(p, (int)(seq & 0x7f), len);
	if (len >= sizeof(stamp))
		memcpy(p, &stamp, sizeof(stamp));
}

/* Enqueue n items in one call; the payload carries the enqueue start time. */
static int enqueue_batch(qctx *q, size_t n, long seq0)
{
	size_t plen = q->row->cfg.payload;
	durq_work items[PREFILL_BATCH];
	unsigned char *buf = malloc(plen ? plen * n : 1);
	uint64_t stamp = bench_now_ns();
	int rc;
	if (!buf)
		return DURQ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memset(&items[i], 0, sizeof(items[i]));
		fill_payload(buf + i * plen, plen, stamp, seq0 + (long)i);
		items[i].payload = buf + i * plen;
		items[i].payload_len = plen;
	}
	rc = durq_work_enqueue(q->db, items, n);
	free(buf);
	return rc;
}

static int should_stop(qctx *q)
{
	if (atomic_load(&q->stop))
		return 1;
	if (q->deadline_ns && bench_now_ns() >= q->deadline_ns) {
		atomic_store(&q->stop, 1);
		return 1;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	qctx *q = arg;
	bench_lat lat = {0}, acklat = {0}, fetchlat = {0};
	while (!should_stop(q)) {
		durq_work_item *items = NULL;
		size_t n = 0;
		uint64_t t0 = bench_now_ns();
		int rc = durq_work_fetch(q->db, &items, &n, NULL, 1, LEASE_MS, q->produce ? 20 : 5);
		if (rc == DURQ_EMPTY || (rc == DURQ_OK && n == 0)) {
			durq_work_items_free(items, n);
			if (!q->produce)
				break; /* prefilled: empty means drained (the rest is leased) */
			if (atomic_load(&q->producer_done) &&
			    atomic_load(&q->acked) + atomic_load(&q->failures) >=
				    atomic_load(&q->produced))
				break;
			continue;
		}
		if (rc < 0) {
			atomic_fetch_add(&q->failures, 1);
			bench_note_error(q->row, "durq_work_fetch", rc);
			if (rc == DURQ_ECLOSED)
				break;
			bench_sleep_us(1000);
			continue;
		}
		bench_lat_add(&fetchlat, bench_now_ns() - t0);
		for (size_t i = 0; i < n; i++) {
			uint64_t t1 = bench_now_ns();
			int arc = durq_work_ack(q->db, items[i].id, &items[i].token, NULL);
			uint64_t t2 = bench_now_ns();
			if (arc == DURQ_OK) {
				uint64_t start = t0;
				if (q->produce && items[i].payload_len >= sizeof(start))
					memcpy(&start, items[i].payload, sizeof(start));
				atomic_fetch_add(&q->acked, 1);
				bench_lat_add(&lat, t2 - start);
				bench_lat_add(&acklat, t2 - t1);
			} else {
				atomic_fetch_add(&q->failures, 1);
				bench_note_error(q->row, "durq_work_ack", arc);
			}
		}
		durq_work_items_free(items, n);
	}
	pthread_mutex_lock(&q->lat_lock);
	bench_lat_merge(&q->lat, &lat);
	bench_lat_merge(&q->acklat, &acklat);
	bench_lat_merge(&q->fetchlat, &fetchlat);
	pthread_mutex_unlock(&q->lat_lock);
	bench_lat_free(&lat);
	bench_lat_free(&acklat);
	bench_lat_free(&fetchlat);
	uint64_t now = bench_now_ns(), prev = atomic_load(&q->last_exit_ns);
	while (prev < now && !atomic_compare_exchange_weak(&q->last_exit_ns, &prev, now))
		;
	atomic_fetch_sub(&q->alive, 1);
	return NULL;
}

static void *producer_main(void *arg)
{
	qctx *q = arg;
	long cap = 32L * q->row->cfg.workers;
	while (!should_stop(q)) {
		long produced = atomic_load(&q->produced);
		if (q->target > 0 && produced >= q->target)
			break;
		if (produced - atomic_load(&q->acked) - atomic_load(&q->failures) > cap) {
			bench_sleep_us(100);
			continue;
		}
		size_t n = PRODUCE_BATCH;
		if (q->target > 0 && produced + (long)n > q->target)
			n = (size_t)(q->target - produced);
		int rc = enqueue_batch(q, n, produced);
		if (rc == DURQ_OK) {
			atomic_fetch_add(&q->produced, (long)n);
		} else {
			atomic_fetch_add(&q->failures, 1);
			bench_note_error(q->row, "durq_work_enqueue", rc);
			if (rc == DURQ_ECLOSED)
				break;
		}
	}
	atomic_store(&q->producer_done, 1);
	return NULL;
}

static int prefill(qctx *q)
{
	for (long done = 0; done < q->target;) {
		size_t n = PREFILL_BATCH;
		if (done + (long)n > q->target)
			n = (size_t)(q->target - done);
		int rc = enqueue_batch(q, n, done);
		if (rc < 0) {
			bench_note_error(q->row, "prefill durq_work_enqueue", rc);
			return rc;
		}
		done += (long)n;
	}
	return DURQ_OK;
}

void bench_run_queue(bench_row *row)
{
	const bench_row_cfg *cfg = &row->cfg;
	char dir[4096];
	durq *db = NULL;
	qctx q;
	durq_stats before, after;
	pthread_t *th = calloc((size_t)cfg->workers + 1, sizeof(*th));
	int nth = 0;

	memset(&q, 0, sizeof(q));
	pthread_mutex_init(&q.lat_lock, NULL);
	q.row = row;
	q.produce = cfg->workload == WL_QUEUE_PRODUCE;
	q.target = cfg->items;
	if (!th || bench_open(&db, cfg, dir, sizeof(dir)) < 0) {
		snprintf(row->note, sizeof(row->note), "open failed: %s", durq_error_last());
		row->skipped = 1;
		free(th);
		return;
	}
	q.db = db;
	if (!q.produce && q.target <= 0)
		q.target = 10000;
	if (!q.produce) {
		bench_progress(cfg, "  prefill %ld items...\n", q.target);
		if (prefill(&q) < 0) {
			row->failures = 1;
			goto out;
		}
		bench_after_prefill(cfg, row, dir);
	}
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	durq_stats_get(db, &before);
	bench_syncs syncs0 = bench_syncs_now();
	double cpu0 = bench_cpu_seconds();
	uint64_t t0 = bench_now_ns();
	if (cfg->duration_s > 0)
		q.deadline_ns = t0 + (uint64_t)(cfg->duration_s * 1e9);

	if (q.produce && pthread_create(&th[nth], NULL, producer_main, &q) == 0)
		nth++;
	else if (q.produce)
		atomic_store(&q.producer_done, 1);
	for (int i = 0; i < cfg->workers; i++) {
		atomic_fetch_add(&q.alive, 1);
		if (pthread_create(&th[nth], NULL, worker_main, &q) == 0)
			nth++;
		else
			atomic_fetch_sub(&q.alive, 1);
	}

	/* Progress while the workers run; the threads notice the deadline themselves. */
	uint64_t last = t0;
	for (;;) {
		bench_sleep_us(100000);
		uint64_t now = bench_now_ns();
		long acked = atomic_load(&q.acked);
		if (now - last >= 1000000000ull) {
			last = now;
			bench_progress(cfg, "  %ld/%ld acked, %.0f/s\n", acked, q.target,
				       acked / ((now - t0) / 1e9));
		}
		if (atomic_load(&q.alive) == 0)
			break; /* drained: every worker left on EMPTY */
	}
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	uint64_t t1 = atomic_load(&q.last_exit_ns);
	if (t1 < t0)
		t1 = bench_now_ns();
	double cpu = bench_cpu_seconds() - cpu0;
	bench_syncs syncs1 = bench_syncs_now();
	durq_stats_get(db, &after);

	row->elapsed_s = (t1 - t0) / 1e9;
	if (q.deadline_ns && t1 > q.deadline_ns)
		row->elapsed_s = (q.deadline_ns - t0) / 1e9;
	row->items_done = atomic_load(&q.acked);
	row->failures = atomic_load(&q.failures);
	row->throughput = row->elapsed_s > 0 ? row->items_done / row->elapsed_s : 0;
	row->success_rate = row->items_done + row->failures > 0
				    ? (double)row->items_done / (double)(row->items_done + row->failures)
				    : 0;
	row->p50_ms = bench_lat_quantile_ms(&q.lat, 0.50);
	row->p99_ms = bench_lat_quantile_ms(&q.lat, 0.99);
	row->ack_p50_ms = bench_lat_quantile_ms(&q.acklat, 0.50);
	row->ack_p99_ms = bench_lat_quantile_ms(&q.acklat, 0.99);
	row->fetch_p50_ms = bench_lat_quantile_ms(&q.fetchlat, 0.50);
	row->fetch_p99_ms = bench_lat_quantile_ms(&q.fetchlat, 0.99);
	bench_fill_stats(row, &before, &after, cpu, row->items_done);
	bench_fill_fsyncs(row, &before, &after, &syncs0, &syncs1);
out:
	bench_close(db, cfg, dir);
	bench_lat_free(&q.lat);
	bench_lat_free(&q.acklat);
	bench_lat_free(&q.fetchlat);
	pthread_mutex_destroy(&q.lat_lock);
	free(th);
}
