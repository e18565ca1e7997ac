/*
 * wl_orch.c — the orchestration workload (the seeds' workload), driven like the runtime does.
 *
 * Each orchestration fans out 5 activities and waits for all of them:
 *   starter    keeps --orch-in-flight (20) orchestrations running: durq_orch_enqueue(START)
 *              (durq_orch_enqueue_async with --orch-async)
 *   D dispatchers  loop durq_orch_fetch -> decide -> durq_orch_ack with a history delta:
 *                  first turn appends Started + 5 TaskScheduled events and schedules 5
 *                  durq_work items (instance, execution 1, activity 1..5); later turns append
 *                  one TaskCompleted per completion message; the turn that sees the 5th
 *                  completion appends Completed and sets DURQ_STATUS_COMPLETED.
 *   A activity workers  loop durq_work_fetch -> sleep --activity-ms -> durq_work_ack with a
 *                  completion message to the instance.
 *
 * Latency = start enqueue -> completing turn acked (the start time travels in the history).
 * Theoretical bound (orch/s) = A * (1000 / activity_ms) / 5: each activity-worker slot can
 * run at most 1000/activity_ms activities per second, and an orchestration needs 5.
 *
 * Owns: the threads of one orchestration row. Does not own: the handle (util.c).
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define N_ACT 5
#define LEASE_MS 30000
#define FETCH_WAIT_MS 20

enum { MSG_START = 1, MSG_ACT_DONE = 2 };
enum { EV_STARTED = 1, EV_SCHEDULED = 2, EV_COMPLETED = 3, EV_DONE = 4 };
#define EV_HDR 9 /* type byte + start timestamp */

typedef struct octx {
	durq *db;
	bench_row *row;
	long target;                 /* orchestrations to complete; 0 = until the deadline */
	uint64_t t0, win_start, deadline; /* measuring window [win_start, deadline] */
	atomic_int stop;
	atomic_long started, completed, completed_win, acts, acts_win, failures;
	_Atomic uint64_t last_done_ns;
	pthread_mutex_t lock;        /* guards inflight, the latency arrays */
	pthread_cond_t cv;
	int inflight;
	bench_lat lat, acklat, fetchlat;
} octx;

static int in_window(octx *o, uint64_t t)
{
	return o->deadline == 0 || (t >= o->win_start && t <= o->deadline);
}

static void finish_one(octx *o)
{
	pthread_mutex_lock(&o->lock);
	o->inflight--;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->lock);
}

static void start_done(void *ctx, const durq_completion *c)
{
	octx *o = ctx;
	if (c->rc != DURQ_OK) {
		atomic_fetch_add(&o->failures, 1);
		bench_note_msg(o->row, "durq_orch_enqueue_async", c->rc, c->message);
		finish_one(o);
	}
}

static void *starter_main(void *arg)
{
	octx *o = arg;
	size_t plen = o->row->cfg.payload < 8 ? 8 : o->row->cfg.payload;
	unsigned char *payload = calloc(1, plen);
	char id[64];
	if (!payload)
		return NULL;
	while (!atomic_load(&o->stop) && (o->target == 0 || atomic_load(&o->started) < o->target)) {
		pthread_mutex_lock(&o->lock);
		while (o->inflight >= o->row->cfg.in_flight && !atomic_load(&o->stop)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&o->cv, &o->lock, &ts);
		}
		o->inflight++;
		pthread_mutex_unlock(&o->lock);
		if (atomic_load(&o->stop))
			break;
		long seq = atomic_fetch_add(&o->started, 1);
		snprintf(id, sizeof(id), "orch-%08ld", seq);
		uint64_t now = bench_now_ns();
		memcpy(payload, &now, sizeof(now));
		durq_message m = {.instance_id = id, .kind = MSG_START, .payload = payload,
				  .payload_len = plen};
		/* --orch-async: without waiting for the commit (the message is copied at submit),
		 * as a runtime's client that starts many would: one commit-and-flush per start
		 * would bound the row */
		durq_async a = {.done = start_done, .ctx = o};
		int rc = o->row->cfg.orch_async ? durq_orch_enqueue_async(o->db, &m, 1, &a)
						: durq_orch_enqueue(o->db, &m, 1);
		if (rc < 0) {
			atomic_fetch_add(&o->failures, 1);
			bench_note_error(o->row, o->row->cfg.orch_async ? "durq_orch_enqueue_async"
									: "durq_orch_enqueue", rc);
			finish_one(o);
			if (rc == DURQ_ECLOSED)
				break;
		}
	}
	free(payload);
	return NULL;
}

