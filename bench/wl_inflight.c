/*
 * wl_inflight.c — the queue workloads at a fixed level of work in flight (--in-flight L):
 * W worker threads together keep L items fetched and not yet acked, and ack them
 * asynchronously, so one transaction can carry every ack in flight.
 *
 *  queue          prefill N items (asynchronous enqueues of 1,000, not timed). Worker i keeps
 *                 limit_i = L/W (+1 for the first L%W) items outstanding: it fetches
 *                 durq_work_fetch(max = its free slots, lease 5 min, wait 20 ms), submits one
 *                 durq_work_ack_async per item, and when it is at its limit sleeps until its
 *                 callbacks bring the count down to limit_i/2. The window ends at --duration,
 *                 or earlier when fewer than L prefilled items are left unfetched (the queue
 *                 could no longer hold the level; the note says so).
 *  (ack-fetch)    mode ack-fetch of the queue row: worker i holds at most limit_i items, and
 *                 one durq_work_ack_fetch call acks all it holds and leases the next ones
 *                 (max = limit_i): the hand-written loop's shape. Latency = that call.
 *  queue-produce  the same consumers, fed by one producer thread that submits one
 *                 durq_work_enqueue_async per item with at most L enqueues pending and at most
 *                 3L items enqueued and not yet acked (a bounded backlog). No prefill.
 *
 * Throughput = acks completed OK inside the window / window. Latency (p50/p99) = ack submit
 * -> its callback (durable); queue-produce also reports enqueue submit -> ack durable (e2e).
 * Callbacks run on the committer thread (group mode) or inline in the submit (per-op mode):
 * they record into fixed histograms and decrement counters with ck_pr atomics; a sleeping
 * thread is signalled only when its count crosses its low mark, not once per ack.
 *
 * Owns: the worker/producer threads and counters of one async row. Does not own: the handle
 * (util.c) or the synchronous rows (wl_queue.c).
 */
#include "bench.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>

#define LEASE_MS 300000   /* no lease may expire while its ack waits in a batch */
#define FETCH_WAIT_MS 20
#define PREFILL_BATCH 1000
#define PREFILL_ROUND 32  /* async prefill batches submitted per group wait */
#define GATE_BACKSTOP_MS 100
#define FLUSH_TIMEOUT_MS 120000

/* A thread sleeps here until a callback brings a count down to its low mark. The callback
 * takes the lock only if the thread is asleep (Dekker: both sides fence between their store
 * and their load), so acks cost no futex while the thread is busy. */
typedef struct gate {
	int waiting;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} gate;

struct iworker;

/* One outstanding ack: the callback's ctx. busy = in use (worker sets, callback clears). */
typedef struct slot {
	struct iworker *w;
	uint64_t t_submit, t_origin;
	int busy;
} slot;

struct ictx;

typedef struct iworker {
	struct ictx *q;
	int limit, low;       /* items outstanding at most / wake-up mark */
	int outstanding;      /* ck_pr: acks submitted, not completed */
	uint64_t acked;       /* ck_pr: acks completed OK */
	uint64_t failed;      /* ck_pr: acks completed with an error, fetch errors */
	slot *slots;          /* limit of them */
	int cursor;
	gate g;
	bench_hist lat;       /* ack submit -> callback (durable) */
	bench_hist e2e;       /* queue-produce: enqueue submit -> ack durable */
	pthread_t th;
	int started;
} iworker;

typedef struct iproducer {
	int limit, low;       /* enqueues pending */
	int sys_limit, sys_low; /* items enqueued and not acked (q->in_system) */
	int pending;          /* ck_pr */
	uint64_t failed;      /* ck_pr */
	gate g;
	pthread_t th;
	int started;
} iproducer;

typedef struct ictx {
	durq *db;
	bench_row *row;
	int produce;
	iworker *w;
	int nw;
	iproducer p;
	int in_system;        /* ck_pr, queue-produce: enqueues submitted - acks completed */
	long prefilled;
	uint64_t fetched;     /* ck_pr: items fetched */
	int stop;             /* ck_pr: threads leave their loops */
	int ended;            /* ck_pr: the window is closed (first closer wins) */
	uint64_t t0, t_end, acked_at_end;
	int dry;              /* the window ended because the prefill ran low */
} ictx;

