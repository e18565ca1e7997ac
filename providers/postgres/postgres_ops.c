/*
 * postgres_ops.c — the PostgreSQL provider's write ops. Ops go in runs: consecutive acks,
 * abandons or renews of distinct work items, or consecutive enqueues of one kind, travel as
 * ONE statement with array parameters (one element per op; RETURNING tells which items
 * changed, so each op gets its own result); any other op is a run of one. A run is split in
 * two: send queues its statement(s) on the connection's pipeline (every value a binary
 * parameter, lists as arrays), receive takes the results in order, fills the ops' outputs
 * (durq_mem_*) and turns the result codes of postgres_schema.c's statements and functions
 * into durq codes and messages. A run is one statement (an enqueue larger than
 * PG_CHUNK_BYTES is several), so a batch of ops is one round trip, and the server executes
 * one statement per run instead of one per op (acks at 256 in flight: 0.27 ms each alone,
 * 1 ms for a run of ~100).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

/* ---- helpers ------------------------------------------------------------------------- */

static int send1(pg_conn *c, enum pg_stmt_id id, pg_params *p, pg_opstate *st)
{
	int rc = pg_pipe_send(c, id, p);
	pg_params_free(p);
	if (rc == DURQ_OK)
		st->n_stmts++;
	return rc;
}

/* The op's next result, or NULL with *rc set: *local = PG_SQL_LOCAL if the statement
 * failed for reasons of its own (the batch fails this op and replays the others),
 * PG_SQL_FATAL if the connection or the transaction as a whole failed. */
static PGresult *take(pg_conn *c, const char *what, int *rc, int *local)
{
	PGresult *r = pg_pipe_next(c);
	*local = PG_SQL_NONE;
	if (!r) {
		*rc = DURQ_EIO;
		*local = PG_SQL_FATAL;
		return NULL;
	}
	if (!pg_ok(r)) {
		*rc = pg_error(c, r, what);
		*local = pg_error_is_op_local(r) ? PG_SQL_LOCAL : PG_SQL_FATAL;
		PQclear(r);
		return NULL;
	}
	*rc = DURQ_OK;
	return r;
}

/* Results of statements that return nothing we need (enqueue chunks). */
static int take_all(pg_conn *c, pg_opstate *st, const char *what, int *local)
{
	int rc = DURQ_OK;
	for (int i = 0; i < st->n_stmts; i++) {
		int one, loc;
		PGresult *r = take(c, what, &one, &loc);
		if (r)
			PQclear(r);
		if (loc == PG_SQL_FATAL && pg_conn_broken(c)) {
			*local = loc;
			return one;
		}
		if (rc == DURQ_OK && one < 0) {
			rc = one;
			*local = loc;
		}
	}
	return rc;
}

/* One value from a one-row result (count(*), a function's code). */
static int take_value(pg_conn *c, const char *what, int64_t *v, int *local)
{
	int rc;
	PGresult *r = take(c, what, &rc, local);
	if (!r)
		return rc;
	*v = PQntuples(r) > 0 ? pg_i64(r, 0, 0) : 0;
	PQclear(r);
	return DURQ_OK;
}

/* Rows an UPDATE changed. */
static int take_changes(pg_conn *c, const char *what, int64_t *n, int *local)
{
	int rc;
	PGresult *r = take(c, what, &rc, local);
	if (!r)
		return rc;
	*n = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return DURQ_OK;
}

static const void *bytes_or_empty(const void *p)
{
	return p ? p : "";
}

/* ---- enqueue ------------------------------------------------------------------------- */

/* The entries of a run of enqueues, one after the other (op by op, in order). */
typedef struct entry_cursor {
	durq_op *const *ops;
	size_t n, op, i;
} entry_cursor;

static size_t op_entries(const durq_op *op)
{
	return op->kind == DURQ_OP_ORCH_ENQUEUE ? op->u.orch_enqueue.n : op->u.work_enqueue.n;
}

/* The next entry's index in ops[cur->op], or 0 with cur->op == n at the end. */
static int cursor_more(entry_cursor *cur)
{
	while (cur->op < cur->n && cur->i >= op_entries(cur->ops[cur->op])) {
		cur->op++;
		cur->i = 0;
	}
	return cur->op < cur->n;
}

static size_t msg_cost(const durq_message *m)
{
	return m->payload_len + strlen(m->instance_id) + 32;
}

/* Statements of at most PG_CHUNK_BYTES of entries each (one unless the run is large). */
static int send_messages(pg_conn *c, durq_op *const *ops, size_t n, int64_t now,
			 pg_opstate *st)
{
	entry_cursor cur = {.ops = ops, .n = n};
	while (cursor_more(&cur)) {
		pg_arr ids, kinds, payloads, vis;
		pg_params p;
		size_t bytes = 0;
		pg_arr_init(&ids, PG_OID_TEXT);
		pg_arr_init(&kinds, PG_OID_INT4);
		pg_arr_init(&payloads, PG_OID_BYTEA);
		pg_arr_init(&vis, PG_OID_INT8);
		for (; cursor_more(&cur); cur.i++) {
			const durq_message *m = &ops[cur.op]->u.orch_enqueue.msgs[cur.i];
			if (bytes > 0 && bytes + msg_cost(m) > PG_CHUNK_BYTES)
				break;
			pg_arr_text(&ids, m->instance_id);
			pg_arr_i32(&kinds, m->kind);
			pg_arr_bytes(&payloads, bytes_or_empty(m->payload), m->payload_len);
			pg_arr_i64(&vis, durq_message_visible_at(m, now));
			bytes += msg_cost(m);
		}
		pg_params_init(&p);
		pg_param_arr(&p, &ids);
		pg_param_arr(&p, &kinds);
		pg_param_arr(&p, &payloads);
		pg_param_arr(&p, &vis);
		pg_param_i64(&p, now);
		int rc = send1(c, PG_ORCH_INSERT, &p, st);
		if (rc < 0)
			return rc;
	}
	return DURQ_OK;
}

static size_t work_cost(const durq_work *w)
{
	return w->payload_len + (w->queue ? strlen(w->queue) : 0) +
	       (w->instance_id ? strlen(w->instance_id) : 0) +
	       (w->session_id ? strlen(w->session_id) : 0) + 48;
}

static void work_row(pg_arr a[8], const durq_work *w, int64_t now)
{
	pg_arr_text(&a[0], w->queue ? w->queue : "");
	pg_arr_text(&a[1], w->instance_id);
	if (w->instance_id) { /* plain work has no execution or activity */
		pg_arr_i64(&a[2], (int64_t)w->execution_id);
		pg_arr_i64(&a[3], (int64_t)w->activity_id);
	} else {
		pg_arr_bytes(&a[2], NULL, 0);
		pg_arr_bytes(&a[3], NULL, 0);
	}
	pg_arr_i32(&a[4], w->priority);
	pg_arr_bytes(&a[5], bytes_or_empty(w->payload), w->payload_len);
	pg_arr_i64(&a[6], durq_work_visible_at(w, now));
	pg_arr_text(&a[7], w->session_id); /* G1; NULL: none */
}