/* One turn's decision; buffers live in the caller so the result can point into them. */
typedef struct turn_buf {
	durq_event ev[N_ACT + 8 + 64];
	unsigned char *evpay;        /* one payload-sized slot per event */
	durq_work work[N_ACT];
	size_t plen;
} turn_buf;

static unsigned char *ev_slot(turn_buf *b, size_t i, int type, uint64_t start)
{
	unsigned char *p = b->evpay + i * b->plen;
	memset(p, 0, b->plen);
	p[0] = (unsigned char)type;
	memcpy(p + 1, &start, sizeof(start));
	return p;
}

static int ev_type(const durq_event *e)
{
	return e->payload_len >= 1 ? ((const unsigned char *)e->payload)[0] : 0;
}

static uint64_t ev_start(const durq_event *e)
{
	uint64_t t = 0;
	if (e->payload_len >= EV_HDR)
		memcpy(&t, (const unsigned char *)e->payload + 1, sizeof(t));
	return t;
}

/* Fill result for turn; *completes = 1 if this turn finishes the orchestration. */
static void decide(octx *o, const durq_turn *t, turn_buf *b, durq_turn_result *r, int *completes,
		   uint64_t *start)
{
	size_t nev = 0;
	memset(r, 0, sizeof(*r));
	r->version = DURQ_TURN_RESULT_VERSION;
	*completes = 0;
	*start = 0;
	if (!t->exists) {
		for (size_t i = 0; i < t->n_messages; i++)
			if (t->messages[i].kind == MSG_START && t->messages[i].payload_len >= 8)
				memcpy(start, t->messages[i].payload, sizeof(*start));
		b->ev[nev] = (durq_event){1, ev_slot(b, nev, EV_STARTED, *start), b->plen};
		nev++;
		for (int a = 0; a < N_ACT; a++) {
			b->ev[nev] = (durq_event){(uint64_t)(2 + a), ev_slot(b, nev, EV_SCHEDULED, *start),
						  b->plen};
			b->work[a] = (durq_work){.queue = NULL, .instance_id = t->instance_id,
						 .execution_id = 1, .activity_id = (uint64_t)(a + 1),
						 .payload = b->ev[nev].payload, .payload_len = b->plen};
			nev++;
		}
		r->name = "bench-orchestration";
		r->version_tag = "1";
		r->status = DURQ_STATUS_RUNNING;
		r->work = b->work;
		r->n_work = N_ACT;
	} else {
		int done = 0;
		uint64_t next = 1;
		for (size_t i = 0; i < t->n_history; i++) {
			if (ev_type(&t->history[i]) == EV_COMPLETED)
				done++;
			if (ev_type(&t->history[i]) == EV_STARTED)
				*start = ev_start(&t->history[i]);
			if (t->history[i].event_id >= next)
				next = t->history[i].event_id + 1;
		}
		for (size_t i = 0; i < t->n_messages && nev < 64; i++) {
			if (t->messages[i].kind != MSG_ACT_DONE)
				continue;
			b->ev[nev] = (durq_event){next++, ev_slot(b, nev, EV_COMPLETED, *start), b->plen};
			nev++;
			done++;
		}
		r->status = DURQ_STATUS_RUNNING;
		if (done >= N_ACT) {
			b->ev[nev] = (durq_event){next++, ev_slot(b, nev, EV_DONE, *start), b->plen};
			nev++;
			r->status = DURQ_STATUS_COMPLETED;
			r->output = "ok";
			r->output_len = 2;
			*completes = 1;
		}
	}
	(void)o;
	r->history = b->ev;
	r->n_history = nev;
}

/* --orch-async: what a turn's completion callback needs (the callback runs on the committer
 * thread after the COMMIT that made the turn durable). */
typedef struct turn_done {
	octx *o;
	int completes;
	uint64_t start;
} turn_done;