/* ---- gates ------------------------------------------------------------------------- */

static int gate_init(gate *g)
{
	pthread_condattr_t ca;
	g->waiting = 0;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc == 0 && pthread_mutex_init(&g->mu, NULL) != 0) {
		pthread_cond_destroy(&g->cv);
		rc = -1;
	}
	return rc == 0 ? 0 : -1;
}

static void gate_destroy(gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

static void gate_wait(gate *g, bool (*ready)(void *), void *arg, int *stop)
{
	pthread_mutex_lock(&g->mu);
	ck_pr_store_int(&g->waiting, 1);
	ck_pr_fence_memory();
	while (!ready(arg) && !ck_pr_load_int(stop)) {
		struct timespec ts; /* backstop only: every crossing and the stop signal */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += GATE_BACKSTOP_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	}
	ck_pr_store_int(&g->waiting, 0);
	pthread_mutex_unlock(&g->mu);
}

static void gate_kick(gate *g)
{
	ck_pr_fence_memory();
	if (ck_pr_load_int(&g->waiting)) {
		pthread_mutex_lock(&g->mu);
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->mu);
	}
}

/* ---- the window -------------------------------------------------------------------- */

static int stopped(ictx *q)
{
	return ck_pr_load_int(&q->stop);
}

/* Close the window once: its end time, the acks completed by then; stop every thread. */
static void window_end(ictx *q, int dry)
{
	if (!ck_pr_cas_int(&q->ended, 0, 1))
		return;
	uint64_t acked = 0, now = bench_now_ns();
	for (int i = 0; i < q->nw; i++)
		acked += ck_pr_load_64(&q->w[i].acked);
	q->t_end = now;
	q->acked_at_end = acked;
	q->dry = dry;
	ck_pr_fence_store();
	ck_pr_store_int(&q->stop, 1);
	for (int i = 0; i < q->nw; i++)
		gate_kick(&q->w[i].g);
	if (q->produce)
		gate_kick(&q->p.g);
}

/* ---- completions (committer thread in group mode, the submitter in per-op mode) ---- */

/* One item fewer in the system (acked or never enqueued): may wake the producer. */
static void system_left(ictx *q)
{
	if (ck_pr_faa_int(&q->in_system, -1) - 1 == q->p.sys_low)
		gate_kick(&q->p.g);
}

static void ack_done(void *ctx, const durq_completion *c)
{
	slot *s = ctx;
	iworker *w = s->w;
	ictx *q = w->q;
	uint64_t now = bench_now_ns();
	if (c->rc == DURQ_OK) {
		bench_hist_add(&w->lat, now - s->t_submit);
		if (s->t_origin)
			bench_hist_add(&w->e2e, now - s->t_origin);
		ck_pr_inc_64(&w->acked);
	} else {
		ck_pr_inc_64(&w->failed);
		bench_note_msg(q->row, "durq_work_ack_async", c->rc, c->message);
	}
	ck_pr_fence_release(); /* done reading the slot before the worker may reuse it */
	ck_pr_store_int(&s->busy, 0);
	if (ck_pr_faa_int(&w->outstanding, -1) - 1 == w->low)
		gate_kick(&w->g);
	if (q->produce)
		system_left(q);
}

static void enqueue_done(void *ctx, const durq_completion *c)
{
	ictx *q = ctx;
	if (c->rc < 0) {
		ck_pr_inc_64(&q->p.failed);
		bench_note_msg(q->row, "durq_work_enqueue_async", c->rc, c->message);
		system_left(q);
	}
	if (ck_pr_faa_int(&q->p.pending, -1) - 1 == q->p.low)
		gate_kick(&q->p.g);
}

/* ---- workers ----------------------------------------------------------------------- */

static bool worker_may_fetch(void *arg)
{
	iworker *w = arg;
	return ck_pr_load_int(&w->outstanding) <= w->low;
}

/* A free slot exists whenever outstanding < limit: callbacks free the slot first. */
static slot *slot_take(iworker *w)
{
	for (;;) {
		slot *s = &w->slots[w->cursor];
		w->cursor = (w->cursor + 1) % w->limit;
		if (!ck_pr_load_int(&s->busy)) {
			ck_pr_fence_acquire();
			s->busy = 1;
			return s;
		}
	}
}