/* queue, instance, execution, activity, priority, payload, visible_at, session (G1) */
static const uint32_t work_oids[8] = {PG_OID_TEXT, PG_OID_TEXT, PG_OID_INT8, PG_OID_INT8,
				      PG_OID_INT4, PG_OID_BYTEA, PG_OID_INT8, PG_OID_TEXT};

static int send_work(pg_conn *c, durq_op *const *ops, size_t n, int64_t now, pg_opstate *st)
{
	entry_cursor cur = {.ops = ops, .n = n};
	while (cursor_more(&cur)) {
		pg_arr a[8];
		pg_params p;
		size_t bytes = 0;
		for (int k = 0; k < 8; k++)
			pg_arr_init(&a[k], work_oids[k]);
		for (; cursor_more(&cur); cur.i++) {
			const durq_work *w = &ops[cur.op]->u.work_enqueue.items[cur.i];
			if (bytes > 0 && bytes + work_cost(w) > PG_CHUNK_BYTES)
				break;
			work_row(a, w, now);
			bytes += work_cost(w);
		}
		pg_params_init(&p);
		for (int k = 0; k < 7; k++)
			pg_param_arr(&p, &a[k]);
		pg_param_i64(&p, now);
		pg_param_arr(&p, &a[7]); /* $9: the sessions */
		int rc = send1(c, PG_WORK_INSERT, &p, st);
		if (rc < 0)
			return rc;
	}
	return DURQ_OK;
}

/* What an enqueue op puts into statements (for the size of a run). */
static size_t enqueue_cost(const durq_op *op)
{
	size_t bytes = 0;
	if (op->kind == DURQ_OP_ORCH_ENQUEUE)
		for (size_t i = 0; i < op->u.orch_enqueue.n; i++)
			bytes += msg_cost(&op->u.orch_enqueue.msgs[i]);
	else
		for (size_t i = 0; i < op->u.work_enqueue.n; i++)
			bytes += work_cost(&op->u.work_enqueue.items[i]);
	return bytes;
}

/* ---- orchestration claim ------------------------------------------------------------ */

/* DURQ_POISON_DELIVER: the provider only counts, nothing is ever past the limit. */
static int max_attempts(const pg_conn *c, const durq_op_ctx *ctx)
{
	return c->p->opts->poison_policy == DURQ_POISON_DELIVER ? INT_MAX : ctx->max_attempts;
}

static int send_orch_claim(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_i64(&p, ctx->now_ms);
	pg_param_token(&p, &op->token);
	pg_param_i64(&p, ctx->now_ms + op->u.orch_claim.lease_ms);
	pg_param_i32(&p, max_attempts(c, ctx));
	pg_param_bool(&p, c->p->opts->poison_policy == DURQ_POISON_RECORD);
	pg_param_i32(&p, c->p->opts->poison_notify_kind);
	if (op->u.orch_claim.filtered) { /* G4: the range; NULL bounds filter nothing */
		pg_param_i64(&p, op->u.orch_claim.min_version);
		pg_param_i64(&p, op->u.orch_claim.max_version);
	} else {
		pg_param_null(&p);
		pg_param_null(&p);
	}
	return send1(c, PG_ORCH_CLAIM, &p, st);
}

static void log_orch_poison(pg_conn *c, const PGresult *r, int row, int max_attempts)
{
	durq_log_emit(c->p->opts, DURQ_LOG_WARN, "POISON", "instance '%s' dead-lettered after "
		      "%lld attempts (max_attempts %d)", PQgetvalue(r, row, 4),
		      (long long)pg_i64(r, row, 2), max_attempts);
}

static void turn_head(durq_turn *t, const PGresult *r, int row, int *oom)
{
	t->exists = pg_i64(r, row, 1) != 0;
	t->execution_id = (uint64_t)pg_i64(r, row, 2);
	t->status = pg_i32(r, row, 3);
	t->instance_id = pg_text(r, row, 4, oom);
	t->name = pg_text(r, row, 5, oom);
	t->version = pg_text(r, row, 6, oom);
	if (!t->instance_id)
		*oom = 1;
}

static void turn_message(durq_turn *t, const PGresult *r, int row, int *oom)
{
	durq_turn_message *m = &t->messages[t->n_messages++];
	m->id = pg_i64(r, row, 1);
	m->attempt = (int)pg_i64(r, row, 2);
	m->kind = pg_i32(r, row, 3);
	m->payload = pg_bytes(r, row, 7, &m->payload_len, oom);
	if (m->attempt > t->attempt)
		t->attempt = m->attempt;
}

static void turn_kv(durq_turn *t, const PGresult *r, int row, int *oom)
{
	durq_kv_entry *e = &t->kv[t->n_kv++];
	e->key = pg_text(r, row, 4, oom);
	e->value = pg_bytes(r, row, 7, &e->value_len, oom);
	if (!e->value && !*oom) /* an empty value: a 1-byte buffer, never NULL */
		e->value = durq_mem_calloc(1, 1);
	if (!e->key || !e->value)
		*oom = 1;
}

static void turn_event(durq_turn *t, const PGresult *r, int row, int *oom)
{
	durq_event *e = &t->history[t->n_history++];
	size_t len;
	e->event_id = (uint64_t)pg_i64(r, row, 1);
	e->payload = pg_bytes(r, row, 7, &len, oom);
	e->payload_len = len;
}

/* Rows of durq_orch_claim (see postgres_schema.c) into the turn. */
static int fill_turn(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, const PGresult *r)
{
	durq_turn *t = op->u.orch_claim.out;
	int rows = PQntuples(r), oom = 0, head = 0;
	t->token = op->token;
	t->lease_until_ms = ctx->now_ms + op->u.orch_claim.lease_ms;
	t->messages = durq_mem_calloc((size_t)rows + 1, sizeof(*t->messages));
	t->history = durq_mem_calloc((size_t)rows + 1, sizeof(*t->history));
	t->kv = durq_mem_calloc((size_t)rows + 1, sizeof(*t->kv));
	if (!t->messages || !t->history || !t->kv)
		return durq_error_set(DURQ_ENOMEM, "postgresql: out of memory reading a turn");
	for (int i = 0; i < rows; i++) {
		switch (pg_i32(r, i, 0)) {
		case 0: head = 1; turn_head(t, r, i, &oom); break;
		case 1: turn_message(t, r, i, &oom); break;
		case 2: turn_event(t, r, i, &oom); break;
		case 3: log_orch_poison(c, r, i, ctx->max_attempts); break;
		case 4: turn_kv(t, r, i, &oom); break;
		case 5: t->runtime_version = pg_i64(r, i, 1); break;
		default: break;
		}
	}
	if (oom)
		return durq_error_set(DURQ_ENOMEM, "postgresql: out of memory reading a turn");
	if (!head)
		return durq_error_set(DURQ_EMPTY, "nothing to fetch");
	op->u.orch_claim.history_loaded = 1;
	return DURQ_OK;
}

