/*
 * replay.c — one orchestration turn: rebuild the history (stored events + the messages this
 * turn brought), re-run the orchestration function from the top against it, and turn what
 * is new into one durq_turn_result. Owns the rt_ctx calls of runtime.h. Does not fetch or
 * ack (runtime.c does), so a turn is a pure function of (history, messages, now).
 *
 * The history delta IS the schedule: every "scheduled" event the replay appends becomes a
 * work item of the same turn, every "timer" event a delayed message, and durq commits the
 * three together. A crash before the ack commits loses nothing (the messages are still
 * there and the next turn replays the same way); after it, the actions exist exactly once.
 */
#include "rt_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TASK_ACTIVITY = 1, TASK_TIMER, TASK_EVENT };

struct rt_ctx {
	const char *instance_id;
	int64_t now_ms;     /* the turn's time: only used when a timer is first scheduled */
	rt_history *h;
	uint64_t seq;       /* last sequence number handed out in this replay */
	char **waits;       /* names of the event tasks handed out, in order */
	size_t n_waits;
	char *status;       /* custom status set by this replay, or NULL */
	int finished;       /* DURQ_STATUS_COMPLETED / _FAILED once rt_complete / rt_fail ran */
	char *output;
	char error[256];    /* set: the replay went wrong and the instance fails with this */
};

static void ctx_error(rt_ctx *ctx, const char *fmt, ...)
{
	if (ctx->error[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
	va_end(ap);
}

/* The action already recorded under seq (a "scheduled" or "timer" event), or -1. */
static long find_action(const rt_history *h, uint64_t seq)
{
	long a = rt_history_find(h, RT_H_SCHEDULED, seq);
	return a >= 0 ? a : rt_history_find(h, RT_H_TIMER, seq);
}

/* A replay that asks for something else than the history recorded under the same number:
 * the code changed under a running instance, or it is not deterministic. */
static void nondeterminism(rt_ctx *ctx, uint64_t seq, const char *asked, const rt_hevent *had)
{
	ctx_error(ctx, "nondeterminism at action %" PRIu64 ": the code asks for %s, the history has "
		       "%s %s", seq, asked, had->type == RT_H_TIMER ? "a timer" : "activity",
		  had->name);
}

rt_task rt_activity(rt_ctx *ctx, const char *name, const char *input)
{
	rt_task t = {.type = TASK_ACTIVITY, .seq = ++ctx->seq};
	if (ctx->error[0] || ctx->finished)
		return t;
	long i = find_action(ctx->h, t.seq);
	if (i < 0) {
		if (rt_history_push(ctx->h, RT_H_SCHEDULED, t.seq, name, input) < 0)
			ctx_error(ctx, "out of memory");
	} else if (ctx->h->ev[i].type != RT_H_SCHEDULED || strcmp(ctx->h->ev[i].name, name) != 0) {
		nondeterminism(ctx, t.seq, name, &ctx->h->ev[i]);
	}
	return t;
}

rt_task rt_timer(rt_ctx *ctx, int64_t ms)
{
	rt_task t = {.type = TASK_TIMER, .seq = ++ctx->seq};
	if (ctx->error[0] || ctx->finished)
		return t;
	long i = find_action(ctx->h, t.seq);
	if (i < 0) {
		char due[32];
		snprintf(due, sizeof due, "%" PRId64, ctx->now_ms + ms);
		if (rt_history_push(ctx->h, RT_H_TIMER, t.seq, due, "") < 0)
			ctx_error(ctx, "out of memory");
	} else if (ctx->h->ev[i].type != RT_H_TIMER) {
		nondeterminism(ctx, t.seq, "a timer", &ctx->h->ev[i]);
	}
	return t;
}

rt_task rt_event(rt_ctx *ctx, const char *name)
{
	rt_task t = {.type = TASK_EVENT, .seq = ++ctx->seq, .event = name, .ordinal = 1};
	for (size_t i = 0; i < ctx->n_waits; i++)
		t.ordinal += strcmp(ctx->waits[i], name) == 0;
	char **w = realloc(ctx->waits, (ctx->n_waits + 1) * sizeof *w);
	if (!w || !(w[ctx->n_waits] = strdup(name))) {
		if (w)
			ctx->waits = w;
		ctx_error(ctx, "out of memory");
		return t;
	}
	ctx->waits = w;
	ctx->n_waits++;
	return t;
}

/* The ordinal-th "event" of this name in the history, or -1. */
static long find_event(const rt_history *h, const char *name, int ordinal)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->ev[i].type == RT_H_EVENT && strcmp(h->ev[i].name, name) == 0 && --ordinal == 0)
			return (long)i;
	return -1;
}