static void submit_acks(iworker *w, const durq_work_item *items, size_t n)
{
	ictx *q = w->q;
	for (size_t i = 0; i < n; i++) {
		slot *s = slot_take(w);
		s->t_origin = 0;
		if (q->produce && items[i].payload_len >= sizeof(s->t_origin))
			memcpy(&s->t_origin, items[i].payload, sizeof(s->t_origin));
		s->t_submit = bench_now_ns();
		ck_pr_inc_int(&w->outstanding);
		durq_async a = {.done = ack_done, .ctx = s};
		int rc = durq_work_ack_async(q->db, items[i].id, &items[i].token, NULL, &a);
		if (rc < 0) { /* never submitted: no callback */
			ck_pr_store_int(&s->busy, 0);
			ck_pr_dec_int(&w->outstanding);
			ck_pr_inc_64(&w->failed);
			bench_note_error(q->row, "durq_work_ack_async", rc);
			if (q->produce)
				system_left(q);
		}
	}
}

/* Queue row: the window ends before the prefill can no longer hold the level. */
static void note_fetched(ictx *q, size_t n, int rc)
{
	uint64_t f = ck_pr_faa_64(&q->fetched, n) + n;
	if (!q->produce &&
	    (rc == DURQ_EMPTY || q->prefilled - (long)f < (long)q->row->cfg.in_flight))
		window_end(q, 1);
}

/* A fetch failed other than DURQ_EMPTY: counted and noted; 1 = the handle is closed and
 * the worker stops, else it backs off 1 ms. */
static int fetch_failed(iworker *w, const char *call, int rc)
{
	ck_pr_inc_64(&w->failed);
	bench_note_error(w->q->row, call, rc);
	if (rc == DURQ_ECLOSED)
		return 1;
	bench_sleep_us(1000);
	return 0;
}

static void *worker_main(void *arg)
{
	iworker *w = arg;
	ictx *q = w->q;
	while (!stopped(q)) {
		int free_slots = w->limit - ck_pr_load_int(&w->outstanding);
		if (free_slots <= 0) {
			gate_wait(&w->g, worker_may_fetch, w, &q->stop);
			continue;
		}
		durq_work_item *items = NULL;
		size_t n = 0;
		int rc = durq_work_fetch(q->db, &items, &n, NULL, (size_t)free_slots, LEASE_MS,
					 FETCH_WAIT_MS);
		if (rc == DURQ_OK)
			submit_acks(w, items, n);
		durq_work_items_free(items, n);
		if (rc < 0 && rc != DURQ_EMPTY) {
			if (fetch_failed(w, "durq_work_fetch", rc))
				break;
			continue;
		}
		note_fetched(q, rc == DURQ_OK ? n : 0, rc);
	}
	return NULL;
}

/* ack-fetch rows: a worker holds at most its limit of items, and one durq_work_ack_fetch
 * call acks all of them and leases the next ones (the hand-written loop's shape). Latency =
 * that call (its acks are durable when it returns). The items held when the window closes
 * are acked after it, not counted. */
static void ack_fetch_count(iworker *w, size_t n, const int *rcs, uint64_t took_ns)
{
	for (size_t i = 0; i < n; i++) {
		if (rcs[i] == DURQ_OK) {
			bench_hist_add(&w->lat, took_ns);
			ck_pr_inc_64(&w->acked);
		} else {
			ck_pr_inc_64(&w->failed);
			bench_note_msg(w->q->row, "durq_work_ack_fetch (an ack)", rcs[i],
				       durq_error_name(rcs[i]));
		}
	}
}

static void acks_for(durq_work_ack_req *acks, const durq_work_item *held, size_t n)
{
	for (size_t i = 0; i < n; i++)
		acks[i] = (durq_work_ack_req){.id = held[i].id, .token = &held[i].token};
}

