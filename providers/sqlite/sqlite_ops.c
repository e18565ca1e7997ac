/*
 * sqlite_ops.c — the SQLite provider's write ops: each applies one durq_op inside the
 * transaction (and savepoint) the core opened, with prepared statements only. A failing op
 * returns its code and leaves rollback to the core.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

#define TRY(expr)                      \
	do {                           \
		int try_rc_ = (expr);  \
		if (try_rc_ < 0)       \
			return try_rc_; \
	} while (0)

static int insert_message(sq_conn *c, const durq_message *m, int64_t now)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_ORCH_INSERT);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, m->instance_id, -1, SQLITE_STATIC);
	sq_bind_int(c, s, 2, m->kind);
	sq_bind_blob(c, s, 3, m->payload ? m->payload : "", m->payload_len);
	sq_bind_int64(c, s, 4, durq_message_visible_at(m, now));
	sq_bind_int64(c, s, 5, now);
	return sq_exec(c, s, "enqueue orchestrator message");
}

static int insert_work(sq_conn *c, const durq_work *w, int64_t now)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_WORK_INSERT);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, w->queue ? w->queue : "", -1, SQLITE_STATIC);
	if (w->instance_id) {
		sq_bind_text(c, s, 2, w->instance_id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 3, (sqlite3_int64)w->execution_id);
		sq_bind_int64(c, s, 4, (sqlite3_int64)w->activity_id);
	}
	sq_bind_int(c, s, 5, w->priority);
	sq_bind_blob(c, s, 6, w->payload ? w->payload : "", w->payload_len);
	sq_bind_int64(c, s, 7, durq_work_visible_at(w, now));
	sq_bind_int64(c, s, 8, now);
	sq_bind_text(c, s, 9, w->session_id, -1, SQLITE_STATIC); /* G1; NULL: none */
	return sq_exec(c, s, "enqueue work item");
}

/* Bind ?1 = text id and run; returns 1 if a row came back, 0 if none, <0 on error. */
static int exists_by_id(sq_conn *c, enum sq_stmt_id id, const char *key, const durq_token *t,
			int64_t now)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, key, -1, SQLITE_STATIC);
	if (t) {
		sq_bind_token(c, s, 2, t);
		sq_bind_int64(c, s, 3, now);
	}
	int rc = sq_step(c, s);
	int out = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sq_error(c, rc, "lookup");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return out;
}

static int exec_id(sq_conn *c, enum sq_stmt_id id, const char *key, const char *what)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, key, -1, SQLITE_STATIC);
	return sq_exec(c, s, what);
}

/* Delete exactly the messages tagged with this lease token. */
static int delete_tagged(sq_conn *c, const char *key, const durq_token *t)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_DELETE_TAGGED);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, key, -1, SQLITE_STATIC);
	sq_bind_token(c, s, 2, t);
	return sq_exec(c, s, "delete messages");
}

static int exec_id_now(sq_conn *c, enum sq_stmt_id id, const char *key, int64_t now,
		       const char *what)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, key, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, now);
	return sq_exec(c, s, what);
}

/* ---- orchestration claim ------------------------------------------------------------ */

/* The next instance to lease: an expired lease first, then the oldest ready message; with
 * a filter (G4) only instances in the claim's runtime-version range, the others skipped
 * without a lease. */
static int pick_instance(sq_conn *c, const durq_op *op, int64_t now, char **out)
{
	int f = op->u.orch_claim.filtered;
	enum sq_stmt_id order[2] = {f ? SQ_CLAIM_EXPIRED_FILTERED : SQ_CLAIM_EXPIRED_INSTANCE,
				    f ? SQ_CLAIM_READY_FILTERED : SQ_CLAIM_READY_INSTANCE};
	*out = NULL;
	for (int i = 0; i < 2 && !*out; i++) {
		sqlite3_stmt *s = sq_stmt(c, order[i]);
		if (!s)
			return DURQ_EIO;
		sq_bind_int64(c, s, 1, now);
		if (f) {
			sq_bind_int64(c, s, 2, op->u.orch_claim.min_version);
			sq_bind_int64(c, s, 3, op->u.orch_claim.max_version);
		}
		int rc = sq_step(c, s);
		if (rc == SQLITE_ROW && !(*out = sq_col_text(c, s, 0)))
			rc = sq_check(c) != SQLITE_OK ? SQLITE_NOMEM : SQLITE_CORRUPT;
		sqlite3_reset(s);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sq_error(c, rc, "pick instance");
	}
	return *out ? DURQ_OK : DURQ_EMPTY;
}

