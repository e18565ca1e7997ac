/*
 * runtime.h — a small durable workflow runtime built on durq's public API (durq.h only).
 *
 * Owns: orchestrations written as plain C functions replayed from history ("await activity /
 * timer / event" in a deterministic style), the orchestrator and worker threads that drive
 * them, and the text encoding of history events and messages. Does not own: storage,
 * leases, transactions (durq does all of that); the workflows themselves (order.c).
 *
 * How an orchestration is written. The function is re-run from the top on every turn. Each
 * rt_activity / rt_timer / rt_event call takes the next sequence number; the runtime looks
 * that number up in the history: if the action is there, the call is a replay and nothing is
 * scheduled again; if not, the action is new and is scheduled when the turn commits.
 * rt_await says whether the action has finished (its result is in the history); when it has
 * not, the function returns RT_SUSPEND and the turn ends. So the function must be
 * deterministic: same history, same calls in the same order (no clocks, no random numbers,
 * no I/O; do those in activities).
 *
 *	static int hello(rt_ctx *ctx, const char *input)
 *	{
 *		rt_result r;
 *		if (!rt_await(ctx, rt_activity(ctx, "greet", input), &r))
 *			return RT_SUSPEND;
 *		return rt_complete(ctx, r.value);
 *	}
 *
 * Threads: rt_start runs orchestrator and worker threads on one durq handle; the callbacks
 * (rt_hooks) run on those threads or on durq's committer thread and must be short.
 */
#ifndef RT_RUNTIME_H
#define RT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <durq.h>

typedef struct rt rt;
typedef struct rt_ctx rt_ctx;
typedef struct rt_actx rt_actx;

/* What an orchestration function returns. */
enum { RT_SUSPEND = 0, RT_DONE = 1 };

/* What an activity function returns. */
enum { RT_ACTIVITY_OK = 0, RT_ACTIVITY_FAILED = 1 };

/* An action of an orchestration: a handle to pass to rt_await. */
typedef struct rt_task {
	int type;          /* activity, timer or event */
	uint64_t seq;      /* the deterministic sequence number */
	const char *event; /* event tasks: the name awaited */
	int ordinal;       /* event tasks: 1 = the first event of that name, 2 = the second... */
} rt_task;

/* The outcome of a finished action. value points into the turn's history: valid until the
 * orchestration function returns. */
typedef struct rt_result {
	int ok;            /* activities: 0 if the activity reported a failure */
	const char *value; /* the activity's output or error, the event's data, "" for timers */
} rt_result;

typedef int (*rt_orchestration_fn)(rt_ctx *ctx, const char *input);
/* Write at most out_len - 1 bytes of output (or of the error message) into out. */
typedef int (*rt_activity_fn)(rt_actx *a, const char *input, char *out, size_t out_len);

/* ---- inside an orchestration -------------------------------------------------------- */

/* Schedule activity `name` with `input` (or find it in the history). */
rt_task rt_activity(rt_ctx *ctx, const char *name, const char *input);
/* A durable timer firing `ms` after the turn that first reached this call. */
rt_task rt_timer(rt_ctx *ctx, int64_t ms);
/* Wait for the next external event `name` (raised with rt_raise_event). */
rt_task rt_event(rt_ctx *ctx, const char *name);
/* 1 if the task has finished (*out filled, out may be NULL), 0 if the turn must suspend. */
int rt_await(rt_ctx *ctx, rt_task task, rt_result *out);
/* 1 if all n tasks have finished (fan-in); results with rt_await afterwards. */
int rt_await_all(rt_ctx *ctx, const rt_task *tasks, size_t n);
/* Custom status stored with the instance (readable by anyone with durq_instance_get). */
void rt_set_status(rt_ctx *ctx, const char *status);
/* Finish the orchestration: COMPLETED with output, or FAILED with a reason. Return their
 * value from the orchestration function. */
int rt_complete(rt_ctx *ctx, const char *output);
int rt_fail(rt_ctx *ctx, const char *reason);
const char *rt_instance_id(const rt_ctx *ctx);

/* ---- inside an activity ------------------------------------------------------------- */

const char *rt_activity_instance(const rt_actx *a);
int rt_activity_attempt(const rt_actx *a); /* durq's delivery count: 2+ after a crash */
/* Call from long activities: renews the item's lease when half of it is used up. */
void rt_heartbeat(rt_actx *a);

/* ---- the runtime -------------------------------------------------------------------- */

typedef struct rt_hooks {
	/* An instance reached COMPLETED or FAILED (called after the commit). */
	void (*finished)(void *ctx, const char *instance_id, int status);
	void *ctx;
} rt_hooks;

typedef struct rt_config {
	int orchestrators;        /* orchestrator threads (default 1) */
	int workers;              /* activity worker threads (default 4) */
	int64_t orch_lease_ms;    /* lease of a turn (default 5000) */
	int64_t work_lease_ms;    /* lease of an activity (default 5000) */
	int poll_ms;              /* longest blocking fetch: bounds rt_stop's wait (default 250) */
	rt_hooks hooks;
} rt_config;

/* Counters of this process (relaxed: for the summary). */
typedef struct rt_counters {
	uint64_t turns, turns_failed;
	uint64_t activities_run, activities_failed;
	uint64_t redelivered; /* activity items delivered again (a lease expired: a crash) */
	uint64_t acks_failed;
} rt_counters;

int rt_new(rt **out, durq *db, const rt_config *cfg);
int rt_register_orchestration(rt *r, const char *name, rt_orchestration_fn fn);
int rt_register_activity(rt *r, const char *name, rt_activity_fn fn);
/* Start the threads. Register everything first. */
int rt_start(rt *r);
/* Without threads: fetch one turn (waiting up to timeout_ms), run it and ack it
 * synchronously. DURQ_OK, DURQ_EMPTY if no instance had work, or the ack's error. */
int rt_turn_once(rt *r, int timeout_ms);
/* Stop the threads (each finishes what it holds) and wait for every async ack to commit. */
void rt_stop(rt *r);
void rt_counters_get(rt *r, rt_counters *out);
void rt_free(rt *r);

/* ---- outside: start instances, raise events ----------------------------------------- */

/* One instance to start: orchestration `name` with `input`, its start message visible after
 * delay_ms. */
typedef struct rt_start_req {
	const char *instance_id;
	const char *name;
	const char *input;
	int64_t delay_ms;
} rt_start_req;

/* Start n instances in one durq_orch_enqueue: all of them or none. A start for an instance
 * that already started is ignored by the runtime. */
int rt_start_instances(durq *db, const rt_start_req *reqs, size_t n);
/* Raise external event `name` with `data` for an instance (at-least-once: raising it twice
 * appends it twice; rt_event takes them in order). */
int rt_raise_event(durq *db, const char *instance_id, const char *name, const char *data);

#endif /* RT_RUNTIME_H */