static void *worker_ack_fetch(void *arg)
{
	iworker *w = arg;
	ictx *q = w->q;
	durq_work_item *held = NULL, *next = NULL;
	size_t nh = 0, nn = 0;
	durq_work_ack_req *acks = calloc((size_t)w->limit, sizeof(*acks));
	int *rcs = calloc((size_t)w->limit, sizeof(*rcs));
	if (!acks || !rcs) {
		bench_note_error(q->row, "worker", DURQ_ENOMEM);
		ck_pr_inc_64(&w->failed);
	}
	while (acks && rcs && !stopped(q)) {
		acks_for(acks, held, nh);
		uint64_t t0 = bench_now_ns();
		int rc = durq_work_ack_fetch(q->db, acks, nh, rcs, &next, &nn, NULL,
					     (size_t)w->limit, LEASE_MS, FETCH_WAIT_MS);
		ack_fetch_count(w, nh, rcs, bench_now_ns() - t0);
		durq_work_items_free(held, nh);
		held = next;
		nh = rc == DURQ_OK ? nn : 0;
		next = NULL;
		if (rc < 0 && rc != DURQ_EMPTY) {
			if (fetch_failed(w, "durq_work_ack_fetch", rc))
				break;
			continue;
		}
		note_fetched(q, nh, rc);
	}
	if (nh && acks) { /* after the window: not counted */
		acks_for(acks, held, nh);
		durq_work_ack_many(q->db, acks, nh, NULL);
	}
	durq_work_items_free(held, nh);
	free(acks);
	free(rcs);
	return NULL;
}

/* ---- producer (queue-produce) ------------------------------------------------------ */

static bool producer_may_submit(void *arg)
{
	ictx *q = arg;
	return ck_pr_load_int(&q->p.pending) <= q->p.low &&
	       ck_pr_load_int(&q->in_system) <= q->p.sys_low;
}

static void *producer_main(void *arg)
{
	ictx *q = arg;
	iproducer *p = &q->p;
	size_t plen = q->row->cfg.payload;
	unsigned char *buf = malloc(plen ? plen : 1);
	if (!buf) {
		bench_note_error(q->row, "producer", DURQ_ENOMEM);
		return NULL;
	}
	memset(buf, 0x5a, plen);
	while (!stopped(q)) {
		if (ck_pr_load_int(&p->pending) >= p->limit ||
		    ck_pr_load_int(&q->in_system) >= p->sys_limit) {
			gate_wait(&p->g, producer_may_submit, q, &q->stop);
			continue;
		}
		uint64_t stamp = bench_now_ns(); /* the consumer's ack callback reads it back */
		if (plen >= sizeof(stamp))
			memcpy(buf, &stamp, sizeof(stamp));
		durq_work item = {.payload = buf, .payload_len = plen};
		durq_async a = {.done = enqueue_done, .ctx = q};
		ck_pr_inc_int(&p->pending);
		ck_pr_inc_int(&q->in_system);
		int rc = durq_work_enqueue_async(q->db, &item, 1, &a);
		if (rc < 0) { /* never submitted: no callback */
			ck_pr_dec_int(&p->pending);
			ck_pr_dec_int(&q->in_system);
			ck_pr_inc_64(&p->failed);
			bench_note_error(q->row, "durq_work_enqueue_async", rc);
			if (rc == DURQ_ECLOSED)
				break;
		}
	}
	free(buf);
	return NULL;
}

/* ---- setup ------------------------------------------------------------------------- */

/* Prefill n items with asynchronous enqueues, PREFILL_ROUND batches per wait, so the
 * committer packs many batches into one transaction. Not timed. */
static int prefill(ictx *q, long n)
{
	size_t plen = q->row->cfg.payload, failed = 0;
	durq_work *items = calloc(PREFILL_BATCH, sizeof(*items));
	unsigned char *buf = calloc(1, plen ? plen : 1);
	durq_group *g = NULL;
	int rc = items && buf ? durq_group_new(&g) : DURQ_ENOMEM;
	for (size_t i = 0; rc == DURQ_OK && i < PREFILL_BATCH; i++) {
		items[i].payload = buf;
		items[i].payload_len = plen;
	}
	for (long done = 0; rc == DURQ_OK && done < n;) {
		for (int r = 0; rc == DURQ_OK && r < PREFILL_ROUND && done < n; r++) {
			size_t k = n - done < PREFILL_BATCH ? (size_t)(n - done) : PREFILL_BATCH;
			durq_async a = {.group = g};
			rc = durq_work_enqueue_async(q->db, items, k, &a);
			done += (long)k;
		}
		int wrc = durq_group_wait(g, -1, &failed);
		if (rc == DURQ_OK && (wrc < 0 || failed))
			rc = wrc < 0 ? wrc : DURQ_EIO;
	}
	if (rc < 0)
		bench_note_error(q->row, "prefill durq_work_enqueue_async", rc);
	durq_group_free(g);
	free(items);
	free(buf);
	return rc;
}

