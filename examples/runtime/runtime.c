/*
 * runtime.c — the runtime's threads on one durq handle: orchestrator threads (fetch a turn,
 * replay it, ack it asynchronously), activity workers (fetch items, run them, ack each with
 * its completion message asynchronously), the registry of orchestrations and activities, and
 * the two ways in from outside (start instances, raise events). Owns no history logic
 * (replay.c) and no SQL (durq).
 *
 * Which durq call does what:
 *   durq_orch_fetch      lease one instance: its new messages + its history
 *   durq_orch_ack_async  one atomic turn: delete those messages, append the history delta,
 *                        create the activities' work items and the timers, set status/output
 *   durq_orch_abandon    give the messages back (visible again after a delay)
 *   DURQ_TURN_DISCARD    an ack that only deletes the messages (never-started instance)
 *   durq_work_fetch      lease activity items
 *   durq_work_renew      keep a long activity's lease (rt_heartbeat)
 *   durq_work_ack_async  delete the item and send its result to the instance, atomically
 *   durq_work_abandon    give an item back unrun (when stopping)
 *   durq_orch_enqueue    start instances, raise events
 */
#include "rt_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RT_ACTIVITY_OUT_MAX 1024
#define RT_FETCH_BATCH 8            /* activity items per worker fetch */
#define RT_ABANDON_DELAY_MS 1000    /* a turn that cannot run yet, or failed to ack */