static int recv_orch_claim(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, int *local)
{
	int rc;
	PGresult *r = take(c, "claim orchestration", &rc, local);
	if (!r)
		return rc;
	rc = fill_turn(c, op, ctx, r);
	PQclear(r);
	if (rc < 0 && rc != DURQ_EMPTY) {
		pg_op_discard(op);
		*local = PG_SQL_LOCAL; /* the lease was taken: roll the op back */
	}
	if (rc == DURQ_EMPTY) { /* the core sees no turn: none of the arrays above */
		durq_turn *t = op->u.orch_claim.out;
		durq_mem_free(t->messages);
		durq_mem_free(t->history);
		durq_mem_free(t->kv);
		t->messages = NULL;
		t->history = NULL;
		t->kv = NULL;
	}
	return rc;
}

/* ---- orchestration ack -------------------------------------------------------------- */

static void ack_history(pg_params *p, const durq_turn_result *r)
{
	pg_arr ids, payloads;
	pg_arr_init(&ids, PG_OID_INT8);
	pg_arr_init(&payloads, PG_OID_BYTEA);
	for (size_t i = 0; i < r->n_history; i++) {
		pg_arr_i64(&ids, (int64_t)r->history[i].event_id);
		pg_arr_bytes(&payloads, bytes_or_empty(r->history[i].payload),
			     r->history[i].payload_len);
	}
	pg_param_arr(p, &ids);
	pg_param_arr(p, &payloads);
}

/* Activities of a turn belong to the acking instance unless they name another one. */
static void ack_work(pg_params *p, const durq_turn_result *r, int64_t now)
{
	pg_arr a[7];
	for (int k = 0; k < 7; k++)
		pg_arr_init(&a[k], work_oids[k]);
	for (size_t i = 0; i < r->n_work; i++) {
		const durq_work *w = &r->work[i];
		pg_arr_text(&a[0], w->queue ? w->queue : "");
		pg_arr_text(&a[1], w->instance_id); /* NULL: the function uses the instance */
		pg_arr_i64(&a[2], (int64_t)w->execution_id);
		pg_arr_i64(&a[3], (int64_t)w->activity_id);
		pg_arr_i32(&a[4], w->priority);
		pg_arr_bytes(&a[5], bytes_or_empty(w->payload), w->payload_len);
		pg_arr_i64(&a[6], durq_work_visible_at(w, now));
	}
	for (int k = 0; k < 7; k++)
		pg_param_arr(p, &a[k]);
}

static void ack_cancels(pg_params *p, const durq_turn_result *r)
{
	pg_arr ex, act;
	pg_arr_init(&ex, PG_OID_INT8);
	pg_arr_init(&act, PG_OID_INT8);
	for (size_t i = 0; i < r->n_cancel; i++) {
		pg_arr_i64(&ex, (int64_t)r->cancel[i].execution_id);
		pg_arr_i64(&act, (int64_t)r->cancel[i].activity_id);
	}
	pg_param_arr(p, &ex);
	pg_param_arr(p, &act);
}

static void ack_messages(pg_params *p, const durq_turn_result *r, int64_t now)
{
	pg_arr ids, kinds, payloads, vis;
	pg_arr_init(&ids, PG_OID_TEXT);
	pg_arr_init(&kinds, PG_OID_INT4);
	pg_arr_init(&payloads, PG_OID_BYTEA);
	pg_arr_init(&vis, PG_OID_INT8);
	for (size_t i = 0; i < r->n_messages; i++) {
		const durq_message *m = &r->messages[i];
		pg_arr_text(&ids, m->instance_id);
		pg_arr_i32(&kinds, m->kind);
		pg_arr_bytes(&payloads, bytes_or_empty(m->payload), m->payload_len);
		pg_arr_i64(&vis, durq_message_visible_at(m, now));
	}
	pg_param_arr(p, &ids);
	pg_param_arr(p, &kinds);
	pg_param_arr(p, &payloads);
	pg_param_arr(p, &vis);
}

/* The key/value changes (G3): keys and values to set, keys to clear, clear-all. */
static void ack_kv(pg_params *p, const durq_turn_result *r)
{
	pg_arr keys, values, clear;
	pg_arr_init(&keys, PG_OID_TEXT);
	pg_arr_init(&values, PG_OID_BYTEA);
	pg_arr_init(&clear, PG_OID_TEXT);
	for (size_t i = 0; i < r->n_kv_set; i++) {
		pg_arr_text(&keys, r->kv_set[i].key);
		pg_arr_bytes(&values, bytes_or_empty(r->kv_set[i].value), r->kv_set[i].value_len);
	}
	for (size_t i = 0; i < r->n_kv_clear; i++)
		pg_arr_text(&clear, r->kv_clear[i]);
	pg_param_arr(p, &keys);
	pg_param_arr(p, &values);
	pg_param_arr(p, &clear);
	pg_param_bool(p, r->kv_clear_all != 0);
}

static int send_orch_ack(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	const durq_turn_result *r = op->u.orch_ack.result;
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, op->u.orch_ack.instance_id);
	pg_param_token(&p, op->u.orch_ack.token);
	pg_param_i64(&p, ctx->now_ms);
	if (r->flags & DURQ_TURN_DISCARD)
		return send1(c, PG_ORCH_DISCARD, &p, st);
	pg_param_i64(&p, (int64_t)r->execution_id);
	pg_param_text(&p, r->name);
	pg_param_text(&p, r->version_tag);
	pg_param_text(&p, r->parent_id);
	pg_param_i32(&p, r->status);
	pg_param_bytes(&p, r->output, r->output_len);
	pg_param_bool(&p, r->set_custom_status);
	pg_param_bytes(&p, r->custom_status, r->custom_status_len);
	ack_history(&p, r);
	ack_work(&p, r, ctx->now_ms);
	ack_cancels(&p, r);
	ack_messages(&p, r, ctx->now_ms);
	ack_kv(&p, r);
	if (r->runtime_version)
		pg_param_i64(&p, r->runtime_version);
	else
		pg_param_null(&p); /* pin nothing */
	pg_arr sessions; /* G1: the work's sessions, one per item (NULL: none) */
	pg_arr_init(&sessions, PG_OID_TEXT);
	for (size_t i = 0; i < r->n_work; i++)
		pg_arr_text(&sessions, r->work[i].session_id);
	pg_param_arr(&p, &sessions);
	return send1(c, PG_ORCH_ACK, &p, st);
}