static void count_completed(octx *o, uint64_t start, bench_lat *lat)
{
	uint64_t now = bench_now_ns();
	atomic_fetch_add(&o->completed, 1);
	if (in_window(o, now))
		atomic_fetch_add(&o->completed_win, 1);
	atomic_store(&o->last_done_ns, now);
	if (lat && start && now > start)
		bench_lat_add(lat, now - start);
	finish_one(o);
	if (o->target > 0 && atomic_load(&o->completed) >= o->target)
		atomic_store(&o->stop, 1);
}

static void turn_acked(void *ctx, const durq_completion *c)
{
	turn_done *d = ctx;
	if (c->rc == DURQ_OK && d->completes) {
		pthread_mutex_lock(&d->o->lock); /* o->lat is shared by callbacks */
		if (d->start)
			bench_lat_add(&d->o->lat, bench_now_ns() - d->start);
		pthread_mutex_unlock(&d->o->lock);
		count_completed(d->o, 0, NULL);
	} else if (c->rc != DURQ_OK) {
		atomic_fetch_add(&d->o->failures, 1);
		bench_note_msg(d->o->row, "durq_orch_ack_async", c->rc, c->message);
	}
	free(d);
}

/* Submit the turn's ack without waiting; its callback counts the completion. */
static int ack_turn_async(octx *o, const durq_turn *t, const durq_turn_result *r, int completes,
			  uint64_t start)
{
	turn_done *d = malloc(sizeof(*d));
	if (!d)
		return DURQ_ENOMEM;
	*d = (turn_done){o, completes, start};
	durq_async a = {.done = turn_acked, .ctx = d};
	int rc = durq_orch_ack_async(o->db, t->instance_id, &t->token, r, &a);
	if (rc < 0)
		free(d);
	return rc;
}

static void *dispatcher_main(void *arg)
{
	octx *o = arg;
	turn_buf b;
	bench_lat lat = {0};
	b.plen = o->row->cfg.payload < EV_HDR ? EV_HDR : o->row->cfg.payload;
	b.evpay = malloc(b.plen * (sizeof(b.ev) / sizeof(b.ev[0])));
	if (!b.evpay)
		return NULL;
	while (!atomic_load(&o->stop)) {
		durq_turn *t = NULL;
		int rc = durq_orch_fetch(o->db, &t, LEASE_MS, FETCH_WAIT_MS);
		if (rc == DURQ_EMPTY || (rc == DURQ_OK && !t))
			continue;
		if (rc < 0) {
			atomic_fetch_add(&o->failures, 1);
			bench_note_error(o->row, "durq_orch_fetch", rc);
			if (rc == DURQ_ECLOSED)
				break;
			bench_sleep_us(1000);
			continue;
		}
		durq_turn_result r;
		int completes;
		uint64_t start;
		decide(o, t, &b, &r, &completes, &start);
		if (o->row->cfg.orch_async) {
			if ((rc = ack_turn_async(o, t, &r, completes, start)) < 0) {
				atomic_fetch_add(&o->failures, 1);
				bench_note_error(o->row, "durq_orch_ack_async", rc);
				durq_orch_abandon(o->db, t->instance_id, &t->token, 0, 1);
			}
			durq_turn_free(t);
			continue;
		}
		rc = durq_orch_ack(o->db, t->instance_id, &t->token, &r);
		if (rc == DURQ_OK) {
			if (completes)
				count_completed(o, start, &lat);
		} else {
			atomic_fetch_add(&o->failures, 1);
			bench_note_error(o->row, "durq_orch_ack", rc);
			durq_orch_abandon(o->db, t->instance_id, &t->token, 0, 1);
		}
		durq_turn_free(t);
	}
	pthread_mutex_lock(&o->lock);
	bench_lat_merge(&o->lat, &lat);
	pthread_mutex_unlock(&o->lock);
	bench_lat_free(&lat);
	free(b.evpay);
	return NULL;
}

static void activity_acked(void *ctx, const durq_completion *c)
{
	octx *o = ctx;
	if (c->rc == DURQ_OK) {
		atomic_fetch_add(&o->acts, 1);
		if (in_window(o, bench_now_ns()))
			atomic_fetch_add(&o->acts_win, 1);
	} else {
		atomic_fetch_add(&o->failures, 1);
		bench_note_msg(o->row, "durq_work_ack_async (activity)", c->rc, c->message);
	}
}