/* Per-worker limits (L split over min(W, L) threads), slots, gates. */
static int setup(ictx *q, const bench_row_cfg *cfg)
{
	int level = cfg->in_flight;
	q->nw = cfg->workers < level ? cfg->workers : level;
	q->w = calloc((size_t)q->nw, sizeof(*q->w));
	if (!q->w)
		return -1;
	for (int i = 0; i < q->nw; i++) {
		iworker *w = &q->w[i];
		w->q = q;
		w->limit = level / q->nw + (i < level % q->nw);
		w->low = w->limit / 2;
		if (!(w->slots = calloc((size_t)w->limit, sizeof(*w->slots))) || gate_init(&w->g) < 0)
			return -1;
		w->started = -1; /* gate initialised, thread not started */
		for (int k = 0; k < w->limit; k++)
			w->slots[k].w = w;
	}
	q->p.limit = level;
	q->p.low = level / 2;
	q->p.sys_limit = 3 * level;
	q->p.sys_low = q->p.sys_limit - (level - q->p.low);
	if (gate_init(&q->p.g) < 0)
		return -1;
	q->p.started = -1;
	return 0;
}

static void teardown(ictx *q)
{
	for (int i = 0; q->w && i < q->nw; i++) {
		if (q->w[i].started)
			gate_destroy(&q->w[i].g);
		free(q->w[i].slots);
	}
	if (q->p.started)
		gate_destroy(&q->p.g);
	free(q->w);
}

static void start_threads(ictx *q)
{
	if (q->produce)
		q->p.started = pthread_create(&q->p.th, NULL, producer_main, q) == 0 ? 1 : -1;
	void *(*fn)(void *) = q->row->cfg.mode == MODE_ACK_FETCH ? worker_ack_fetch : worker_main;
	for (int i = 0; i < q->nw; i++)
		q->w[i].started = pthread_create(&q->w[i].th, NULL, fn, &q->w[i]) == 0 ? 1 : -1;
}

static void join_threads(ictx *q)
{
	if (q->p.started == 1)
		pthread_join(q->p.th, NULL);
	for (int i = 0; i < q->nw; i++)
		if (q->w[i].started == 1)
			pthread_join(q->w[i].th, NULL);
}

/* The main thread: progress once a second until the window closes or the deadline. */
static void wait_window(ictx *q, double duration_s)
{
	uint64_t deadline = q->t0 + (uint64_t)(duration_s * 1e9), last = q->t0;
	for (;;) {
		if (ck_pr_load_int(&q->ended))
			return;
		uint64_t now = bench_now_ns();
		if (now >= deadline) {
			window_end(q, 0);
			return;
		}
		if (now - last >= 1000000000ull) {
			uint64_t acked = 0;
			for (int i = 0; i < q->nw; i++)
				acked += ck_pr_load_64(&q->w[i].acked);
			last = now;
			bench_progress(&q->row->cfg, "  %llu acked, %.0f/s\n", (unsigned long long)acked,
				       (double)acked / ((double)(now - q->t0) / 1e9));
		}
		uint64_t left_us = (deadline - now) / 1000;
		bench_sleep_us(left_us < 10000 ? (long)left_us + 1 : 10000);
	}
}