static int cmp_msg(const void *a, const void *b)
{
	const durq_turn_message *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int tag_messages(sq_conn *c, durq_turn *t, int64_t now)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_TAG_MESSAGES);
	size_t cap = 0;
	int rc;
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, t->instance_id, -1, SQLITE_STATIC);
	sq_bind_token(c, s, 2, &t->token);
	sq_bind_int64(c, s, 3, now);
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		if (t->n_messages == cap) {
			cap = cap ? cap * 2 : 8;
			void *m = durq_mem_realloc(t->messages, cap * sizeof(*t->messages));
			if (!m) {
				sqlite3_reset(s);
				return durq_error_set(DURQ_ENOMEM, "out of memory");
			}
			t->messages = m;
		}
		durq_turn_message *m = &t->messages[t->n_messages++];
		m->id = sqlite3_column_int64(s, 0);
		m->kind = sqlite3_column_int(s, 1);
		m->payload = sq_col_blob(c, s, 2, &m->payload_len);
		m->attempt = sqlite3_column_int(s, 3);
		if (m->attempt > t->attempt)
			t->attempt = m->attempt;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return sq_error(c, rc, "tag messages");
	qsort(t->messages, t->n_messages, sizeof(*t->messages), cmp_msg);
	return DURQ_OK;
}

static int read_head(sq_conn *c, durq_turn *t)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_INSTANCE_HEAD);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, t->instance_id, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	if (rc == SQLITE_ROW) {
		t->exists = 1;
		t->execution_id = (uint64_t)sqlite3_column_int64(s, 0);
		t->status = sqlite3_column_int(s, 1);
		t->name = sq_col_text(c, s, 2);
		t->version = sq_col_text(c, s, 3);
		t->runtime_version = sqlite3_column_int64(s, 4);
		if (sq_check(c) != SQLITE_OK)
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, "read instance");
}

/* Poison path: needs no live lease. Messages go to the dead letters, the instance fails. */
static int poison_instance(sq_conn *c, durq_turn *t, int64_t now, int max_attempts)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_DEAD_FROM_ORCH);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, t->instance_id, -1, SQLITE_STATIC);
	sq_bind_token(c, s, 2, &t->token);
	sq_bind_int64(c, s, 3, now);
	TRY(sq_exec(c, s, "dead-letter messages"));
	TRY(delete_tagged(c, t->instance_id, &t->token));
	TRY(exec_id(c, SQ_LOCK_DELETE, t->instance_id, "release lock"));
	TRY(exec_id_now(c, SQ_EXECUTION_FAIL, t->instance_id, now, "fail execution"));
	TRY(exec_id_now(c, SQ_INSTANCE_FAIL, t->instance_id, now, "fail instance"));
	if (c->p->opts->poison_policy == DURQ_POISON_RECORD)
		TRY(sq_poison_record(c, t->instance_id, t->attempt - 1, max_attempts, now));
	durq_log_emit(c->p->opts, DURQ_LOG_WARN, "POISON", "instance '%s' dead-lettered after %d "
		      "attempts (max_attempts %d)", t->instance_id, t->attempt - 1, max_attempts);
	return DURQ_OK;
}

/* The instance head and, in the same transaction, its current execution's history: one
 * round trip for the whole turn instead of a second read on a pool connection. */
static int read_turn(sq_conn *c, durq_op *op)
{
	durq_turn *t = op->u.orch_claim.out;
	TRY(read_head(c, t));
	if (t->exists) {
		TRY(sq_history_rows(c, &t->history, &t->n_history, t->instance_id, t->execution_id));
		TRY(sq_kv_rows(c, t->instance_id, &t->kv, &t->n_kv));
	}
	op->u.orch_claim.history_loaded = 1;
	return DURQ_OK;
}

static void turn_reset(durq_turn *t)
{
	durq_token tok = t->token;
	durq_turn_clear(t);
	t->token = tok;
}