int rt_await(rt_ctx *ctx, rt_task t, rt_result *out)
{
	long i = -1;
	if (ctx->error[0])
		return 0;
	if (t.type == TASK_ACTIVITY)
		i = rt_history_find(ctx->h, RT_H_RESULT, t.seq);
	else if (t.type == TASK_TIMER)
		i = rt_history_find(ctx->h, RT_H_FIRED, t.seq);
	else if (t.type == TASK_EVENT)
		i = find_event(ctx->h, t.event, t.ordinal);
	if (i < 0)
		return 0;
	if (out) {
		const rt_hevent *e = &ctx->h->ev[i];
		out->ok = e->type != RT_H_RESULT || strcmp(e->name, "ok") == 0;
		out->value = e->value; /* its own allocation: valid while the history lives */
	}
	return 1;
}

int rt_await_all(rt_ctx *ctx, const rt_task *tasks, size_t n)
{
	int all = 1;
	for (size_t i = 0; i < n; i++)
		all &= rt_await(ctx, tasks[i], NULL);
	return all;
}

void rt_set_status(rt_ctx *ctx, const char *status)
{
	char *s = strdup(status);
	if (!s) {
		ctx_error(ctx, "out of memory");
		return;
	}
	free(ctx->status);
	ctx->status = s;
}

static int finish(rt_ctx *ctx, int status, const char *output)
{
	if (ctx->finished || ctx->error[0])
		return RT_DONE;
	if (!(ctx->output = strdup(output))) {
		ctx_error(ctx, "out of memory");
		return RT_DONE;
	}
	ctx->finished = status;
	return RT_DONE;
}

int rt_complete(rt_ctx *ctx, const char *output)
{
	return finish(ctx, DURQ_STATUS_COMPLETED, output);
}

int rt_fail(rt_ctx *ctx, const char *reason)
{
	return finish(ctx, DURQ_STATUS_FAILED, reason);
}

const char *rt_instance_id(const rt_ctx *ctx)
{
	return ctx->instance_id;
}

static void ctx_clear(rt_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_waits; i++)
		free(ctx->waits[i]);
	free(ctx->waits);
	free(ctx->status);
	free(ctx->output);
}

/* ---- turning messages into history ---------------------------------------------------- */

static long first_of(const rt_history *h, int type)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->ev[i].type == type)
			return (long)i;
	return -1;
}

/* Messages are delivered at least once; only what is new enters the history. */
static int is_new(const rt_history *h, const rt_hevent *e)
{
	switch (e->type) {
	case RT_H_STARTED:
		return first_of(h, RT_H_STARTED) < 0;
	case RT_H_RESULT: /* of an activity we scheduled, once */
		return rt_history_find(h, RT_H_SCHEDULED, e->seq) >= 0 &&
		       rt_history_find(h, RT_H_RESULT, e->seq) < 0;
	case RT_H_FIRED:
		return rt_history_find(h, RT_H_TIMER, e->seq) >= 0 &&
		       rt_history_find(h, RT_H_FIRED, e->seq) < 0;
	case RT_H_EVENT: /* external: each one raised counts */
		return 1;
	default: /* the other types are written by turns, never sent */
		return 0;
	}
}

/* Append the event a message carries, unless it is stale (another execution), a duplicate
 * or not ours: those are dropped, and the ack deletes the message all the same. */
static int absorb(rt_history *h, uint64_t execution_id, const durq_turn_message *m)
{
	uint64_t mexec;
	rt_hevent e;
	if (rt_message_decode(&mexec, &e, m->payload, m->payload_len) < 0)
		return 0;
	if ((mexec != 0 && mexec != execution_id) || !is_new(h, &e)) {
		rt_hevent_clear(&e);
		return 0;
	}
	return rt_history_take(h, &e);
}

/* ---- the plan: what the turn commits ----------------------------------------------------- */

void rt_plan_free(rt_plan *p)
{
	for (size_t i = 0; i < p->n_bufs; i++)
		free(p->bufs[i]);
	free(p->bufs);
	free(p->events);
	free(p->work);
	free(p->timers);
	free(p->name);
	free(p->output);
	free(p->custom_status);
	*p = (rt_plan){0};
}

static char *plan_keep(rt_plan *p, char *buf)
{
	if (buf)
		p->bufs[p->n_bufs++] = buf;
	return buf;
}

/* One new history event: stored as it is; a "scheduled" event is also the payload of its
 * work item, a "timer" event also becomes the "fired" message due at its time. */
static int plan_event(rt_plan *p, const durq_turn *turn, uint64_t execution_id,
		      const rt_hevent *e, uint64_t event_id)
{
	char *buf;
	size_t len;
	if (rt_hevent_encode(e, &buf, &len) < 0 || !plan_keep(p, buf))
		return -1;
	durq_turn_result *r = &p->result;
	p->events[r->n_history++] = (durq_event){.event_id = event_id, .payload = buf,
						  .payload_len = len};
	if (e->type == RT_H_SCHEDULED) {
		p->work[r->n_work++] = (durq_work){
			.queue = RT_QUEUE, .instance_id = turn->instance_id,
			.execution_id = execution_id, .activity_id = e->seq,
			.payload = buf, .payload_len = len};
	} else if (e->type == RT_H_TIMER) {
		rt_hevent fired = {.type = RT_H_FIRED, .seq = e->seq, .name = "", .value = ""};
		if (rt_message_encode(execution_id, &fired, &buf, &len) < 0 || !plan_keep(p, buf))
			return -1;
		p->timers[r->n_messages++] = (durq_message){
			.instance_id = turn->instance_id, .kind = RT_H_FIRED, .payload = buf,
			.payload_len = len, .visible_at_ms = strtoll(e->name, NULL, 10)};
	}
	return 0;
}