static void *activity_main(void *arg)
{
	octx *o = arg;
	size_t plen = o->row->cfg.payload;
	unsigned char *result = calloc(1, plen ? plen : 1);
	bench_lat acklat = {0}, fetchlat = {0};
	if (!result)
		return NULL;
	memset(result, 'r', plen);
	/* The default 50 us timer slack would stretch every 10 ms activity: keep the simulated
	 * work at what --activity-ms says, so the bound is the bound. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	while (!atomic_load(&o->stop)) {
		durq_work_item *items = NULL;
		size_t n = 0;
		uint64_t tf = bench_now_ns();
		size_t max = o->row->cfg.orch_async ? 64 : 1;
		int rc = durq_work_fetch(o->db, &items, &n, NULL, max, LEASE_MS, FETCH_WAIT_MS);
		if (rc == DURQ_EMPTY || (rc == DURQ_OK && n == 0)) {
			durq_work_items_free(items, n);
			continue;
		}
		if (rc == DURQ_OK)
			bench_lat_add(&fetchlat, bench_now_ns() - tf);
		if (rc < 0) {
			atomic_fetch_add(&o->failures, 1);
			bench_note_error(o->row, "durq_work_fetch", rc);
			if (rc == DURQ_ECLOSED)
				break;
			bench_sleep_us(1000);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (o->row->cfg.activity_ms > 0) /* the simulated work */
				bench_sleep_us(o->row->cfg.activity_ms * 1000L);
			durq_message done = {.instance_id = items[i].instance_id, .kind = MSG_ACT_DONE,
					     .payload = result, .payload_len = plen};
			uint64_t t1 = bench_now_ns();
			if (o->row->cfg.orch_async) {
				durq_async a = {.done = activity_acked, .ctx = o};
				int arc = durq_work_ack_async(o->db, items[i].id, &items[i].token, &done, &a);
				if (arc < 0) {
					atomic_fetch_add(&o->failures, 1);
					bench_note_error(o->row, "durq_work_ack_async (activity)", arc);
				}
				continue;
			}
			int arc = durq_work_ack(o->db, items[i].id, &items[i].token, &done);
			uint64_t t2 = bench_now_ns();
			if (arc == DURQ_OK) {
				atomic_fetch_add(&o->acts, 1);
				if (in_window(o, t2))
					atomic_fetch_add(&o->acts_win, 1);
				bench_lat_add(&acklat, t2 - t1);
			} else {
				atomic_fetch_add(&o->failures, 1);
				bench_note_error(o->row, "durq_work_ack (activity)", arc);
			}
		}
		durq_work_items_free(items, n);
	}
	pthread_mutex_lock(&o->lock);
	bench_lat_merge(&o->acklat, &acklat);
	bench_lat_merge(&o->fetchlat, &fetchlat);
	pthread_mutex_unlock(&o->lock);
	bench_lat_free(&acklat);
	bench_lat_free(&fetchlat);
	free(result);
	return NULL;
}