static int lease_lost_instance(const char *id)
{
	return durq_error_set(DURQ_ELOCKLOST, "instance '%s': lease token unknown or expired", id);
}

static int ack_refused(const char *id, int code, uint64_t a, uint64_t b)
{
	unsigned long long x = a, y = b;
	if (code == DURQ_ELOCKLOST)
		return lease_lost_instance(id);
	if (code == DURQ_EDUP)
		return durq_error_set(DURQ_EDUP, "instance '%s' execution %llu: event id %llu "
				      "already in history", id, x, y);
	if (code == DURQ_ETOOBIG)
		return durq_error_set(DURQ_ETOOBIG, "instance '%s' would hold %llu keys, more than "
				      "DURQ_KV_MAX_KEYS %d", id, x, DURQ_KV_MAX_KEYS);
	if (x == 0)
		return durq_error_set(DURQ_EINVAL, "instance '%s' does not exist: its first turn "
				      "must use execution 1, not %llu", id, y);
	return durq_error_set(DURQ_EINVAL, "instance '%s' is at execution %llu; a turn may use "
			      "%llu or continue as new with %llu", id, x, x, x + 1);
}

static int recv_orch_ack(pg_conn *c, durq_op *op, int *local)
{
	int rc;
	if (op->u.orch_ack.result->flags & DURQ_TURN_DISCARD) {
		int64_t n = 0;
		if ((rc = take_value(c, "discard turn", &n, local)) < 0)
			return rc;
		return n ? DURQ_OK : lease_lost_instance(op->u.orch_ack.instance_id);
	}
	PGresult *r = take(c, "ack turn", &rc, local);
	if (!r)
		return rc;
	int code = PQntuples(r) == 1 ? pg_i32(r, 0, 0) : DURQ_EIO;
	uint64_t a = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 1) : 0;
	uint64_t b = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 2) : 0;
	PQclear(r);
	if (code == DURQ_OK)
		return DURQ_OK;
	if (code != DURQ_ELOCKLOST && code != DURQ_EDUP && code != DURQ_EINVAL &&
	    code != DURQ_ETOOBIG)
		return durq_error_set(DURQ_EIO, "postgresql: ack turn: unexpected answer %d", code);
	return ack_refused(op->u.orch_ack.instance_id, code, a, b);
}

/* ---- abandon, renew ---------------------------------------------------------------------- */

static int send_orch_abandon(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, op->u.orch_abandon.instance_id);
	pg_param_token(&p, op->u.orch_abandon.token);
	pg_param_i64(&p, ctx->now_ms);
	pg_param_i64(&p, op->u.orch_abandon.delay_ms);
	pg_param_bool(&p, op->u.orch_abandon.ignore_attempt);
	return send1(c, PG_ORCH_ABANDON, &p, st);
}

static int recv_orch_abandon(pg_conn *c, durq_op *op, int *local)
{
	int64_t v = 0;
	int rc = take_value(c, "abandon turn", &v, local);
	if (rc < 0)
		return rc;
	return v == 0 ? DURQ_OK : lease_lost_instance(op->u.orch_abandon.instance_id);
}

static int send_orch_renew(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, op->u.orch_renew.instance_id);
	pg_param_token(&p, op->u.orch_renew.token);
	pg_param_i64(&p, ctx->now_ms);
	pg_param_i64(&p, ctx->now_ms + op->u.orch_renew.lease_ms);
	return send1(c, PG_ORCH_RENEW, &p, st);
}

static int recv_orch_renew(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, int *local)
{
	int64_t n = 0;
	int rc = take_changes(c, "renew instance lease", &n, local);
	if (rc < 0)
		return rc;
	if (n == 0)
		return durq_error_set(DURQ_ELOCKLOST, "instance '%s': lease token unknown or "
				      "expired; renew never revives a lease",
				      op->u.orch_renew.instance_id);
	op->u.orch_renew.lease_until = ctx->now_ms + op->u.orch_renew.lease_ms;
	return DURQ_OK;
}

/* ---- worker queue ----------------------------------------------------------------------- */

static int send_work_claim(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	enum pg_stmt_id id = op->u.work_claim.owner_id     ? PG_WORK_CLAIM_SESSION
			     : op->u.work_claim.any_queue    ? PG_WORK_CLAIM_ANY
			     : op->u.work_claim.n_queues > 0 ? PG_WORK_CLAIM_SET
							     : PG_WORK_CLAIM;
	pg_param_token(&p, &op->token);
	pg_param_i64(&p, ctx->now_ms + op->u.work_claim.lease_ms);
	if (id == PG_WORK_CLAIM_SET) { /* G2: the set's names */
		pg_arr names;
		pg_arr_init(&names, PG_OID_TEXT);
		for (size_t i = 0; i < op->u.work_claim.n_queues; i++)
			pg_arr_text(&names, op->u.work_claim.queues[i]);
		pg_param_arr(&p, &names);
	} else {
		pg_param_text(&p, id == PG_WORK_CLAIM_ANY ? NULL
			      : op->u.work_claim.queue ? op->u.work_claim.queue : "");
	}
	pg_param_i64(&p, ctx->now_ms);
	pg_param_i64(&p, (int64_t)(op->u.work_claim.max - op->u.work_claim.n));
	pg_param_i32(&p, max_attempts(c, ctx));
	if (id == PG_WORK_CLAIM_SESSION) { /* G1: the owner and how long it holds */
		pg_param_text(&p, op->u.work_claim.owner_id);
		pg_param_i64(&p, ctx->now_ms + op->u.work_claim.session_lock_ms);
	}
	return send1(c, id, &p, st);
}

static int cmp_item(const void *a, const void *b)
{
	const durq_work_item *x = a, *y = b;
	if (x->priority != y->priority) /* compare, never subtract: caller ints may be extreme */
		return (x->priority < y->priority) - (x->priority > y->priority);
	return (x->id > y->id) - (x->id < y->id);
}