static int plan_build(rt_plan *p, const durq_turn *turn, uint64_t execution_id,
		      const rt_history *h, size_t from, rt_ctx *ctx)
{
	size_t n = h->n - from + 1;
	uint64_t last_id = turn->n_history ? turn->history[turn->n_history - 1].event_id : 0;
	p->events = calloc(n, sizeof *p->events);
	p->work = calloc(n, sizeof *p->work);
	p->timers = calloc(n, sizeof *p->timers);
	p->bufs = calloc(2 * n, sizeof *p->bufs);
	if (!p->events || !p->work || !p->timers || !p->bufs)
		return -1;
	p->result.history = p->events;
	p->result.work = p->work;
	p->result.messages = p->timers;
	for (size_t i = from; i < h->n; i++)
		if (plan_event(p, turn, execution_id, &h->ev[i], last_id + 1 + (i - from)) < 0)
			return -1;
	long s = first_of(h, RT_H_STARTED);
	if (!turn->exists && s >= 0) { /* the name is stored when the instance is created */
		if (!(p->name = strdup(h->ev[s].name)))
			return -1;
		p->result.name = p->name;
	}
	if (ctx->status) { /* set on every turn that reaches rt_set_status: last one wins */
		p->custom_status = ctx->status;
		ctx->status = NULL;
		p->result.set_custom_status = 1;
		p->result.custom_status = p->custom_status;
		p->result.custom_status_len = strlen(p->custom_status);
	}
	if (ctx->finished) {
		p->finished = p->result.status = ctx->finished;
		p->output = ctx->output;
		ctx->output = NULL;
		p->result.output = p->output;
		p->result.output_len = strlen(p->output);
	}
	return 0;
}

/* ---- one turn ------------------------------------------------------------------------ */

static int terminal(int status)
{
	return status == DURQ_STATUS_COMPLETED || status == DURQ_STATUS_FAILED ||
	       status == DURQ_STATUS_TERMINATED;
}

/* Run the orchestration against the history and append its outcome, if any. */
static int replay(rt *r, rt_ctx *ctx, rt_history *h, long started)
{
	rt_orchestration_fn fn = rt_find_orchestration(r, h->ev[started].name);
	if (!fn)
		ctx_error(ctx, "no orchestration named '%s'", h->ev[started].name);
	else
		fn(ctx, h->ev[started].value);
	if (ctx->error[0]) { /* the instance fails, with the reason as its output */
		free(ctx->output);
		if (!(ctx->output = strdup(ctx->error)))
			return -1;
		ctx->finished = DURQ_STATUS_FAILED;
	}
	if (!ctx->finished)
		return 0;
	return rt_history_push(h, ctx->finished == DURQ_STATUS_COMPLETED ? RT_H_COMPLETED
									   : RT_H_FAILED,
			       0, "", ctx->output);
}

int rt_replay_turn(rt *r, const durq_turn *turn, int64_t now_ms, rt_plan *plan)
{
	rt_history h = {0};
	rt_ctx ctx = {.instance_id = turn->instance_id, .now_ms = now_ms, .h = &h};
	uint64_t execution_id = turn->exists ? turn->execution_id : 1;
	int rc = -1;
	*plan = (rt_plan){.action = RT_PLAN_ACK, .result = DURQ_TURN_RESULT_INIT};

	for (size_t i = 0; i < turn->n_history; i++) {
		rt_hevent e;
		if (rt_hevent_decode(&e, turn->history[i].payload, turn->history[i].payload_len) <
			    0 ||
		    rt_history_take(&h, &e) < 0)
			goto out; /* not our history (or no memory): leave the turn alone */
	}
	size_t n_stored = h.n;
	/* Finished instances keep their history: a late message (a duplicate result, an event
	 * nobody waits for) is deleted by an ack that changes nothing (status 0 = as stored). */
	if (turn->exists && terminal(turn->status)) {
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < turn->n_messages; i++)
		if (absorb(&h, execution_id, &turn->messages[i]) < 0)
			goto out;
	long started = first_of(&h, RT_H_STARTED);
	if (started < 0) { /* events before the start: give them back a few times, then drop
			    * them (DURQ_TURN_DISCARD: no instance is made of them) */
		if (turn->attempt < RT_EARLY_MESSAGE_ATTEMPTS)
			plan->action = RT_PLAN_ABANDON;
		else
			plan->result.flags = DURQ_TURN_DISCARD;
		rc = 0;
		goto out;
	}
	if (replay(r, &ctx, &h, started) < 0)
		goto out;
	rc = plan_build(plan, turn, execution_id, &h, n_stored, &ctx);
out:
	ctx_clear(&ctx);
	rt_history_clear(&h);
	if (rc < 0)
		rt_plan_free(plan);
	return rc;
}