/* DURQ_POISON_DELIVER: the provider only counts, nothing is ever past the limit. */
static int max_attempts(const sq_conn *c, const durq_op_ctx *ctx)
{
	return c->p->opts->poison_policy == DURQ_POISON_DELIVER ? INT_MAX : ctx->max_attempts;
}

static int orch_claim(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	durq_turn *t = op->u.orch_claim.out;
	t->token = op->token;
	t->lease_until_ms = ctx->now_ms + op->u.orch_claim.lease_ms;
	/* every poisoned round dead-letters its instance's messages, so this ends: with a turn,
	 * or with EMPTY when nothing ready is left (never EMPTY with work pending) */
	for (;;) {
		TRY(pick_instance(c, op, ctx->now_ms, &t->instance_id));
		sqlite3_stmt *s = sq_stmt(c, SQ_LOCK_UPSERT);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, t->instance_id, -1, SQLITE_STATIC);
		sq_bind_token(c, s, 2, &t->token);
		sq_bind_int64(c, s, 3, t->lease_until_ms);
		TRY(sq_exec(c, s, "lease instance"));
		TRY(tag_messages(c, t, ctx->now_ms));
		if (t->attempt <= max_attempts(c, ctx))
			return read_turn(c, op);
		TRY(poison_instance(c, t, ctx->now_ms, ctx->max_attempts));
		int64_t until = t->lease_until_ms;
		turn_reset(t);
		t->lease_until_ms = until;
	}
}

/* ---- orchestration ack -------------------------------------------------------------- */

static int lock_live(sq_conn *c, const char *id, const durq_token *t, int64_t now)
{
	int r = exists_by_id(c, SQ_LOCK_CHECK, id, t, now);
	if (r < 0)
		return r;
	return r ? DURQ_OK
		 : durq_error_set(DURQ_ELOCKLOST, "instance '%s': lease token unknown or expired",
				  id);
}

static int current_execution(sq_conn *c, const char *id, uint64_t *cur)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_INSTANCE_HEAD);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	*cur = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, "read instance");
}

/* A new execution named by the turn, or like the instance where the turn gives NULL. */
static int insert_execution(sq_conn *c, const char *id, uint64_t exec, int64_t now,
			    const durq_turn_result *r)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_EXECUTION_INSERT);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)exec);
	sq_bind_int64(c, s, 3, now);
	sq_bind_text(c, s, 4, r->name, -1, SQLITE_STATIC);
	sq_bind_text(c, s, 5, r->version_tag, -1, SQLITE_STATIC);
	return sq_exec(c, s, "insert execution");
}

/* Create the instance on its first turn, or move it to execution n+1 (continue-as-new). */
static int upsert_instance(sq_conn *c, const char *id, const durq_turn_result *r, int64_t now,
			   uint64_t *exec)
{
	uint64_t cur;
	TRY(current_execution(c, id, &cur));
	*exec = r->execution_id ? r->execution_id : (cur ? cur : 1);
	if (cur == 0) {
		if (*exec != 1)
			return durq_error_set(DURQ_EINVAL, "instance '%s' does not exist: its first "
					      "turn must use execution 1, not %llu", id,
					      (unsigned long long)*exec);
		sqlite3_stmt *s = sq_stmt(c, SQ_INSTANCE_INSERT);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
		sq_bind_text(c, s, 2, r->name, -1, SQLITE_STATIC);
		sq_bind_text(c, s, 3, r->version_tag, -1, SQLITE_STATIC);
		sq_bind_text(c, s, 4, r->parent_id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 5, now);
		TRY(sq_exec(c, s, "create instance"));
		return insert_execution(c, id, 1, now, r);
	}
	if (*exec == cur)
		return DURQ_OK;
	if (*exec != cur + 1)
		return durq_error_set(DURQ_EINVAL, "instance '%s' is at execution %llu; a turn may "
				      "use %llu or continue as new with %llu", id,
				      (unsigned long long)cur, (unsigned long long)cur,
				      (unsigned long long)cur + 1);
	sqlite3_stmt *s = sq_stmt(c, SQ_EXECUTION_CLOSE);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)cur);
	sq_bind_int64(c, s, 3, now);
	TRY(sq_exec(c, s, "close execution"));
	TRY(insert_execution(c, id, *exec, now, r));
	if (!(s = sq_stmt(c, SQ_INSTANCE_SET_EXECUTION)))
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)*exec);
	sq_bind_text(c, s, 3, r->name, -1, SQLITE_STATIC);
	sq_bind_text(c, s, 4, r->version_tag, -1, SQLITE_STATIC);
	return sq_exec(c, s, "continue as new");
}