static void claimed_item(durq_op *op, const durq_op_ctx *ctx, const PGresult *r, int row,
			 int *oom)
{
	durq_work_item *it = &op->u.work_claim.items[op->u.work_claim.n++];
	it->id = pg_i64(r, row, 1);
	it->queue = pg_text(r, row, 2, oom);
	it->instance_id = pg_text(r, row, 3, oom);
	it->execution_id = (uint64_t)pg_i64(r, row, 4);
	it->activity_id = (uint64_t)pg_i64(r, row, 5);
	it->priority = pg_i32(r, row, 6);
	it->attempt = pg_i32(r, row, 7);
	it->payload = pg_bytes(r, row, 8, &it->payload_len, oom);
	if (PQnfields(r) > 9) /* a session claim (G1) */
		it->session_id = pg_text(r, row, 9, oom);
	it->token = op->token;
	it->lease_until_ms = ctx->now_ms + op->u.work_claim.lease_ms;
	if (!it->queue)
		*oom = 1;
}

/* Items past max_attempts went to the dead letters in the same statement, or items of a
 * session another owner took meanwhile were left (G1: row 2 counts them): if that left
 * room, another round (PG_AGAIN, a new transaction that sees the other owner) claims more,
 * so a fetch is never EMPTY with work ready. */
static int recv_work_claim(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, int *local)
{
	int rc, oom = 0, dead = 0;
	PGresult *r = take(c, "claim work", &rc, local);
	if (!r)
		return rc;
	for (int i = 0; i < PQntuples(r); i++) {
		if (pg_i32(r, i, 0) == 2) {
			dead++; /* not dead: refused, but it calls for another round the same way */
		} else if (pg_i32(r, i, 0)) {
			dead++;
			durq_log_emit(c->p->opts, DURQ_LOG_WARN, "POISON", "work item %lld "
				      "dead-lettered after %d attempts", (long long)pg_i64(r, i, 1),
				      pg_i32(r, i, 7));
		} else if (op->u.work_claim.n < op->u.work_claim.max) {
			claimed_item(op, ctx, r, i, &oom);
		}
	}
	PQclear(r);
	if (oom) {
		*local = PG_SQL_LOCAL; /* the items were leased: roll the op back */
		return durq_error_set(DURQ_ENOMEM, "postgresql: out of memory reading work items");
	}
	if (dead > 0 && op->u.work_claim.n < op->u.work_claim.max)
		return PG_AGAIN;
	return op->u.work_claim.n ? DURQ_OK : durq_error_set(DURQ_EMPTY, "nothing to fetch");
}

/* ---- acks, abandons, renews of work items: runs ------------------------------------------ */

/* A set of item ids (a run has at most PG_RUN_MAX), calloc'd. */
#define ID_SET_CAP (2 * PG_RUN_MAX)

typedef struct id_set {
	int64_t key[ID_SET_CAP];
	unsigned char used[ID_SET_CAP];
} id_set;

static size_t id_hash(int64_t id)
{
	return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 53) & (ID_SET_CAP - 1);
}

/* 1 if id was added, 0 if it was there (or the set is full: never, runs are capped). */
static int id_set_add(id_set *set, int64_t id)
{
	for (size_t h = id_hash(id), k = 0; k < ID_SET_CAP; k++, h = (h + 1) & (ID_SET_CAP - 1)) {
		if (!set->used[h]) {
			set->used[h] = 1;
			set->key[h] = id;
			return 1;
		}
		if (set->key[h] == id)
			return 0;
	}
	return 0;
}

static int id_set_has(const id_set *set, int64_t id)
{
	for (size_t h = id_hash(id), k = 0; k < ID_SET_CAP; k++, h = (h + 1) & (ID_SET_CAP - 1)) {
		if (!set->used[h])
			return 0;
		if (set->key[h] == id)
			return 1;
	}
	return 0;
}

static int64_t item_id(const durq_op *op)
{
	switch (op->kind) {
	case DURQ_OP_WORK_ACK: return op->u.work_ack.id;
	case DURQ_OP_WORK_ABANDON: return op->u.work_abandon.id;
	default: return op->u.work_renew.id;
	}
}

static const durq_token *item_token(const durq_op *op)
{
	switch (op->kind) {
	case DURQ_OP_WORK_ACK: return op->u.work_ack.token;
	case DURQ_OP_WORK_ABANDON: return op->u.work_abandon.token;
	default: return op->u.work_renew.token;
	}
}

/* What an op of a run puts into its statement, roughly. */
static size_t item_op_cost(const durq_op *op)
{
	const durq_message *m = op->kind == DURQ_OP_WORK_ACK ? op->u.work_ack.completion : NULL;
	return 64 + (m ? m->payload_len + (m->instance_id ? strlen(m->instance_id) : 0) : 0);
}

/* $1 ids, $2 tokens, $3 now: the start of every item statement (a run of one: scalars). */
static void item_params(pg_params *p, durq_op *const *ops, size_t n, int64_t now)
{
	pg_params_init(p);
	if (n == 1) {
		pg_param_i64(p, item_id(ops[0]));
		pg_param_token(p, item_token(ops[0]));
		pg_param_i64(p, now);
		return;
	}
	pg_arr ids, toks;
	pg_arr_init(&ids, PG_OID_INT8);
	pg_arr_init(&toks, PG_OID_BYTEA);
	for (size_t i = 0; i < n; i++) {
		pg_arr_i64(&ids, item_id(ops[i]));
		pg_arr_bytes(&toks, item_token(ops[i])->bytes, sizeof(item_token(ops[i])->bytes));
	}
	pg_param_arr(p, &ids);
	pg_param_arr(p, &toks);
	pg_param_i64(p, now);
}

static int send_acks(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
		     pg_opstate *st)
{
	pg_params p;
	item_params(&p, ops, n, ctx->now_ms);
	if (n == 1) {
		const durq_message *m = ops[0]->u.work_ack.completion;
		pg_param_text(&p, m ? m->instance_id : NULL);
		pg_param_i32(&p, m ? m->kind : 0);
		pg_param_bytes(&p, m ? bytes_or_empty(m->payload) : NULL, m ? m->payload_len : 0);
		pg_param_i64(&p, m ? durq_message_visible_at(m, ctx->now_ms) : 0);
		return send1(c, PG_WORK_ACK1, &p, st);
	}
	size_t k = 0;
	while (k < n && !ops[k]->u.work_ack.completion)
		k++;
	if (k == n) /* no completion in the run */
		return send1(c, PG_WORK_ACK_PLAIN, &p, st);
	pg_arr inst, kind, pay, vis;
	pg_arr_init(&inst, PG_OID_TEXT);
	pg_arr_init(&kind, PG_OID_INT4);
	pg_arr_init(&pay, PG_OID_BYTEA);
	pg_arr_init(&vis, PG_OID_INT8);
	for (size_t i = 0; i < n; i++) {
		const durq_message *m = ops[i]->u.work_ack.completion;
		pg_arr_text(&inst, m ? m->instance_id : NULL);
		pg_arr_i32(&kind, m ? m->kind : 0);
		pg_arr_bytes(&pay, m ? bytes_or_empty(m->payload) : NULL, m ? m->payload_len : 0);
		pg_arr_i64(&vis, m ? durq_message_visible_at(m, ctx->now_ms) : 0);
	}
	pg_param_arr(&p, &inst);
	pg_param_arr(&p, &kind);
	pg_param_arr(&p, &pay);
	pg_param_arr(&p, &vis);
	return send1(c, PG_WORK_ACK, &p, st);
}