void bench_run_orch(bench_row *row)
{
	const bench_row_cfg *cfg = &row->cfg;
	char dir[4096];
	durq *db = NULL;
	octx o;
	durq_stats before, after;
	int total = 1 + cfg->dispatchers + cfg->workers, nth = 0;
	pthread_t *th = calloc((size_t)total, sizeof(*th));

	row->bound = cfg->workers * (1000.0 / (cfg->activity_ms > 0 ? cfg->activity_ms : 1)) / N_ACT;
	memset(&o, 0, sizeof(o));
	o.row = row;
	o.target = cfg->items;
	if (o.target <= 0 && cfg->duration_s <= 0)
		o.target = 200;
	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.cv, NULL);
	if (!th || bench_open(&db, cfg, dir, sizeof(dir)) < 0) {
		snprintf(row->note, sizeof(row->note), "open failed: %s", durq_error_last());
		row->skipped = 1;
		goto out_free;
	}
	o.db = db;
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	durq_stats_get(db, &before);
	bench_syncs syncs0 = bench_syncs_now();
	double cpu0 = bench_cpu_seconds();
	o.t0 = bench_now_ns();
	if (cfg->duration_s > 0) {
		/* Skip the ramp-up (the first turns and the empty activity queue): measure from
		 * 10% of the run, at most 1 s in. */
		double warm = cfg->duration_s * 0.1 > 1.0 ? 1.0 : cfg->duration_s * 0.1;
		o.win_start = o.t0 + (uint64_t)(warm * 1e9);
		o.deadline = o.t0 + (uint64_t)(cfg->duration_s * 1e9);
	}
	if (pthread_create(&th[nth], NULL, starter_main, &o) == 0)
		nth++;
	for (int i = 0; i < cfg->dispatchers; i++)
		if (pthread_create(&th[nth], NULL, dispatcher_main, &o) == 0)
			nth++;
	for (int i = 0; i < cfg->workers; i++)
		if (pthread_create(&th[nth], NULL, activity_main, &o) == 0)
			nth++;

	uint64_t last = o.t0;
	while (!atomic_load(&o.stop)) {
		bench_sleep_us(20000);
		uint64_t now = bench_now_ns();
		if (o.deadline && now >= o.deadline)
			atomic_store(&o.stop, 1);
		if (now - last >= 1000000000ull) {
			last = now;
			bench_progress(cfg, "  %ld orchestrations, %ld activities, %.1f orch/s\n",
				       atomic_load(&o.completed), atomic_load(&o.acts),
				       atomic_load(&o.completed) / ((now - o.t0) / 1e9));
		}
	}
	pthread_mutex_lock(&o.lock);
	pthread_cond_broadcast(&o.cv);
	pthread_mutex_unlock(&o.lock);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (cfg->orch_async)
		durq_flush(db, -1); /* every callback has run before the counters are read */
	double cpu = bench_cpu_seconds() - cpu0;
	bench_syncs syncs1 = bench_syncs_now();
	durq_stats_get(db, &after);

	uint64_t last_done = atomic_load(&o.last_done_ns);
	if (o.deadline && !(o.target > 0 && atomic_load(&o.completed) >= o.target &&
			    last_done < o.deadline)) {
		row->elapsed_s = (o.deadline - o.win_start) / 1e9;
		row->items_done = atomic_load(&o.completed_win);
		row->activities_done = atomic_load(&o.acts_win);
	} else {
		row->elapsed_s = last_done > o.t0 ? (last_done - o.t0) / 1e9 : 0;
		row->items_done = atomic_load(&o.completed);
		row->activities_done = atomic_load(&o.acts);
	}
	row->failures = atomic_load(&o.failures);
	row->throughput = row->elapsed_s > 0 ? row->items_done / row->elapsed_s : 0;
	row->act_throughput = row->elapsed_s > 0 ? row->activities_done / row->elapsed_s : 0;
	row->pct_of_bound = row->bound > 0 ? 100.0 * row->throughput / row->bound : 0;
	{
		long ok = atomic_load(&o.completed), fail = row->failures;
		row->success_rate = ok + fail > 0 ? (double)ok / (double)(ok + fail) : 0;
	}
	row->p50_ms = bench_lat_quantile_ms(&o.lat, 0.50);
	row->p99_ms = bench_lat_quantile_ms(&o.lat, 0.99);
	row->ack_p50_ms = bench_lat_quantile_ms(&o.acklat, 0.50);
	row->ack_p99_ms = bench_lat_quantile_ms(&o.acklat, 0.99);
	row->fetch_p50_ms = bench_lat_quantile_ms(&o.fetchlat, 0.50);
	row->fetch_p99_ms = bench_lat_quantile_ms(&o.fetchlat, 0.99);
	/* Whole-run stats over whole-run completions: same span for both. */
	bench_fill_stats(row, &before, &after, cpu, atomic_load(&o.completed));
	bench_fill_fsyncs(row, &before, &after, &syncs0, &syncs1);
	bench_close(db, cfg, dir);
out_free:
	bench_lat_free(&o.lat);
	bench_lat_free(&o.acklat);
	bench_lat_free(&o.fetchlat);
	pthread_cond_destroy(&o.cv);
	pthread_mutex_destroy(&o.lock);
	free(th);
}