static int append_history(sq_conn *c, const char *id, uint64_t exec, const durq_turn_result *r)
{
	for (size_t i = 0; i < r->n_history; i++) {
		sqlite3_stmt *s = sq_stmt(c, SQ_HISTORY_INSERT);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 2, (sqlite3_int64)exec);
		sq_bind_int64(c, s, 3, (sqlite3_int64)r->history[i].event_id);
		sq_bind_blob(c, s, 4, r->history[i].payload ? r->history[i].payload : "",
			     r->history[i].payload_len);
		int rc = sq_exec(c, s, "append history");
		if (rc == DURQ_EDUP)
			return durq_error_set(DURQ_EDUP, "instance '%s' execution %llu: event id %llu "
					      "already in history", id, (unsigned long long)exec,
					      (unsigned long long)r->history[i].event_id);
		TRY(rc);
	}
	return DURQ_OK;
}

static int set_status(sq_conn *c, const char *id, uint64_t exec, const durq_turn_result *r,
		      int64_t now)
{
	int status = r->status; /* 0 = leave status and output as stored */
	sqlite3_stmt *s = sq_stmt(c, SQ_INSTANCE_UPDATE);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_int(c, s, 2, status);
	sq_bind_blob(c, s, 3, r->output, r->output_len);
	sq_bind_int(c, s, 4, r->set_custom_status ? 1 : 0);
	sq_bind_blob(c, s, 5, r->custom_status, r->custom_status_len);
	sq_bind_text(c, s, 6, r->name, -1, SQLITE_STATIC);
	sq_bind_text(c, s, 7, r->version_tag, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 8, now);
	TRY(sq_exec(c, s, "update instance"));
	if (!(s = sq_stmt(c, SQ_EXECUTION_UPDATE)))
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)exec);
	sq_bind_int(c, s, 3, status);
	sq_bind_blob(c, s, 4, r->output, r->output_len);
	sq_bind_int64(c, s, 5, now);
	sq_bind_text(c, s, 6, r->name, -1, SQLITE_STATIC);
	sq_bind_text(c, s, 7, r->version_tag, -1, SQLITE_STATIC);
	return sq_exec(c, s, "update execution");
}

static int cancel_activities(sq_conn *c, const char *id, const durq_turn_result *r)
{
	for (size_t i = 0; i < r->n_cancel; i++) {
		sqlite3_stmt *s = sq_stmt(c, SQ_WORK_CANCEL);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 2, (sqlite3_int64)r->cancel[i].execution_id);
		sq_bind_int64(c, s, 3, (sqlite3_int64)r->cancel[i].activity_id);
		TRY(sq_exec(c, s, "cancel activity"));
	}
	return DURQ_OK;
}

/* One atomic turn, in the order of design §2.2. */
static int orch_ack(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	const char *id = op->u.orch_ack.instance_id;
	const durq_turn_result *r = op->u.orch_ack.result;
	int64_t now = ctx->now_ms;
	uint64_t exec;
	TRY(lock_live(c, id, op->u.orch_ack.token, now));
	TRY(delete_tagged(c, id, op->u.orch_ack.token));
	if (r->flags & DURQ_TURN_DISCARD) /* G7: the messages go, nothing else changes */
		return exec_id(c, SQ_LOCK_DELETE, id, "release lock");
	TRY(upsert_instance(c, id, r, now, &exec));
	TRY(append_history(c, id, exec, r));
	TRY(set_status(c, id, exec, r, now));
	TRY(sq_kv_apply(c, id, r));
	if (r->runtime_version || r->execution_id) /* a pin, or maybe a new execution */
		TRY(sq_pin(c, id, exec, r));
	for (size_t i = 0; i < r->n_work; i++) {
		durq_work w = r->work[i];
		if (!w.instance_id)
			w.instance_id = id;
		TRY(insert_work(c, &w, now));
	}
	TRY(cancel_activities(c, id, r));
	for (size_t i = 0; i < r->n_messages; i++)
		TRY(insert_message(c, &r->messages[i], now));
	return exec_id(c, SQ_LOCK_DELETE, id, "release lock");
}