static int send_abandons(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
			 pg_opstate *st)
{
	pg_params p;
	item_params(&p, ops, n, ctx->now_ms);
	if (n == 1) {
		pg_param_i64(&p, ops[0]->u.work_abandon.delay_ms);
		pg_param_bool(&p, ops[0]->u.work_abandon.ignore_attempt);
		return send1(c, PG_WORK_ABANDON1, &p, st);
	}
	pg_arr delay, ignore;
	pg_arr_init(&delay, PG_OID_INT8);
	pg_arr_init(&ignore, PG_OID_BOOL);
	for (size_t i = 0; i < n; i++) {
		pg_arr_i64(&delay, ops[i]->u.work_abandon.delay_ms);
		pg_arr_bool(&ignore, ops[i]->u.work_abandon.ignore_attempt);
	}
	pg_param_arr(&p, &delay);
	pg_param_arr(&p, &ignore);
	return send1(c, PG_WORK_ABANDON, &p, st);
}

static int send_renews(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
		       pg_opstate *st)
{
	pg_params p;
	item_params(&p, ops, n, ctx->now_ms);
	if (n == 1) {
		pg_param_i64(&p, ctx->now_ms + ops[0]->u.work_renew.lease_ms);
		return send1(c, PG_WORK_RENEW1, &p, st);
	}
	pg_arr until;
	pg_arr_init(&until, PG_OID_INT8);
	for (size_t i = 0; i < n; i++)
		pg_arr_i64(&until, ctx->now_ms + ops[i]->u.work_renew.lease_ms);
	pg_param_arr(&p, &until);
	return send1(c, PG_WORK_RENEW, &p, st);
}

static void lease_lost_msg(durq_op_result *res, int64_t id)
{
	res->rc = DURQ_ELOCKLOST;
	snprintf(res->message, sizeof(res->message), "work item %lld: gone, token unknown or "
		 "lease expired", (long long)id);
}

/* The statement returns the ids it changed; every other op of the run was refused (its
 * item gone, its token not the item's, or its lease expired). */
static int recv_items(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
		      durq_op_result *res, int *local)
{
	const char *what = ops[0]->kind == DURQ_OP_WORK_ACK       ? "ack work item"
			   : ops[0]->kind == DURQ_OP_WORK_ABANDON ? "abandon work item"
								  : "renew work lease";
	int rc;
	PGresult *r = take(c, what, &rc, local);
	if (!r)
		return rc;
	id_set *live = calloc(1, sizeof(*live));
	if (!live) {
		PQclear(r);
		*local = PG_SQL_LOCAL; /* the run changed items: roll it back */
		return durq_error_set(DURQ_ENOMEM, "postgresql: out of memory reading a result");
	}
	for (int i = 0; i < PQntuples(r); i++)
		id_set_add(live, pg_i64(r, i, 0));
	PQclear(r);
	for (size_t i = 0; i < n; i++) {
		if (!id_set_has(live, item_id(ops[i]))) {
			lease_lost_msg(&res[i], item_id(ops[i]));
			continue;
		}
		res[i].rc = DURQ_OK;
		res[i].message[0] = '\0';
		if (ops[i]->kind == DURQ_OP_WORK_RENEW)
			ops[i]->u.work_renew.lease_until = ctx->now_ms + ops[i]->u.work_renew.lease_ms;
	}
	free(live);
	return DURQ_OK;
}

/* ---- management ----------------------------------------------------------------------- */

static int send_dead_requeue(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_i64(&p, op->u.dead_requeue.id);
	pg_param_i64(&p, ctx->now_ms);
	return send1(c, PG_DEAD_REQUEUE, &p, st);
}

static int recv_dead_requeue(pg_conn *c, durq_op *op, int *local)
{
	int64_t n = 0;
	int rc = take_value(c, "requeue dead letter", &n, local);
	if (rc < 0)
		return rc;
	return n ? DURQ_OK : durq_error_set(DURQ_ENOTFOUND, "dead letter %lld not found",
					    (long long)op->u.dead_requeue.id);
}

static int send_by_instance(pg_conn *c, enum pg_stmt_id id, const char *inst, int with_before,
			    uint64_t before, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, inst);
	if (with_before)
		pg_param_i64(&p, before > INT64_MAX ? INT64_MAX : (int64_t)before);
	return send1(c, id, &p, st);
}

static int recv_instance_delete(pg_conn *c, durq_op *op, int *local)
{
	int64_t v = 0;
	int rc = take_value(c, "delete instance", &v, local);
	if (rc < 0)
		return rc;
	return v == 0 ? DURQ_OK : durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found",
						 op->u.instance_delete.instance_id);
}

static int recv_execution_prune(pg_conn *c, durq_op *op, int *local)
{
	int64_t v = 0;
	int rc = take_value(c, "prune executions", &v, local);
	if (rc < 0)
		return rc;
	if (v < 0)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found",
				      op->u.execution_prune.instance_id);
	op->u.execution_prune.pruned = (size_t)v;
	return DURQ_OK;
}

/* ---- issue 10: checked deletes, retention -------------------------------------------- */

static int send_delete_many(pg_conn *c, durq_op *op, pg_opstate *st)
{
	pg_params p;
	pg_arr ids;
	pg_params_init(&p);
	if (op->kind == DURQ_OP_INSTANCE_PURGE) {
		pg_param_i64(&p, op->u.instance_delete_many.completed_before);
		pg_param_i64(&p, (int64_t)op->u.instance_delete_many.limit);
		return send1(c, PG_PURGE, &p, st);
	}
	pg_arr_init(&ids, PG_OID_TEXT);
	for (size_t i = 0; i < op->u.instance_delete_many.n; i++)
		pg_arr_text(&ids, op->u.instance_delete_many.ids[i]);
	pg_param_arr(&p, &ids);
	pg_param_bool(&p, (op->u.instance_delete_many.flags & DURQ_DELETE_FORCE) != 0);
	return send1(c, PG_DELETE_MANY, &p, st);
}