/* Latency, counts and notes, once every callback has run. */
static void collect(ictx *q, bench_row *row)
{
	bench_hist *lat = calloc(1, sizeof(*lat)), *e2e = calloc(1, sizeof(*e2e));
	uint64_t acked = 0, failed = ck_pr_load_64(&q->p.failed);
	for (int i = 0; i < q->nw; i++) {
		acked += ck_pr_load_64(&q->w[i].acked);
		failed += ck_pr_load_64(&q->w[i].failed);
		if (lat && e2e) {
			bench_hist_merge(lat, &q->w[i].lat);
			bench_hist_merge(e2e, &q->w[i].e2e);
		}
	}
	row->elapsed_s = (double)(q->t_end - q->t0) / 1e9;
	row->items_done = (long)q->acked_at_end;
	row->failures = (long)failed;
	row->throughput = row->elapsed_s > 0 ? (double)row->items_done / row->elapsed_s : 0;
	row->success_rate = acked + failed ? (double)acked / (double)(acked + failed) : 0;
	if (lat && e2e) {
		row->p50_ms = row->ack_p50_ms = bench_hist_quantile_ms(lat, 0.50);
		row->p99_ms = row->ack_p99_ms = bench_hist_quantile_ms(lat, 0.99);
		row->e2e_p50_ms = bench_hist_quantile_ms(e2e, 0.50);
		row->e2e_p99_ms = bench_hist_quantile_ms(e2e, 0.99);
	}
	free(lat);
	free(e2e);
	row->workers_run = q->nw;
	size_t len = strlen(row->note);
	if (q->nw < row->cfg.workers)
		len += (size_t)snprintf(row->note + len, sizeof(row->note) - len,
					"%s%d of %d workers (in flight %d)", len ? "; " : "", q->nw,
					row->cfg.workers, row->cfg.in_flight);
	if (q->dry && len < sizeof(row->note))
		snprintf(row->note + len, sizeof(row->note) - len,
			 "%sprefill of %ld ran low at %.2f s: window ends there", len ? "; " : "",
			 q->prefilled, row->elapsed_s);
}

void bench_run_inflight(bench_row *row)
{
	const bench_row_cfg *cfg = &row->cfg;
	char dir[4096];
	durq *db = NULL;
	ictx q;
	durq_stats before, after;

	memset(&q, 0, sizeof(q));
	q.row = row;
	q.produce = cfg->workload == WL_QUEUE_PRODUCE;
	if (cfg->in_flight < 1 || cfg->duration_s <= 0 || setup(&q, cfg) < 0 ||
	    bench_open(&db, cfg, dir, sizeof(dir)) < 0) {
		snprintf(row->note, sizeof(row->note), "setup failed: %s",
			 cfg->in_flight < 1 || cfg->duration_s <= 0 ? "needs in_flight and duration"
								     : durq_error_last());
		row->skipped = 1;
		teardown(&q);
		return;
	}
	q.db = db;
	if (!q.produce) {
		q.prefilled = cfg->items > 0 ? cfg->items : 100000;
		bench_progress(cfg, "  prefill %ld items...\n", q.prefilled);
		if (prefill(&q, q.prefilled) < 0) {
			row->failures = 1;
			goto out;
		}
		bench_after_prefill(cfg, row, dir);
	}
	malloc_trim(0); /* the prefill's freed copies are not the in-flight row's memory */
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	durq_stats_get(db, &before);
	bench_syncs syncs0 = bench_syncs_now();
	double cpu0 = bench_cpu_seconds(), mcpu0 = bench_machine_cpu_seconds();
	q.t0 = bench_now_ns();
	start_threads(&q);
	wait_window(&q, cfg->duration_s);

	/* The window is closed: measure it before the drain adds commits of its own. */
	bench_syncs syncs1 = bench_syncs_now();
	durq_stats_get(db, &after);
	double cpu = bench_cpu_seconds() - cpu0, mcpu = bench_machine_cpu_seconds() - mcpu0;
	bench_rss_mib(&row->rss_mib, &row->rss_anon_mib);
	join_threads(&q);
	int frc = durq_flush(db, FLUSH_TIMEOUT_MS); /* every callback has run after this */
	if (frc < 0)
		bench_note_error(row, "durq_flush", frc);
	collect(&q, row);
	if (frc < 0)
		row->failures++;
	bench_fill_stats(row, &before, &after, cpu, row->items_done);
	bench_fill_fsyncs(row, &before, &after, &syncs0, &syncs1);
	if (row->items_done > 0)
		row->machine_us_per_item = mcpu * 1e6 / (double)row->items_done;
out:
	bench_close(db, cfg, dir);
	teardown(&q);
}