static int orch_abandon(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	const char *id = op->u.orch_abandon.instance_id;
	TRY(lock_live(c, id, op->u.orch_abandon.token, ctx->now_ms));
	sqlite3_stmt *s = sq_stmt(c, SQ_ORCH_UNTAG);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_token(c, s, 2, op->u.orch_abandon.token);
	sq_bind_int64(c, s, 3, op->u.orch_abandon.delay_ms);
	sq_bind_int64(c, s, 4, ctx->now_ms);
	sq_bind_int(c, s, 5, op->u.orch_abandon.ignore_attempt ? 1 : 0);
	TRY(sq_exec(c, s, "abandon turn"));
	return exec_id(c, SQ_LOCK_DELETE, id, "release lock");
}

static int orch_renew(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_LOCK_RENEW);
	int64_t until = ctx->now_ms + op->u.orch_renew.lease_ms;
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, op->u.orch_renew.instance_id, -1, SQLITE_STATIC);
	sq_bind_token(c, s, 2, op->u.orch_renew.token);
	sq_bind_int64(c, s, 3, ctx->now_ms);
	sq_bind_int64(c, s, 4, until);
	TRY(sq_exec(c, s, "renew instance lease"));
	if (sqlite3_changes(c->db) == 0)
		return durq_error_set(DURQ_ELOCKLOST, "instance '%s': lease token unknown or "
				      "expired; renew never revives a lease",
				      op->u.orch_renew.instance_id);
	op->u.orch_renew.lease_until = until;
	return DURQ_OK;
}

/* ---- worker queue ------------------------------------------------------------------- */

static int claim_rows(sq_conn *c, enum sq_stmt_id id, durq_op *op, int64_t now, size_t room)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	int rc;
	if (!s)
		return DURQ_EIO;
	sq_bind_token(c, s, 1, &op->token);
	sq_bind_int64(c, s, 2, now + op->u.work_claim.lease_ms);
	if (id == SQ_WORK_CLAIM)
		sq_bind_text(c, s, 3, op->u.work_claim.queue, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 4, now);
	sq_bind_int64(c, s, 5, (sqlite3_int64)room);
	for (size_t k = 0; id == SQ_WORK_CLAIM_SET && k < op->u.work_claim.n_queues; k++)
		sq_bind_text(c, s, 10 + (int)k, op->u.work_claim.queues[k], -1, SQLITE_STATIC);
	if (id == SQ_WORK_CLAIM_SESSION) {
		sq_bind_text(c, s, 3, op->u.work_claim.queue, -1, SQLITE_STATIC);
		sq_bind_text(c, s, 6, op->u.work_claim.owner_id, -1, SQLITE_STATIC);
	}
	int with_session = sqlite3_column_count(s) > 8;
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		durq_work_item *it = &op->u.work_claim.items[op->u.work_claim.n++];
		it->id = sqlite3_column_int64(s, 0);
		it->queue = sq_col_text(c, s, 1);
		it->instance_id = sq_col_text(c, s, 2);
		it->execution_id = (uint64_t)sqlite3_column_int64(s, 3);
		it->activity_id = (uint64_t)sqlite3_column_int64(s, 4);
		it->priority = sqlite3_column_int(s, 5);
		it->attempt = sqlite3_column_int(s, 6);
		it->payload = sq_col_blob(c, s, 7, &it->payload_len);
		it->session_id = with_session ? sq_col_text(c, s, 8) : NULL;
		it->token = op->token;
		it->lease_until_ms = now + op->u.work_claim.lease_ms;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, "claim work");
}

static int cmp_item(const void *a, const void *b)
{
	const durq_work_item *x = a, *y = b;
	if (x->priority != y->priority) /* compare, never subtract: caller ints may be extreme */
		return (x->priority < y->priority) - (x->priority > y->priority);
	return (x->id > y->id) - (x->id < y->id);
}

