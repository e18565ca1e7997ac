/*
 * async.c — asynchronous writes: an op is copied (inputs and all they point to, into one
 * allocation), posted to the committer without waiting, and completed after its COMMIT by a
 * callback and/or a group countdown. Also durq_flush and the batch ack. Per-op mode runs
 * the op on the caller's thread and completes it before the submit returns.
 * Does not own: the committer's ring and batches (committer.c), argument checks (api.c).
 */
#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>

#include "durq_internal.h"

/* ---- groups ------------------------------------------------------------------------- */

struct durq_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t pending;  /* ops submitted and not completed */
	size_t failed;
	int refs;        /* the owner + one per pending op */
};

int durq_group_new(durq_group **out)
{
	if (!out)
		return durq_error_set(DURQ_EINVAL, "durq_group_new: out is NULL");
	durq_group *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;
	if (!g)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	int rc = pthread_condattr_init(&ca);
	if (rc == 0) {
		if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
			rc = pthread_cond_init(&g->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc == 0 && (rc = pthread_mutex_init(&g->mu, NULL)) != 0)
		pthread_cond_destroy(&g->cv);
	if (rc != 0) {
		free(g);
		return durq_error_set(DURQ_ENOMEM, "durq_group_new: cannot create its lock");
	}
	g->refs = 1;
	*out = g;
	return DURQ_OK;
}

static void group_unref_locked(durq_group *g)
{
	if (--g->refs > 0) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	pthread_mutex_unlock(&g->mu);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static void group_add(durq_group *g)
{
	pthread_mutex_lock(&g->mu);
	g->pending++;
	g->refs++;
	pthread_mutex_unlock(&g->mu);
}

/* An op of the group completed (or was never submitted after group_add). */
static void group_done(durq_group *g, int rc)
{
	pthread_mutex_lock(&g->mu);
	g->pending--;
	if (rc < 0)
		g->failed++;
	if (g->pending == 0)
		pthread_cond_broadcast(&g->cv);
	group_unref_locked(g);
}

int durq_group_wait(durq_group *g, int timeout_ms, size_t *failed)
{
	if (!g)
		return durq_error_set(DURQ_EINVAL, "durq_group_wait: group is NULL");
	if (durq_in_writer() && timeout_ms != 0)
		return durq_error_set(DURQ_EINVAL, "durq_group_wait from a durq callback on the "
				      "writing thread: the ops it waits for need this thread; use "
				      "timeout 0 to poll");
	struct timespec ts;
	if (timeout_ms >= 0)
		durq_deadline_to_timespec(&ts, durq_clock_mono_ns() +
						       (uint64_t)timeout_ms * 1000000ull);
	int rc = DURQ_OK;
	pthread_mutex_lock(&g->mu);
	while (g->pending > 0 && rc == DURQ_OK) {
		if (timeout_ms < 0)
			pthread_cond_wait(&g->cv, &g->mu);
		else if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT && g->pending)
			rc = durq_error_set(DURQ_ETIMEDOUT, "%zu ops still pending after %d ms",
					    g->pending, timeout_ms);
	}
	if (failed)
		*failed = g->failed;
	pthread_mutex_unlock(&g->mu);
	return rc;
}

void durq_group_free(durq_group *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	group_unref_locked(g);
}

/* ---- copying an op's inputs --------------------------------------------------------- */

/* Two passes over the same code: sizing (buf NULL, nothing written), then copying. */
typedef struct arena {
	char *buf;
	size_t used;
} arena;

static void *take(arena *a, const void *src, size_t n)
{
	size_t align = alignof(max_align_t);
	size_t off = (a->used + align - 1) & ~(align - 1);
	a->used = off + n;
	if (!a->buf)
		return NULL;
	if (src && n)
		memcpy(a->buf + off, src, n);
	return a->buf + off;
}

static const char *take_str(arena *a, const char *s)
{
	return s ? take(a, s, strlen(s) + 1) : NULL;
}

static const void *take_bytes(arena *a, const void *p, size_t n)
{
	return p ? take(a, p, n ? n : 1) : NULL;
}

static const durq_message *take_msgs(arena *a, const durq_message *m, size_t n)
{
	durq_message *out = take(a, m, n * sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		const char *id = take_str(a, m[i].instance_id);
		const void *pl = take_bytes(a, m[i].payload, m[i].payload_len);
		if (out) {
			out[i].instance_id = id;
			out[i].payload = pl;
		}
	}
	return out;
}

static const durq_work *take_work(arena *a, const durq_work *w, size_t n)
{
	durq_work *out = take(a, w, n * sizeof(*w));
	for (size_t i = 0; i < n; i++) {
		const char *q = take_str(a, w[i].queue), *id = take_str(a, w[i].instance_id);
		const char *sess = take_str(a, w[i].session_id);
		const void *pl = take_bytes(a, w[i].payload, w[i].payload_len);
		if (out) {
			out[i].queue = q;
			out[i].instance_id = id;
			out[i].session_id = sess;
			out[i].payload = pl;
		}
	}
	return out;
}

static const durq_event *take_events(arena *a, const durq_event *e, size_t n)
{
	durq_event *out = take(a, e, n * sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		const void *pl = take_bytes(a, e[i].payload, e[i].payload_len);
		if (out)
			out[i].payload = pl;
	}
	return out;
}

static const char *const *take_strs(arena *a, const char *const *s, size_t n);

static const durq_kv *take_kvs(arena *a, const durq_kv *kv, size_t n)
{
	durq_kv *out = take(a, kv, n * sizeof(*kv));
	for (size_t i = 0; i < n; i++) {
		const char *k = take_str(a, kv[i].key);
		const void *v = take_bytes(a, kv[i].value, kv[i].value_len);
		if (out) {
			out[i].key = k;
			out[i].value = v;
		}
	}
	return out;
}

static const durq_turn_result *take_result(arena *a, const durq_turn_result *r)
{
	durq_turn_result *out = take(a, r, sizeof(*r));
	durq_turn_result c = {
		.name = take_str(a, r->name),
		.version_tag = take_str(a, r->version_tag),
		.parent_id = take_str(a, r->parent_id),
		.output = take_bytes(a, r->output, r->output_len),
		.custom_status = take_bytes(a, r->custom_status, r->custom_status_len),
		.history = take_events(a, r->history, r->n_history),
		.work = take_work(a, r->work, r->n_work),
		.cancel = take(a, r->cancel, r->n_cancel * sizeof(*r->cancel)),
		.messages = take_msgs(a, r->messages, r->n_messages),
		.kv_set = take_kvs(a, r->kv_set, r->n_kv_set),
		.kv_clear = take_strs(a, r->kv_clear, r->n_kv_clear),
	};
	if (out) {
		out->name = c.name;
		out->version_tag = c.version_tag;
		out->parent_id = c.parent_id;
		out->output = c.output;
		out->custom_status = c.custom_status;
		out->history = c.history;
		out->work = c.work;
		out->cancel = c.cancel;
		out->messages = c.messages;
		out->kv_set = c.kv_set;
		out->kv_clear = c.kv_clear;
	}
	return out;
}

static const char *const *take_strs(arena *a, const char *const *s, size_t n)
{
	const char **out = take(a, s, n * sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		const char *c = take_str(a, s[i]);
		if (out)
			out[i] = c;
	}
	return out;
}

static const durq_token *take_token(arena *a, const durq_token *t)
{
	return t ? take(a, t, sizeof(*t)) : NULL;
}

/* Rewrite op's input pointers to copies in a (sizing pass: a->buf NULL, op untouched). */
static void copy_inputs(arena *a, durq_op *op)
{
	durq_op o = *op;
	switch (o.kind) {
	case DURQ_OP_ORCH_ENQUEUE:
		o.u.orch_enqueue.msgs = take_msgs(a, o.u.orch_enqueue.msgs, o.u.orch_enqueue.n);
		break;
	case DURQ_OP_WORK_ENQUEUE:
		o.u.work_enqueue.items = take_work(a, o.u.work_enqueue.items, o.u.work_enqueue.n);
		break;
	case DURQ_OP_WORK_ACK:
		o.u.work_ack.token = take_token(a, o.u.work_ack.token);
		if (o.u.work_ack.completion)
			o.u.work_ack.completion = take_msgs(a, o.u.work_ack.completion, 1);
		break;
	case DURQ_OP_WORK_ABANDON:
		o.u.work_abandon.token = take_token(a, o.u.work_abandon.token);
		break;
	case DURQ_OP_WORK_RENEW:
		o.u.work_renew.token = take_token(a, o.u.work_renew.token);
		break;
	case DURQ_OP_ORCH_ACK:
		o.u.orch_ack.instance_id = take_str(a, o.u.orch_ack.instance_id);
		o.u.orch_ack.token = take_token(a, o.u.orch_ack.token);
		o.u.orch_ack.result = take_result(a, o.u.orch_ack.result);
		break;
	case DURQ_OP_ORCH_ABANDON:
		o.u.orch_abandon.instance_id = take_str(a, o.u.orch_abandon.instance_id);
		o.u.orch_abandon.token = take_token(a, o.u.orch_abandon.token);
		break;
	case DURQ_OP_ORCH_RENEW:
		o.u.orch_renew.instance_id = take_str(a, o.u.orch_renew.instance_id);
		o.u.orch_renew.token = take_token(a, o.u.orch_renew.token);
		break;
	case DURQ_OP_INSTANCE_DELETE:
		o.u.instance_delete.instance_id = take_str(a, o.u.instance_delete.instance_id);
		break;
	case DURQ_OP_EXECUTION_PRUNE:
		o.u.execution_prune.instance_id = take_str(a, o.u.execution_prune.instance_id);
		break;
	case DURQ_OP_INSTANCE_DELETE_MANY:
		o.u.instance_delete_many.ids = take_strs(a, o.u.instance_delete_many.ids,
							 o.u.instance_delete_many.n);
		break;
	case DURQ_OP_SESSION_RENEW:
		o.u.session.owners = take_strs(a, o.u.session.owners, o.u.session.n);
		break;
	default: /* dead_requeue, flush: nothing points outside the op */
		break;
	}
	if (a->buf)
		*op = o;
}

/* A pending op that owns its inputs: one allocation, the durq_pending first. */
static durq_pending *pending_new(const durq_op *op, const durq_async *how)
{
	arena a = {NULL, sizeof(durq_pending)};
	durq_op sized = *op;
	copy_inputs(&a, &sized);
	if (!(a.buf = malloc(a.used)))
		return NULL;
	durq_pending *p = (durq_pending *)a.buf;
	memset(p, 0, sizeof(*p));
	p->op = *op;
	a.used = sizeof(durq_pending);
	copy_inputs(&a, &p->op);
	p->async = true;
	if (how) {
		p->done_fn = how->done;
		p->done_ctx = how->ctx;
		p->group = how->group;
	}
	return p;
}

/* ---- completing --------------------------------------------------------------------- */

void durq_async_complete(struct durq_pending *p)
{
	if (p->counters && p->rc == DURQ_OK) /* an ack: submit -> durable, before its callback */
		durq_stats_ack(p->counters, p->op.kind, durq_clock_mono_ns() - p->submit_ns);
	if (p->done_fn) {
		durq_completion c = {.rc = p->rc, .message = p->rc < 0 ? p->errmsg : "",
				     .kind = p->op.kind};
		if (p->op.kind == DURQ_OP_WORK_RENEW)
			c.lease_until_ms = p->op.u.work_renew.lease_until;
		else if (p->op.kind == DURQ_OP_ORCH_RENEW)
			c.lease_until_ms = p->op.u.orch_renew.lease_until;
		else if (p->op.kind == DURQ_OP_EXECUTION_PRUNE)
			c.count = p->op.u.execution_prune.pruned;
		else if (p->op.kind == DURQ_OP_INSTANCE_DELETE_MANY ||
			 p->op.kind == DURQ_OP_INSTANCE_PURGE)
			c.count = (size_t)p->op.u.instance_delete_many.counts.instances;
		else if (p->op.kind == DURQ_OP_SESSION_RENEW ||
			 p->op.kind == DURQ_OP_SESSION_CLEANUP)
			c.count = p->op.u.session.count;
		p->done_fn(p->done_ctx, &c);
	}
	if (p->group)
		group_done(p->group, p->rc);
	free(p);
}

/* ---- submitting --------------------------------------------------------------------- */

int durq_exec_async(durq *db, durq_op *op, const durq_async *how)
{
	durq_pending *p = pending_new(op, how);
	if (!p)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	if (p->group)
		group_add(p->group);
	if (op->kind == DURQ_OP_WORK_ACK || op->kind == DURQ_OP_ORCH_ACK) {
		p->counters = &db->counters; /* its latency is counted at completion */
		p->submit_ns = durq_clock_mono_ns();
	}
	if (db->opts.commit_mode != DURQ_COMMIT_GROUP) {
		/* per-op: run here, complete before returning (documented in durq.h) */
		p->rc = durq_exec(db, &p->op);
		if (p->rc < 0)
			durq_error_copy(p->errmsg, sizeof(p->errmsg));
		durq_async_complete(p);
		return DURQ_OK;
	}
	bool nowait = how && (how->flags & DURQ_SUBMIT_NOWAIT);
	if (op->kind < DURQ_OP__COUNT) /* a stats publication, if due, goes just ahead */
		durq_publish_post(db, durq_op_is_claim(op));
	int rc = durq_committer_post(&db->committer, p, nowait);
	if (rc < 0) {
		if (p->group)
			group_done(p->group, DURQ_OK); /* never submitted: not counted as failed */
		free(p);
	}
	return rc;
}

int durq_flush(durq *db, int timeout_ms)
{
	durq_group *g;
	if (db && durq_in_writer())
		return durq_error_set(DURQ_EINVAL, "durq_flush called from a durq callback on the "
				      "writing thread; it would wait for itself");
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (db->opts.commit_mode != DURQ_COMMIT_GROUP) {
		durq_api_leave(db); /* per-op: every op completed before its call returned */
		return DURQ_OK;
	}
	if ((rc = durq_group_new(&g)) == DURQ_OK) {
		/* the committer takes ops in order: once this marker completes, so has every op
		 * posted before it */
		durq_op marker = {.kind = DURQ_OP_FLUSH};
		durq_async how = {.group = g};
		if ((rc = durq_exec_async(db, &marker, &how)) == DURQ_OK)
			rc = durq_group_wait(g, timeout_ms, NULL);
		durq_group_free(g);
	}
	durq_api_leave(db);
	return rc;
}

static void ack_many_done(void *ctx, const durq_completion *c)
{
	*(int *)ctx = c->rc;
}

int durq_exec_ack_many(durq *db, const durq_work_ack_req *reqs, size_t n, int *rcs)
{
	durq_group *g;
	if (durq_in_writer())
		return durq_error_set(DURQ_EINVAL, "durq_work_ack_many called from a durq callback "
				      "on the writing thread; it would wait for itself");
	int rc = durq_group_new(&g);
	int *own = rcs ? NULL : calloc(n ? n : 1, sizeof(int));
	if (rc < 0 || (!rcs && !own)) {
		durq_group_free(rc < 0 ? NULL : g);
		free(own);
		return rc < 0 ? rc : durq_error_set(DURQ_ENOMEM, "out of memory");
	}
	int *out = rcs ? rcs : own;
	for (size_t i = 0; i < n; i++) {
		durq_op op = {.kind = DURQ_OP_WORK_ACK,
			      .u.work_ack = {reqs[i].id, reqs[i].token, reqs[i].completion}};
		durq_async how = {.done = ack_many_done, .ctx = &out[i], .group = g};
		out[i] = DURQ_OK; /* the callback may run before the submit returns */
		int src = durq_exec_async(db, &op, &how);
		if (src < 0)
			out[i] = src; /* never submitted: no callback will write it */
	}
	durq_group_wait(g, -1, NULL);
	durq_group_free(g);
	rc = DURQ_OK;
	char msg[DURQ_ERRMSG_MAX] = "";
	for (size_t i = 0; i < n && rc == DURQ_OK; i++)
		if (out[i] < 0) {
			rc = out[i];
			snprintf(msg, sizeof(msg), "ack %zu of %zu (item %lld) failed: %s", i, n,
				 (long long)reqs[i].id, durq_error_name(out[i]));
		}
	free(own);
	return rc < 0 ? durq_error_set(rc, "%s", msg) : DURQ_OK;
}