static int recv_delete_many(pg_conn *c, durq_op *op, int *local)
{
	int rc, purge = op->kind == DURQ_OP_INSTANCE_PURGE, off = purge ? 0 : 2;
	PGresult *r = take(c, purge ? "purge instances" : "delete instances", &rc, local);
	if (!r)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return durq_error_set(DURQ_EIO, "postgresql: delete instances: unexpected answer");
	}
	int code = purge ? 0 : pg_i32(r, 0, 0);
	char who[DURQ_INSTANCE_ID_MAX + 1] = "";
	if (code)
		snprintf(who, sizeof(who), "%s", PQgetvalue(r, 0, 1));
	durq_delete_counts *k = &op->u.instance_delete_many.counts;
	int64_t status = pg_i64(r, 0, off);
	k->instances = (uint64_t)pg_i64(r, 0, off);
	k->executions = (uint64_t)pg_i64(r, 0, off + 1);
	k->events = (uint64_t)pg_i64(r, 0, off + 2);
	k->messages = (uint64_t)pg_i64(r, 0, off + 3);
	PQclear(r);
	if (code == DURQ_ENOTFOUND)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", who);
	if (code == DURQ_ECONFLICT && status < 0)
		return durq_error_set(DURQ_ECONFLICT, "instance '%s' is a sub-orchestration of an "
				      "instance that is not deleted with it; nothing deleted "
				      "(DURQ_DELETE_FORCE deletes it)", who);
	if (code == DURQ_ECONFLICT)
		return durq_error_set(DURQ_ECONFLICT, "instance '%s' is not finished (status %lld); "
				      "nothing deleted (DURQ_DELETE_FORCE deletes it)", who,
				      (long long)status);
	return code ? durq_error_set(DURQ_EIO, "postgresql: delete: unexpected code %d", code)
		    : DURQ_OK;
}

static int send_prune_ex(pg_conn *c, durq_op *op, pg_opstate *st)
{
	pg_params p;
	uint64_t keep = op->u.execution_prune.keep_last;
	pg_params_init(&p);
	pg_param_text(&p, op->u.execution_prune.instance_id);
	pg_param_i64(&p, keep > INT64_MAX ? INT64_MAX : (int64_t)keep);
	pg_param_i64(&p, op->u.execution_prune.completed_before);
	return send1(c, PG_PRUNE_EX, &p, st);
}

static int is_prune_ex(const durq_op *op)
{
	return !op->u.execution_prune.instance_id || op->u.execution_prune.keep_last ||
	       op->u.execution_prune.completed_before;
}

/* ---- the handle-stats table (src/publish.c) --------------------------------------------- */

static int send_handle_stats(pg_conn *c, durq_op *op, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, op->u.handle_stats.key);
	if (!op->u.handle_stats.counters) /* close: this handle's row goes */
		return send1(c, PG_HSTATS_DELETE, &p, st);
	pg_param_i64(&p, op->u.handle_stats.pid);
	pg_param_text(&p, op->u.handle_stats.host);
	pg_param_i64(&p, op->u.handle_stats.started_ms);
	pg_param_i64(&p, op->u.handle_stats.updated_ms);
	pg_param_i64(&p, op->u.handle_stats.interval_ms);
	pg_param_text(&p, op->u.handle_stats.counters);
	return send1(c, PG_HSTATS_PUBLISH, &p, st);
}

static int recv_handle_stats(pg_conn *c, int *local)
{
	int rc;
	PGresult *r = take(c, "stats publication", &rc, local);
	PQclear(r);
	return rc;
}

/* ---- activity sessions (G1) -------------------------------------------------------- */

static int send_session(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	pg_params p;
	pg_params_init(&p);
	if (op->kind == DURQ_OP_SESSION_CLEANUP) {
		pg_param_i64(&p, ctx->now_ms);
		pg_param_i64(&p, op->u.session.idle_ms);
		return send1(c, PG_SESSION_CLEANUP, &p, st);
	}
	pg_arr owners;
	pg_arr_init(&owners, PG_OID_TEXT);
	for (size_t i = 0; i < op->u.session.n; i++)
		pg_arr_text(&owners, op->u.session.owners[i]);
	pg_param_arr(&p, &owners);
	pg_param_i64(&p, ctx->now_ms);
	pg_param_i64(&p, ctx->now_ms + op->u.session.extend_ms);
	pg_param_i64(&p, op->u.session.idle_ms);
	return send1(c, PG_SESSION_RENEW, &p, st);
}

static int recv_session(pg_conn *c, durq_op *op, int *local)
{
	int64_t n = 0;
	int rc = take_value(c, op->kind == DURQ_OP_SESSION_CLEANUP ? "clean up sessions"
								    : "renew sessions", &n, local);
	if (rc < 0)
		return rc;
	op->u.session.count = (size_t)n;
	return DURQ_OK;
}

/* ---- runs and dispatch ---------------------------------------------------------------- */

static int op_send(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, pg_opstate *st)
{
	switch (op->kind) {
	case DURQ_OP_ORCH_CLAIM: return send_orch_claim(c, op, ctx, st);
	case DURQ_OP_ORCH_ACK: return send_orch_ack(c, op, ctx, st);
	case DURQ_OP_ORCH_ABANDON: return send_orch_abandon(c, op, ctx, st);
	case DURQ_OP_ORCH_RENEW: return send_orch_renew(c, op, ctx, st);
	case DURQ_OP_WORK_CLAIM: return send_work_claim(c, op, ctx, st);
	case DURQ_OP_DEAD_REQUEUE: return send_dead_requeue(c, op, ctx, st);
	case DURQ_OP_INSTANCE_DELETE:
		return send_by_instance(c, PG_INSTANCE_DELETE, op->u.instance_delete.instance_id, 0,
					0, st);
	case DURQ_OP_EXECUTION_PRUNE:
		if (is_prune_ex(op))
			return send_prune_ex(c, op, st);
		return send_by_instance(c, PG_EXECUTION_PRUNE, op->u.execution_prune.instance_id, 1,
					op->u.execution_prune.before, st);
	case DURQ_OP_INSTANCE_DELETE_MANY:
	case DURQ_OP_INSTANCE_PURGE:
		return send_delete_many(c, op, st);
	case DURQ_OP_HANDLE_STATS: return send_handle_stats(c, op, st);
	case DURQ_OP_SESSION_RENEW:
	case DURQ_OP_SESSION_CLEANUP: return send_session(c, op, ctx, st);
	default:
		return durq_error_set(DURQ_EINVAL, "unknown op kind %d", op->kind);
	}
}