static int poison_item(sq_conn *c, durq_work_item *it, const durq_op_ctx *ctx)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_DEAD_FROM_WORK);
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, it->id);
	sq_bind_int64(c, s, 2, ctx->now_ms);
	TRY(sq_exec(c, s, "dead-letter work item"));
	if (!(s = sq_stmt(c, SQ_WORK_DELETE)))
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, it->id);
	TRY(sq_exec(c, s, "delete work item"));
	durq_log_emit(c->p->opts, DURQ_LOG_WARN, "POISON", "work item %lld dead-lettered after %d "
		      "attempts", (long long)it->id, it->attempt - 1);
	return DURQ_OK;
}

/* Drop poisoned items from the claimed set; *dropped = how many. On an error the array
 * stays consistent (every item not freed is kept once) for the caller to discard. */
static int sift_poison(sq_conn *c, durq_op *op, const durq_op_ctx *ctx, size_t *dropped)
{
	size_t keep = 0;
	int rc = DURQ_OK;
	*dropped = 0;
	for (size_t i = 0; i < op->u.work_claim.n; i++) {
		durq_work_item *it = &op->u.work_claim.items[i];
		if (rc == DURQ_OK && it->attempt > max_attempts(c, ctx) &&
		    (rc = poison_item(c, it, ctx)) == DURQ_OK) {
			durq_work_item_clear(it);
			(*dropped)++;
			continue;
		}
		op->u.work_claim.items[keep++] = *it;
	}
	op->u.work_claim.n = keep;
	return rc;
}

static int work_claim(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	size_t max = op->u.work_claim.max, dropped;
	enum sq_stmt_id id = op->u.work_claim.owner_id     ? SQ_WORK_CLAIM_SESSION
			     : op->u.work_claim.any_queue    ? SQ_WORK_CLAIM_ANY
			     : op->u.work_claim.n_queues > 0 ? SQ_WORK_CLAIM_SET
							     : SQ_WORK_CLAIM;
	if (op->u.work_claim.n_queues > DURQ_QUEUE_SET_MAX + 1)
		return durq_error_set(DURQ_EINVAL, "queue set of %zu names: at most %d",
				      op->u.work_claim.n_queues, DURQ_QUEUE_SET_MAX + 1);
	do { /* each round with poison dead-letters it: ends when a round finds none */
		TRY(claim_rows(c, id, op, ctx->now_ms, max - op->u.work_claim.n));
		TRY(sift_poison(c, op, ctx, &dropped));
	} while (dropped > 0 && op->u.work_claim.n < max);
	if (op->u.work_claim.owner_id) /* G1: one writer at a time, so the claim's view holds */
		TRY(sq_session_hold(c, op, ctx->now_ms));
	qsort(op->u.work_claim.items, op->u.work_claim.n, sizeof(durq_work_item), cmp_item);
	return op->u.work_claim.n ? DURQ_OK : durq_error_set(DURQ_EMPTY, "nothing to fetch");
}

static int lease_lost(int64_t id)
{
	return durq_error_set(DURQ_ELOCKLOST, "work item %lld: gone, token unknown or lease "
			      "expired", (long long)id);
}

/* Run an ack or renew statement (bound) that returns the item's session if it changed it:
 * 1 = changed, 0 = not (lease lost); an item's session is activity of it (G1). */
static int item_changed(sq_conn *c, sqlite3_stmt *s, int64_t now, const char *what)
{
	char sess[DURQ_SESSION_ID_MAX + 1] = "";
	int rc = sq_step(c, s), hit = rc == SQLITE_ROW;
	if (hit) {
		const char *v = (const char *)sqlite3_column_text(s, 0);
		if (v)
			snprintf(sess, sizeof(sess), "%s", v);
		rc = sqlite3_step(s);
	}
	int out = rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, what);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (out < 0)
		return out;
	if (sess[0])
		TRY(sq_session_touch(c, sess, now));
	return hit;
}

/* The work ack statement id (SQ_WORK_ACK or SQ_WORK_ACK_PLAIN) with op's item bound. */
static sqlite3_stmt *ack_stmt(sq_conn *c, int id, const durq_op *op, const durq_op_ctx *ctx)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	if (s) {
		sq_bind_int64(c, s, 1, op->u.work_ack.id);
		sq_bind_token(c, s, 2, op->u.work_ack.token);
		sq_bind_int64(c, s, 3, ctx->now_ms);
	}
	return s;
}