static void count(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static int stopping(rt *r)
{
	return atomic_load_explicit(&r->stop, memory_order_acquire);
}

static void log_error(const char *what, const char *id, int rc, const char *msg)
{
	fprintf(stderr, "runtime: %s %s: %s: %s\n", what, id ? id : "", durq_error_name(rc), msg);
}

/* After an unexpected error: a short pause, so a failing database is not spun on. */
static void backoff(void)
{
	struct timespec ts = {.tv_nsec = 50 * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- registry ------------------------------------------------------------------------- */

static int add_entry(rt_entry **list, size_t *n, const char *name, rt_orchestration_fn orch,
		     rt_activity_fn act)
{
	rt_entry *l = realloc(*list, (*n + 1) * sizeof *l);
	if (!l)
		return DURQ_ENOMEM;
	*list = l;
	if (!(l[*n].name = strdup(name)))
		return DURQ_ENOMEM;
	l[*n].orch = orch;
	l[*n].act = act;
	++*n;
	return DURQ_OK;
}

int rt_register_orchestration(rt *r, const char *name, rt_orchestration_fn fn)
{
	return add_entry(&r->orchs, &r->n_orchs, name, fn, NULL);
}

int rt_register_activity(rt *r, const char *name, rt_activity_fn fn)
{
	return add_entry(&r->acts, &r->n_acts, name, NULL, fn);
}

static const rt_entry *find_entry(const rt_entry *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0)
			return &list[i];
	return NULL;
}

rt_orchestration_fn rt_find_orchestration(const rt *r, const char *name)
{
	const rt_entry *e = find_entry(r->orchs, r->n_orchs, name);
	return e ? e->orch : NULL;
}

/* ---- orchestrator threads --------------------------------------------------------------- */

/* What the ack callback needs after the commit. */
typedef struct turn_done {
	rt *r;
	int finished;
	char instance_id[DURQ_INSTANCE_ID_MAX + 1];
} turn_done;

/* Runs on durq's committer thread once the turn is durable (or failed). */
static void turn_acked(void *ctx, const durq_completion *c)
{
	turn_done *d = ctx;
	if (c->rc < 0) { /* the lease stays until it expires; then the turn is replayed */
		count(&d->r->acks_failed);
		log_error("turn ack", d->instance_id, c->rc, c->message);
	} else if (d->finished && d->r->cfg.hooks.finished) {
		d->r->cfg.hooks.finished(d->r->cfg.hooks.ctx, d->instance_id, d->finished);
	}
	free(d);
}

static int abandon_turn(rt *r, const durq_turn *turn, int sync)
{
	durq_async a = {0};
	int rc = sync ? durq_orch_abandon(r->db, turn->instance_id, &turn->token,
					  RT_ABANDON_DELAY_MS, 0)
		      : durq_orch_abandon_async(r->db, turn->instance_id, &turn->token,
						RT_ABANDON_DELAY_MS, 0, &a);
	if (rc < 0)
		log_error("turn abandon", turn->instance_id, rc, durq_error_last());
	return rc;
}

/* Commit the turn: asynchronously from the orchestrator threads (the thread goes on with the
 * next instance at once), synchronously from rt_turn_once. */
static int ack_turn(rt *r, const durq_turn *turn, const rt_plan *plan, int sync)
{
	turn_done *d = calloc(1, sizeof *d);
	if (!d)
		return abandon_turn(r, turn, sync);
	*d = (turn_done){.r = r, .finished = plan->finished};
	snprintf(d->instance_id, sizeof d->instance_id, "%s", turn->instance_id);
	if (sync) {
		int rc = durq_orch_ack(r->db, turn->instance_id, &turn->token, &plan->result);
		durq_completion c = {.rc = rc, .message = rc < 0 ? durq_error_last() : ""};
		turn_acked(d, &c);
		return rc;
	}
	durq_async a = {.done = turn_acked, .ctx = d};
	/* inputs are copied at submit: the plan can go right away */
	int rc = durq_orch_ack_async(r->db, turn->instance_id, &turn->token, &plan->result, &a);
	if (rc < 0) {
		count(&r->acks_failed);
		log_error("turn ack submit", turn->instance_id, rc, durq_error_last());
		free(d);
	}
	return rc;
}

static int run_turn(rt *r, const durq_turn *turn, int sync)
{
	rt_plan plan;
	count(&r->turns);
	if (rt_replay_turn(r, turn, durq_now(r->db), &plan) < 0) {
		count(&r->turns_failed);
		fprintf(stderr, "runtime: turn of %s cannot run (history not ours, or no memory)\n",
			turn->instance_id);
		return abandon_turn(r, turn, sync); /* after max_attempts, durq dead-letters it */
	}
	if (plan.result.flags & DURQ_TURN_DISCARD)
		fprintf(stderr, "runtime: %s never started: %zu message(s) dropped\n",
			turn->instance_id, turn->n_messages);
	int rc = plan.action == RT_PLAN_ABANDON ? abandon_turn(r, turn, sync)
						: ack_turn(r, turn, &plan, sync);
	rt_plan_free(&plan);
	return rc;
}

int rt_turn_once(rt *r, int timeout_ms)
{
	durq_turn *turn;
	int rc = durq_orch_fetch(r->db, &turn, r->cfg.orch_lease_ms, timeout_ms);
	if (rc < 0)
		return rc;
	rc = run_turn(r, turn, 1);
	durq_turn_free(turn);
	return rc;
}

static void *orchestrator_main(void *arg)
{
	rt *r = arg;
	while (!stopping(r)) {
		durq_turn *turn;
		int rc = durq_orch_fetch(r->db, &turn, r->cfg.orch_lease_ms, r->cfg.poll_ms);
		if (rc == DURQ_EMPTY)
			continue;
		if (rc < 0) {
			log_error("orchestration fetch", NULL, rc, durq_error_last());
			if (rc == DURQ_ECLOSED)
				break;
			backoff();
			continue;
		}
		run_turn(r, turn, 0);
		durq_turn_free(turn);
	}
	return NULL;
}

/* ---- activity workers ----------------------------------------------------------------- */

struct rt_actx {
	rt *r;
	const durq_work_item *item;
	int64_t lease_until_ms;
};

const char *rt_activity_instance(const rt_actx *a)
{
	return a->item->instance_id;
}

int rt_activity_attempt(const rt_actx *a)
{
	return a->item->attempt;
}

void rt_heartbeat(rt_actx *a)
{
	int64_t now = durq_now(a->r->db);
	if (a->lease_until_ms - now > a->r->cfg.work_lease_ms / 2)
		return;
	int rc = durq_work_renew(a->r->db, &a->lease_until_ms, a->item->id, &a->item->token,
				 a->r->cfg.work_lease_ms);
	if (rc < 0) /* lost: another worker may run it too; our ack will then fail */
		log_error("activity renew", a->item->instance_id, rc, durq_error_last());
}

static void work_acked(void *ctx, const durq_completion *c)
{
	rt *r = ctx;
	if (c->rc < 0) { /* ELOCKLOST: the lease expired and the item runs again elsewhere */
		count(&r->acks_failed);
		log_error("activity ack", NULL, c->rc, c->message);
	}
}

/* Run one item and ack it with its result as the message to its instance. */
static void run_activity(rt *r, const durq_work_item *item)
{
	char out[RT_ACTIVITY_OUT_MAX] = "";
	int status = RT_ACTIVITY_FAILED;
	rt_hevent sched;
	rt_actx a = {.r = r, .item = item, .lease_until_ms = item->lease_until_ms};

	if (rt_hevent_decode(&sched, item->payload, item->payload_len) < 0) {
		snprintf(out, sizeof out, "unreadable activity item");
		sched = (rt_hevent){0};
	} else {
		const rt_entry *e = find_entry(r->acts, r->n_acts, sched.name);
		rt_heartbeat(&a); /* items of a batch wait their turn: renew if half the lease went */
		if (!e)
			snprintf(out, sizeof out, "no activity named '%s'", sched.name);
		else
			status = e->act(&a, sched.value, out, sizeof out);
	}
	count(&r->activities_run);
	if (item->attempt > 1) /* at-least-once: an earlier delivery's lease expired */
		count(&r->redelivered);
	if (status != RT_ACTIVITY_OK)
		count(&r->activities_failed);

	rt_hevent res = {.type = RT_H_RESULT, .seq = item->activity_id,
			 .name = status == RT_ACTIVITY_OK ? "ok" : "failed", .value = out};
	char *buf = NULL;
	size_t len = 0;
	durq_message done = {.instance_id = item->instance_id, .kind = RT_H_RESULT};
	if (item->instance_id && rt_message_encode(item->execution_id, &res, &buf, &len) == 0) {
		done.payload = buf;
		done.payload_len = len;
	}
	durq_async ack = {.done = work_acked, .ctx = r};
	int rc = durq_work_ack_async(r->db, item->id, &item->token,
				     item->instance_id && buf ? &done : NULL, &ack);
	if (rc < 0)
		log_error("activity ack submit", item->instance_id, rc, durq_error_last());
	free(buf);
	rt_hevent_clear(&sched);
}

static void *worker_main(void *arg)
{
	rt *r = arg;
	while (!stopping(r)) {
		durq_work_item *items;
		size_t n;
		int rc = durq_work_fetch(r->db, &items, &n, RT_QUEUE, RT_FETCH_BATCH,
					 r->cfg.work_lease_ms, r->cfg.poll_ms);
		if (rc == DURQ_EMPTY)
			continue;
		if (rc < 0) {
			log_error("activity fetch", NULL, rc, durq_error_last());
			if (rc == DURQ_ECLOSED)
				break;
			backoff();
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (!stopping(r)) {
				run_activity(r, &items[i]);
				continue;
			}
			/* stopping: give the rest back now, not after its lease (not an attempt) */
			durq_async a = {0};
			durq_work_abandon_async(r->db, items[i].id, &items[i].token, 0, 1, &a);
		}
		durq_work_items_free(items, n);
	}
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int rt_new(rt **out, durq *db, const rt_config *cfg)
{
	rt *r = calloc(1, sizeof *r);
	if (!r)
		return DURQ_ENOMEM;
	r->db = db;
	r->cfg = cfg ? *cfg : (rt_config){0};
	if (r->cfg.orchestrators <= 0)
		r->cfg.orchestrators = 1;
	if (r->cfg.workers <= 0)
		r->cfg.workers = 4;
	if (r->cfg.orch_lease_ms <= 0)
		r->cfg.orch_lease_ms = 5000;
	if (r->cfg.work_lease_ms <= 0)
		r->cfg.work_lease_ms = 5000;
	if (r->cfg.poll_ms <= 0)
		r->cfg.poll_ms = 250;
	*out = r;
	return DURQ_OK;
}

int rt_start(rt *r)
{
	size_t n = (size_t)r->cfg.orchestrators + (size_t)r->cfg.workers;
	if (!(r->threads = calloc(n, sizeof *r->threads)))
		return DURQ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		void *(*fn)(void *) = i < (size_t)r->cfg.orchestrators ? orchestrator_main : worker_main;
		if (pthread_create(&r->threads[i], NULL, fn, r) != 0) {
			rt_stop(r);
			return DURQ_ENOMEM;
		}
		r->n_threads++;
	}
	return DURQ_OK;
}

void rt_stop(rt *r)
{
	atomic_store_explicit(&r->stop, 1, memory_order_release);
	for (size_t i = 0; i < r->n_threads; i++) /* each returns within poll_ms */
		pthread_join(r->threads[i], NULL);
	r->n_threads = 0;
	durq_flush(r->db, -1); /* every async ack submitted is committed (or failed) */
}

void rt_counters_get(rt *r, rt_counters *out)
{
	out->turns = atomic_load(&r->turns);
	out->turns_failed = atomic_load(&r->turns_failed);
	out->activities_run = atomic_load(&r->activities_run);
	out->activities_failed = atomic_load(&r->activities_failed);
	out->redelivered = atomic_load(&r->redelivered);
	out->acks_failed = atomic_load(&r->acks_failed);
}

static void entries_free(rt_entry *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

void rt_free(rt *r)
{
	if (!r)
		return;
	if (r->n_threads)
		rt_stop(r);
	free(r->threads);
	entries_free(r->orchs, r->n_orchs);
	entries_free(r->acts, r->n_acts);
	free(r);
}

/* ---- from outside ------------------------------------------------------------------------- */

/* A message carrying a history event for whichever execution is current. */
static int event_message(durq_message *m, char **buf, const char *instance_id, int type,
			 const char *name, const char *value, int64_t delay_ms)
{
	rt_hevent e = {.type = type, .name = (char *)name, .value = (char *)value};
	size_t len;
	if (rt_message_encode(0, &e, buf, &len) < 0) /* a name holding '\n', or no memory */
		return DURQ_EINVAL;
	*m = (durq_message){.instance_id = instance_id, .kind = type, .payload = *buf,
			    .payload_len = len, .delay_ms = delay_ms};
	return DURQ_OK;
}

int rt_start_instances(durq *db, const rt_start_req *reqs, size_t n)
{
	durq_message *msgs = calloc(n ? n : 1, sizeof *msgs);
	char **bufs = calloc(n ? n : 1, sizeof *bufs);
	int rc = msgs && bufs ? DURQ_OK : DURQ_ENOMEM;
	for (size_t i = 0; i < n && rc == DURQ_OK; i++)
		rc = event_message(&msgs[i], &bufs[i], reqs[i].instance_id, RT_H_STARTED,
				   reqs[i].name, reqs[i].input, reqs[i].delay_ms);
	if (rc == DURQ_OK)
		rc = durq_orch_enqueue(db, msgs, n); /* one transaction: all started or none */
	for (size_t i = 0; bufs && i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(msgs);
	return rc;
}

int rt_raise_event(durq *db, const char *instance_id, const char *name, const char *data)
{
	durq_message m;
	char *buf;
	int rc = event_message(&m, &buf, instance_id, RT_H_EVENT, name, data, 0);
	if (rc < 0)
		return rc;
	rc = durq_orch_enqueue(db, &m, 1);
	free(buf);
	return rc;
}