static int op_recv(pg_conn *c, durq_op *op, const durq_op_ctx *ctx, int *local)
{
	switch (op->kind) {
	case DURQ_OP_ORCH_CLAIM: return recv_orch_claim(c, op, ctx, local);
	case DURQ_OP_ORCH_ACK: return recv_orch_ack(c, op, local);
	case DURQ_OP_ORCH_ABANDON: return recv_orch_abandon(c, op, local);
	case DURQ_OP_ORCH_RENEW: return recv_orch_renew(c, op, ctx, local);
	case DURQ_OP_WORK_CLAIM: return recv_work_claim(c, op, ctx, local);
	case DURQ_OP_DEAD_REQUEUE: return recv_dead_requeue(c, op, local);
	case DURQ_OP_INSTANCE_DELETE: return recv_instance_delete(c, op, local);
	case DURQ_OP_EXECUTION_PRUNE: return recv_execution_prune(c, op, local);
	case DURQ_OP_INSTANCE_DELETE_MANY:
	case DURQ_OP_INSTANCE_PURGE: return recv_delete_many(c, op, local);
	case DURQ_OP_HANDLE_STATS: return recv_handle_stats(c, local);
	case DURQ_OP_SESSION_RENEW:
	case DURQ_OP_SESSION_CLEANUP: return recv_session(c, op, local);
	default:
		return durq_error_set(DURQ_EINVAL, "unknown op kind %d", op->kind);
	}
}

static int is_item_op(int kind)
{
	return kind == DURQ_OP_WORK_ACK || kind == DURQ_OP_WORK_ABANDON ||
	       kind == DURQ_OP_WORK_RENEW;
}

static int is_enqueue(int kind)
{
	return kind == DURQ_OP_WORK_ENQUEUE || kind == DURQ_OP_ORCH_ENQUEUE;
}

/*
 * Ops of one run apply as one statement, so they must not depend on each other's effects:
 * item ops of a run touch distinct items (a second op on an item starts a new run: an ack
 * then a renew of one item still sees the ack), and enqueues only insert (ids are assigned
 * in the order of the ops). Runs end at another kind, so the order across kinds stays.
 * A run stays under PG_CHUNK_BYTES of parameters, PG_RUN_MAX ops.
 */
size_t pg_run_len(durq_op *const *ops, size_t n)
{
	int kind = ops[0]->kind;
	size_t k = 1, bytes;
	if (n < 2 || (!is_item_op(kind) && !is_enqueue(kind)))
		return 1;
	if (is_enqueue(kind)) {
		for (bytes = enqueue_cost(ops[0]); k < n && k < PG_RUN_MAX && ops[k]->kind == kind;
		     k++) {
			size_t more = enqueue_cost(ops[k]);
			if (bytes + more > PG_CHUNK_BYTES)
				break;
			bytes += more;
		}
		return k;
	}
	id_set *seen = calloc(1, sizeof(*seen));
	if (!seen)
		return 1; /* one by one */
	id_set_add(seen, item_id(ops[0]));
	for (bytes = item_op_cost(ops[0]); k < n && k < PG_RUN_MAX && ops[k]->kind == kind; k++) {
		size_t more = item_op_cost(ops[k]);
		if (bytes + more > PG_CHUNK_BYTES || !id_set_add(seen, item_id(ops[k])))
			break;
		bytes += more;
	}
	free(seen);
	return k;
}

int pg_run_send(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
		pg_opstate *st)
{
	st->n_stmts = 0;
	switch (ops[0]->kind) {
	case DURQ_OP_ORCH_ENQUEUE: return send_messages(c, ops, n, ctx->now_ms, st);
	case DURQ_OP_WORK_ENQUEUE: return send_work(c, ops, n, ctx->now_ms, st);
	case DURQ_OP_WORK_ACK: return send_acks(c, ops, n, ctx, st);
	case DURQ_OP_WORK_ABANDON: return send_abandons(c, ops, n, ctx, st);
	case DURQ_OP_WORK_RENEW: return send_renews(c, ops, n, ctx, st);
	default: return op_send(c, ops[0], ctx, st);
	}
}

int pg_run_recv(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
		pg_opstate *st, durq_op_result *res, int *local)
{
	int kind = ops[0]->kind, rc;
	*local = PG_SQL_NONE;
	if (is_item_op(kind))
		return recv_items(c, ops, n, ctx, res, local);
	if (is_enqueue(kind)) {
		rc = take_all(c, st, kind == DURQ_OP_WORK_ENQUEUE ? "enqueue work items"
							       : "enqueue orchestrator messages",
			      local);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n; i++) {
			res[i].rc = DURQ_OK;
			res[i].message[0] = '\0';
		}
		return DURQ_OK;
	}
	rc = op_recv(c, ops[0], ctx, local);
	if (rc == PG_AGAIN || *local != PG_SQL_NONE)
		return rc;
	res[0].rc = rc;
	snprintf(res[0].message, sizeof(res[0].message), "%s",
		 rc < 0 && rc != DURQ_EMPTY ? durq_error_last() : "");
	return DURQ_OK;
}

/* What another process's fetcher could want: work that is visible now or later, and leases
 * (their expiry makes work claimable again). Renewals, plain acks, deletes and prunes make
 * nothing claimable: their commits stay off PostgreSQL's NOTIFY lock, which serializes
 * notifying commits (through their WAL flush) across the whole server. */
int pg_op_wakes_others(const durq_op *op)
{
	switch (op->kind) {
	case DURQ_OP_ORCH_RENEW:
	case DURQ_OP_WORK_RENEW:
	case DURQ_OP_INSTANCE_DELETE:
	case DURQ_OP_EXECUTION_PRUNE:
	case DURQ_OP_INSTANCE_DELETE_MANY:
	case DURQ_OP_INSTANCE_PURGE:
	case DURQ_OP_HANDLE_STATS:
	case DURQ_OP_SESSION_RENEW:  /* G1: renewals and removals make nothing claimable */
	case DURQ_OP_SESSION_CLEANUP:
		return 0;
	case DURQ_OP_WORK_ACK:
		return op->u.work_ack.completion != NULL;
	default:
		return 1;
	}
}

void pg_op_discard_from(durq_op *op, size_t keep)
{
	if (op->kind == DURQ_OP_WORK_CLAIM) {
		for (size_t i = keep; i < op->u.work_claim.n; i++)
			durq_work_item_clear(&op->u.work_claim.items[i]);
		if (op->u.work_claim.n > keep)
			op->u.work_claim.n = keep;
	} else if (op->kind == DURQ_OP_ORCH_CLAIM && op->u.orch_claim.out) {
		durq_turn_clear(op->u.orch_claim.out);
		op->u.orch_claim.history_loaded = 0;
	}
}

void pg_op_discard(durq_op *op)
{
	pg_op_discard_from(op, 0);
}

/* Items of a claim come in the order of its rounds; the caller gets them by priority, then
 * FIFO. */
void pg_op_finish(durq_op *op)
{
	if (op->kind == DURQ_OP_WORK_CLAIM)
		qsort(op->u.work_claim.items, op->u.work_claim.n, sizeof(durq_work_item),
		      cmp_item);
}