static int work_ack(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	/* an item without a session first: a plain DELETE (1 = deleted) */
	sqlite3_stmt *s = ack_stmt(c, SQ_WORK_ACK_PLAIN, op, ctx);
	if (!s)
		return DURQ_EIO;
	TRY(sq_exec(c, s, "ack work item"));
	int hit = sqlite3_changes(c->db) == 1;
	if (!hit) { /* an item of a session (its ack touches the session), or a lost lease */
		if (!(s = ack_stmt(c, SQ_WORK_ACK, op, ctx)))
			return DURQ_EIO;
		hit = item_changed(c, s, ctx->now_ms, "ack work item");
		TRY(hit);
	}
	if (!hit)
		return lease_lost(op->u.work_ack.id);
	if (op->u.work_ack.completion)
		return insert_message(c, op->u.work_ack.completion, ctx->now_ms);
	return DURQ_OK;
}

static int work_abandon(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_WORK_ABANDON);
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, op->u.work_abandon.id);
	sq_bind_token(c, s, 2, op->u.work_abandon.token);
	sq_bind_int64(c, s, 3, ctx->now_ms);
	sq_bind_int64(c, s, 4, op->u.work_abandon.delay_ms);
	sq_bind_int(c, s, 5, op->u.work_abandon.ignore_attempt ? 1 : 0);
	TRY(sq_exec(c, s, "abandon work item"));
	return sqlite3_changes(c->db) ? DURQ_OK : lease_lost(op->u.work_abandon.id);
}

static int work_renew(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_WORK_RENEW);
	int64_t until = ctx->now_ms + op->u.work_renew.lease_ms;
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, op->u.work_renew.id);
	sq_bind_token(c, s, 2, op->u.work_renew.token);
	sq_bind_int64(c, s, 3, ctx->now_ms);
	sq_bind_int64(c, s, 4, until);
	int hit = item_changed(c, s, ctx->now_ms, "renew work lease");
	TRY(hit);
	if (!hit)
		return lease_lost(op->u.work_renew.id);
	op->u.work_renew.lease_until = until;
	return DURQ_OK;
}

/* ---- management --------------------------------------------------------------------- */

static int requeue_row(sq_conn *c, sqlite3_stmt *s, int64_t now)
{
	if (sqlite3_column_int(s, 0) == DURQ_DEAD_ORCH) {
		size_t len;
		void *payload = sq_col_blob(c, s, 7, &len);
		if (sq_check(c) != SQLITE_OK) {
			sqlite3_reset(s);
			return sq_error(c, SQLITE_NOMEM, "requeue dead letter");
		}
		durq_message m = {.instance_id = (const char *)sqlite3_column_text(s, 2),
				  .kind = sqlite3_column_int(s, 5), .payload = payload,
				  .payload_len = len};
		char *id = m.instance_id ? strdup(m.instance_id) : NULL;
		m.instance_id = id;
		sqlite3_reset(s);
		int rc = id ? insert_message(c, &m, now) : DURQ_ECORRUPT;
		free(id);
		free(payload);
		return rc;
	}
	size_t len;
	void *payload = sq_col_blob(c, s, 7, &len);
	char *queue = sq_col_text(c, s, 1), *inst = sq_col_text(c, s, 2);
	char *sess = sq_col_text(c, s, 8); /* G1: it goes back to its session */
	if (sq_check(c) != SQLITE_OK) {
		sqlite3_reset(s);
		free(payload);
		free(queue);
		free(inst);
		free(sess);
		return sq_error(c, SQLITE_NOMEM, "requeue dead letter");
	}
	durq_work w = {.queue = queue, .instance_id = inst,
		       .execution_id = (uint64_t)sqlite3_column_int64(s, 3),
		       .activity_id = (uint64_t)sqlite3_column_int64(s, 4),
		       .priority = sqlite3_column_int(s, 6), .payload = payload, .payload_len = len,
		       .session_id = sess};
	sqlite3_reset(s);
	int rc = insert_work(c, &w, now);
	free(queue);
	free(inst);
	free(payload);
	free(sess);
	return rc;
}

static int dead_requeue(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_DEAD_GET);
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, op->u.dead_requeue.id);
	int rc = sq_step(c, s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? durq_error_set(DURQ_ENOTFOUND, "dead letter %lld not found",
							  (long long)op->u.dead_requeue.id)
					 : sq_error(c, rc, "read dead letter");
	}
	TRY(requeue_row(c, s, ctx->now_ms));
	if (!(s = sq_stmt(c, SQ_DEAD_DELETE)))
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, op->u.dead_requeue.id);
	return sq_exec(c, s, "delete dead letter");
}

static int instance_delete(sq_conn *c, durq_op *op)
{
	const char *id = op->u.instance_delete.instance_id;
	uint64_t cur;
	TRY(current_execution(c, id, &cur));
	int has_msgs = exists_by_id(c, SQ_ORCH_EXISTS, id, NULL, 0);
	TRY(has_msgs);
	if (!cur && !has_msgs)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
	static const enum sq_stmt_id dels[] = {SQ_DEL_ORCH, SQ_DEL_WORK, SQ_DEL_LOCK,
					       SQ_DEL_HISTORY, SQ_DEL_EXECUTIONS, SQ_KV_CLEAR_ALL,
					       SQ_DEL_INSTANCE};
	for (size_t i = 0; i < sizeof(dels) / sizeof(dels[0]); i++)
		TRY(exec_id(c, dels[i], id, "delete instance"));
	return DURQ_OK;
}

static int execution_prune(sq_conn *c, durq_op *op)
{
	const char *id = op->u.execution_prune.instance_id;
	if (!id || op->u.execution_prune.keep_last || op->u.execution_prune.completed_before)
		return sq_prune_ex(c, op);
	uint64_t cur, before = op->u.execution_prune.before;
	TRY(current_execution(c, id, &cur));
	if (!cur)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
	if (before > cur)
		before = cur; /* never the current execution */
	enum sq_stmt_id ids[2] = {SQ_PRUNE_HISTORY, SQ_PRUNE_EXECUTIONS};
	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *s = sq_stmt(c, ids[i]);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 2, (sqlite3_int64)before);
		TRY(sq_exec(c, s, "prune executions"));
	}
	op->u.execution_prune.pruned = (size_t)sqlite3_changes(c->db);
	return DURQ_OK;
}

int sq_op_apply(durq_conn *conn, durq_op *op, const durq_op_ctx *ctx)
{
	sq_conn *c = sq_conn_of(conn);
	switch (op->kind) {
	case DURQ_OP_ORCH_ENQUEUE:
		for (size_t i = 0; i < op->u.orch_enqueue.n; i++)
			TRY(insert_message(c, &op->u.orch_enqueue.msgs[i], ctx->now_ms));
		return DURQ_OK;
	case DURQ_OP_WORK_ENQUEUE:
		for (size_t i = 0; i < op->u.work_enqueue.n; i++)
			TRY(insert_work(c, &op->u.work_enqueue.items[i], ctx->now_ms));
		return DURQ_OK;
	case DURQ_OP_ORCH_CLAIM: return orch_claim(c, op, ctx);
	case DURQ_OP_ORCH_ACK: return orch_ack(c, op, ctx);
	case DURQ_OP_ORCH_ABANDON: return orch_abandon(c, op, ctx);
	case DURQ_OP_ORCH_RENEW: return orch_renew(c, op, ctx);
	case DURQ_OP_WORK_CLAIM: return work_claim(c, op, ctx);
	case DURQ_OP_WORK_ACK: return work_ack(c, op, ctx);
	case DURQ_OP_WORK_ABANDON: return work_abandon(c, op, ctx);
	case DURQ_OP_WORK_RENEW: return work_renew(c, op, ctx);
	case DURQ_OP_DEAD_REQUEUE: return dead_requeue(c, op, ctx);
	case DURQ_OP_INSTANCE_DELETE: return instance_delete(c, op);
	case DURQ_OP_EXECUTION_PRUNE: return execution_prune(c, op);
	case DURQ_OP_INSTANCE_DELETE_MANY: return sq_delete_many(c, op, ctx);
	case DURQ_OP_INSTANCE_PURGE: return sq_purge(c, op, ctx);
	case DURQ_OP_SESSION_RENEW: return sq_session_renew(c, op, ctx->now_ms);
	case DURQ_OP_SESSION_CLEANUP: return sq_session_cleanup(c, op, ctx->now_ms);
	case DURQ_OP_HANDLE_STATS: return sq_handle_stats_apply(c, op);
	default:
		return durq_error_set(DURQ_EINVAL, "unknown op kind %d", op->kind);
	}
}
