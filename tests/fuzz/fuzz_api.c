/*
 * fuzz_api.c — libFuzzer target: a random sequence of durq calls decoded from the input
 * (enqueue, fetch, ack, abandon, renew, ack_many, async acks, orchestration enqueue / fetch /
 * ack / abandon / renew, instance delete, dead-letter requeue, advancing the injected
 * clock, depth and instance reads) on a fresh sqlite::memory: handle, each call checked
 * against the reference model of fuzz_model.c: its result code, what a fetch returns (items,
 * order, attempts, leases), and, when asked and at the end, the queue depths, dead letters,
 * instance status and history. A disagreement prints the call and aborts (a finding).
 *
 * The first input bytes pick the commit mode and max_attempts (1..4, so poison paths come
 * quickly). The in-memory database lives in DURQ_MEMORY_DIR if set, else /dev/shm.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durq.h"
#include "fuzz_input.h"
#include "fuzz_model.h"

#define T0 1700000000000LL
#define MAX_DELAY (100LL * 366 * 24 * 3600 * 1000) /* durq's bound on delays and leases */

typedef struct ctx {
	durq *db;
	model m;
	fuzz_in in;
	int op;                   /* index of the call being checked */
	const char *what;
} ctx;

static void finding(ctx *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "FINDING at call %d (%s), model time %lld: ", c->op, c->what,
		(long long)(c->m.now - T0));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  durq_error_last: %s\n", durq_error_last());
	abort();
}

/* got: a code; msg: its message (NULL: not available for this code). */
static void expect_code(ctx *c, int got, int want, const char *msg)
{
	if (got != want)
		finding(c, "returned %s, the model says %s", durq_error_name(got), durq_error_name(want));
	if (got < 0 && msg && !msg[0])
		finding(c, "%s without a message", durq_error_name(got));
}

/* A call's return value, its message in durq_error_last(). */
static void expect_rc(ctx *c, int got, int want)
{
	expect_code(c, got, want, durq_error_last());
}

static int64_t model_clock(void *arg)
{
	return ((ctx *)arg)->m.now;
}

/* ---- choices from the input --------------------------------------------------------- */

static const int64_t delays[] = {0, 0, 0, 5, 10, 100, 1000, -1, MAX_DELAY, MAX_DELAY + 1};
static const int64_t leases[] = {10, 50, 100, 100, 1000, 30000, 0, -5, MAX_DELAY + 1};

static int valid_delay(int64_t d)
{
	return d >= 0 && d <= MAX_DELAY;
}

static int valid_lease(int64_t l)
{
	return l > 0 && l <= MAX_DELAY;
}

static int pick_queue(ctx *c, const char **name)
{
	int q = fuzz_byte(&c->in) % (M_QUEUES + 1);
	if (q == M_QUEUES) { /* NULL: the default queue */
		*name = NULL;
		return 0;
	}
	*name = m_queue_name(q);
	return q;
}

/* A work item we have fetched at least once (its id is known), live or not. */
static int pick_known(ctx *c)
{
	int n = c->m.nw, start = fuzz_byte(&c->in) % (n ? n : 1);
	for (int k = 0; k < n; k++) {
		int i = (start + k) % n;
		if (c->m.w[i].id)
			return i;
	}
	return -1;
}

/* The current token, the one before, or a forged one. */
static durq_token pick_token(ctx *c, const durq_token *cur, const durq_token *prev)
{
	durq_token t;
	switch (fuzz_byte(&c->in) % 4) {
	case 0: return *prev;
	case 1:
		for (size_t k = 0; k < sizeof(t.bytes); k++)
			t.bytes[k] = fuzz_byte(&c->in);
		return t;
	default: return *cur;
	}
}

/* ---- worker queue ------------------------------------------------------------------- */

static void op_work_enqueue(ctx *c)
{
	durq_work w[3];
	char payload[3][M_PAYLOAD];
	int queue[3];
	int n = fuzz_byte(&c->in) % 4, ok = 1;
	if (!m_room(&c->m, n, 0))
		return;
	for (int k = 0; k < n; k++) {
		queue[k] = pick_queue(c, &w[k].queue);
		m_next_payload(&c->m, 'w', payload[k]);
		w[k] = (durq_work){.queue = w[k].queue, .priority = fuzz_byte(&c->in) % 4 - 1,
				   .payload = payload[k], .payload_len = strlen(payload[k]),
				   .delay_ms = FUZZ_PICK(&c->in, delays)};
		ok &= valid_delay(w[k].delay_ms);
	}
	expect_rc(c, durq_work_enqueue(c->db, w, (size_t)n), ok ? DURQ_OK : DURQ_EINVAL);
	for (int k = 0; ok && k < n; k++)
		m_add_item(&c->m, queue[k], -1, w[k].priority, w[k].delay_ms, payload[k]);
}

static void check_item(ctx *c, const durq_work_item *it, int i, int64_t lease_until)
{
	m_item *w = &c->m.w[i];
	const char *q = m_queue_name(w->queue);
	if (it->payload_len != strlen(w->payload) || memcmp(it->payload, w->payload, it->payload_len))
		finding(c, "fetch returned %.*s, the model says %s", (int)it->payload_len,
			(const char *)it->payload, w->payload);
	if (it->attempt != w->attempt || it->priority != w->prio || strcmp(it->queue, q) ||
	    it->lease_until_ms != lease_until ||
	    (w->inst >= 0) != (it->instance_id != NULL) ||
	    (w->inst >= 0 && strcmp(it->instance_id, m_inst_name(w->inst))))
		finding(c, "item %s: attempt %d prio %d queue '%s' lease %lld, model %d %d '%s' %lld",
			w->payload, it->attempt, it->priority, it->queue,
			(long long)it->lease_until_ms, w->attempt, w->prio, q, (long long)lease_until);
	if (w->id && w->id != it->id)
		finding(c, "item %s: id %lld, earlier %lld", w->payload, (long long)it->id,
			(long long)w->id);
	w->id = it->id;
}

static void op_work_fetch(ctx *c)
{
	static const int64_t maxes[] = {1, 1, 2, 3, 8, 0};
	const char *qname;
	int q = pick_queue(c, &qname);
	int max = (int)FUZZ_PICK(&c->in, maxes);
	int64_t lease = FUZZ_PICK(&c->in, leases);
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, qname, (size_t)max, lease, 0);
	if (!max || !valid_lease(lease)) {
		expect_rc(c, rc, DURQ_EINVAL);
		return;
	}
	int want[M_ITEMS];
	/* the claim's token is durq's: learn it from the first item (all share it) */
	durq_token t = n ? it[0].token : (durq_token){{0}};
	int nw = m_work_claim(&c->m, q, max, lease, &t, want);
	expect_rc(c, rc, nw ? DURQ_OK : DURQ_EMPTY);
	if (n != (size_t)nw)
		finding(c, "fetch returned %zu items, the model %d", n, nw);
	for (size_t k = 0; k < n; k++) {
		if (memcmp(&it[k].token, &t, sizeof(t)))
			finding(c, "items of one fetch with different tokens");
		check_item(c, &it[k], want[k], c->m.now + lease);
	}
	durq_work_items_free(it, n);
}

/* ack / abandon / renew of a known item with a chosen token */
static void op_work_lease_call(ctx *c, int kind)
{
	int i = pick_known(c);
	if (i < 0)
		return;
	m_item *w = &c->m.w[i];
	durq_token t = pick_token(c, &w->token, &w->prev_token);
	int64_t arg = kind == 2 ? FUZZ_PICK(&c->in, leases) : FUZZ_PICK(&c->in, delays);
	int ignore = fuzz_byte(&c->in) & 1;
	int valid = kind == 2 ? valid_lease(arg) : kind == 1 ? valid_delay(arg) : 1;
	int live = m_leased_item(&c->m, w->id, &t) >= 0;
	int want = !valid ? DURQ_EINVAL : live ? DURQ_OK : DURQ_ELOCKLOST;
	int64_t until = 0;
	int rc = kind == 0 ? durq_work_ack(c->db, w->id, &t, NULL)
		 : kind == 1 ? durq_work_abandon(c->db, w->id, &t, arg, ignore)
			     : durq_work_renew(c->db, &until, w->id, &t, arg);
	expect_rc(c, rc, want);
	if (rc != DURQ_OK)
		return;
	if (kind == 0) {
		w->live = 0;
	} else if (kind == 1) {
		w->leased = 0;
		if (arg > 0)
			w->visible_at = c->m.now + arg;
		if (ignore && w->attempt > 0)
			w->attempt--;
	} else {
		if (until != c->m.now + arg)
			finding(c, "renew: lease until %lld, model %lld", (long long)until,
				(long long)(c->m.now + arg));
		w->lease_until = until;
	}
}

static void op_work_ack(ctx *c)
{
	op_work_lease_call(c, 0);
}

static void op_work_abandon(ctx *c)
{
	op_work_lease_call(c, 1);
}

static void op_work_renew(ctx *c)
{
	op_work_lease_call(c, 2);
}

/* An ack with a completion message for an instance. */
static void op_work_ack_completion(ctx *c)
{
	int i = pick_known(c), inst = fuzz_byte(&c->in) % M_INSTANCES;
	char payload[M_PAYLOAD];
	if (i < 0 || !m_room(&c->m, 0, 1))
		return;
	m_item *w = &c->m.w[i];
	durq_token t = pick_token(c, &w->token, &w->prev_token);
	m_next_payload(&c->m, 'c', payload);
	durq_message done = {.instance_id = m_inst_name(inst), .kind = 3, .payload = payload,
			     .payload_len = strlen(payload)};
	int live = m_leased_item(&c->m, w->id, &t) >= 0;
	expect_rc(c, durq_work_ack(c->db, w->id, &t, &done), live ? DURQ_OK : DURQ_ELOCKLOST);
	if (live) {
		w->live = 0;
		m_add_msg(&c->m, inst, 3, c->m.now, payload);
	}
}

typedef struct slot {
	int rc;
	int calls;
	int has_message;
} slot;

static void slot_done(void *arg, const durq_completion *comp)
{
	slot *s = arg;
	s->rc = comp->rc;
	s->has_message = comp->message && comp->message[0];
	s->calls++;
}

/* Several acks at once: durq_work_ack_many, or async acks and a flush. Each is judged
 * alone, in submission order. */
static void op_work_ack_batch(ctx *c)
{
	enum { MAXB = 6 };
	int async = fuzz_byte(&c->in) & 1, n = 1 + fuzz_byte(&c->in) % MAXB, idx[MAXB], rcs[MAXB];
	durq_token tok[MAXB];
	durq_work_ack_req req[MAXB];
	slot s[MAXB];
	for (int k = 0; k < n; k++) {
		if ((idx[k] = pick_known(c)) < 0)
			return;
		m_item *w = &c->m.w[idx[k]];
		tok[k] = pick_token(c, &w->token, &w->prev_token);
		req[k] = (durq_work_ack_req){w->id, &tok[k], NULL};
		s[k] = (slot){.rc = 1};
	}
	if (async) {
		for (int k = 0; k < n; k++) {
			durq_async a = {.done = slot_done, .ctx = &s[k]};
			expect_rc(c, durq_work_ack_async(c->db, req[k].id, req[k].token, NULL, &a),
				  DURQ_OK);
		}
		expect_rc(c, durq_flush(c->db, -1), DURQ_OK);
	}
	int first = async ? DURQ_OK : durq_work_ack_many(c->db, req, (size_t)n, rcs), want_first = 0;
	if (first < 0 && !durq_error_last()[0])
		finding(c, "durq_work_ack_many returned %s without a message", durq_error_name(first));
	for (int k = 0; k < n; k++) {
		if (async && s[k].calls != 1)
			finding(c, "async ack %d completed %d times", k, s[k].calls);
		int i = m_leased_item(&c->m, req[k].id, &tok[k]), want = i >= 0 ? DURQ_OK : DURQ_ELOCKLOST;
		expect_code(c, async ? s[k].rc : rcs[k], want, async && !s[k].has_message ? "" : NULL);
		if (!want_first)
			want_first = want;
		if (i >= 0)
			c->m.w[i].live = 0;
	}
	if (!async && first != want_first)
		finding(c, "durq_work_ack_many returned %s, its first failure is %s",
			durq_error_name(first), durq_error_name(want_first));
}

/* ---- orchestrations ----------------------------------------------------------------- */

static void op_orch_enqueue(ctx *c)
{
	static const int64_t at[] = {0, 0, 0, 50, 1000};
	int inst = fuzz_byte(&c->in) % M_INSTANCES;
	char payload[M_PAYLOAD];
	if (!m_room(&c->m, 0, 1))
		return;
	m_next_payload(&c->m, 'm', payload);
	durq_message g = {.instance_id = m_inst_name(inst), .kind = 1, .payload = payload,
			  .payload_len = strlen(payload), .delay_ms = FUZZ_PICK(&c->in, delays)};
	int64_t rel = FUZZ_PICK(&c->in, at);
	g.visible_at_ms = rel ? c->m.now + rel : 0;
	int ok = valid_delay(g.delay_ms);
	expect_rc(c, durq_orch_enqueue(c->db, &g, 1), ok ? DURQ_OK : DURQ_EINVAL);
	if (!ok)
		return;
	int64_t due = c->m.now + g.delay_ms;
	m_add_msg(&c->m, inst, 1, g.visible_at_ms > due ? g.visible_at_ms : due, payload);
}

static void check_turn(ctx *c, const durq_turn *t, int i, int attempt)
{
	const m_inst *n = &c->m.in[i];
	if (m_inst_of(t->instance_id) != i)
		finding(c, "orch fetch leased %s, the model says %s", t->instance_id, m_inst_name(i));
	if (t->attempt != attempt || t->exists != n->exists ||
	    (n->exists && (t->execution_id != n->exec || t->status != n->status ||
			   t->n_history != (size_t)n->n_hist)))
		finding(c, "turn of %s: attempt %d exists %d exec %llu status %d history %zu; model "
			"%d %d %llu %d %d", t->instance_id, t->attempt, t->exists,
			(unsigned long long)t->execution_id, t->status, t->n_history, attempt,
			n->exists, (unsigned long long)n->exec, n->status, n->n_hist);
	size_t k = 0;
	for (int j = 0; j < c->m.nm; j++) {
		const m_msg *g = &c->m.m[j];
		if (!g->live || g->inst != i || !g->tagged || memcmp(&g->tag, &t->token, sizeof(g->tag)))
			continue;
		if (k >= t->n_messages || t->messages[k].payload_len != strlen(g->payload) ||
		    memcmp(t->messages[k].payload, g->payload, strlen(g->payload)))
			finding(c, "turn of %s: message %zu is not %s", t->instance_id, k, g->payload);
		k++;
	}
	if (k != t->n_messages)
		finding(c, "turn of %s: %zu messages, model %zu", t->instance_id, t->n_messages, k);
}

static void op_orch_fetch(ctx *c)
{
	int64_t lease = FUZZ_PICK(&c->in, leases);
	durq_turn *t = NULL;
	int rc = durq_orch_fetch(c->db, &t, lease, 0);
	if (!valid_lease(lease)) {
		expect_rc(c, rc, DURQ_EINVAL);
		return;
	}
	durq_token tok = t ? t->token : (durq_token){{0}};
	int attempt = 0, i = m_orch_claim(&c->m, lease, &tok, &attempt);
	expect_rc(c, rc, i >= 0 ? DURQ_OK : DURQ_EMPTY);
	if (i >= 0) {
		if (t->lease_until_ms != c->m.now + lease)
			finding(c, "turn lease until %lld, model %lld", (long long)t->lease_until_ms,
				(long long)(c->m.now + lease));
		check_turn(c, t, i, attempt);
	}
	durq_turn_free(t);
}

/* A turn result from the input: history (fresh ids, or a duplicate), an activity, a
 * message, a status, maybe continue-as-new or a wrong execution. */
typedef struct turn_in {
	durq_turn_result r;
	durq_event ev[3];
	durq_work work;
	durq_message msg;
	char wp[M_PAYLOAD], mp[M_PAYLOAD];
	int work_queue, msg_inst, dup;
	uint64_t exec;            /* the execution it lands in (0: refused) */
} turn_in;

static void build_turn(ctx *c, int i, turn_in *ti)
{
	const m_inst *n = &c->m.in[i];
	uint64_t cur = n->exists ? n->exec : 0;
	static const int64_t exec_choice[] = {0, 0, 0, 1, 2, 3};
	memset(ti, 0, sizeof(*ti));
	ti->r = (durq_turn_result)DURQ_TURN_RESULT_INIT;
	int e = (int)FUZZ_PICK(&c->in, exec_choice); /* 0, current, next, next+1 */
	ti->r.execution_id = e == 0 ? 0 : e == 1 ? (cur ? cur : 1) : cur + (uint64_t)e - 1;
	uint64_t exec = ti->r.execution_id ? ti->r.execution_id : (cur ? cur : 1);
	ti->exec = (!cur && exec == 1) || (cur && (exec == cur || exec == cur + 1)) ? exec : 0;
	int base = ti->exec == cur ? n->n_hist : 0, nh = fuzz_byte(&c->in) % 3;
	for (int k = 0; k < nh; k++) {
		uint8_t b = fuzz_byte(&c->in);
		uint64_t id = (uint64_t)(base + k + 1);
		if (b >= 240 && base > 0) /* an id already in this execution's history */
			id = 1 + b % (uint64_t)base;
		else if (b >= 230 && k > 0) /* the same id twice in this result */
			id = ti->ev[k - 1].event_id;
		ti->dup |= id <= (uint64_t)base || (k > 0 && id == ti->ev[k - 1].event_id);
		ti->ev[k] = (durq_event){.event_id = id, .payload = "e", .payload_len = 1};
	}
	ti->r.history = ti->ev;
	ti->r.n_history = (size_t)nh;
	ti->r.status = fuzz_byte(&c->in) % 4; /* 0 = keep, 1 running, 2 completed, 3 failed */
	ti->r.name = "orch";
	if (fuzz_byte(&c->in) & 1) {
		const char *q;
		ti->work_queue = pick_queue(c, &q);
		m_next_payload(&c->m, 'a', ti->wp);
		ti->work = (durq_work){.queue = q, .payload = ti->wp, .payload_len = strlen(ti->wp),
				       .execution_id = exec, .activity_id = 1};
		ti->r.work = &ti->work;
		ti->r.n_work = 1;
	}
	if (fuzz_byte(&c->in) & 1) {
		ti->msg_inst = fuzz_byte(&c->in) % M_INSTANCES;
		m_next_payload(&c->m, 't', ti->mp);
		ti->msg = (durq_message){.instance_id = m_inst_name(ti->msg_inst), .kind = 2,
					 .payload = ti->mp, .payload_len = strlen(ti->mp),
					 .delay_ms = FUZZ_PICK(&c->in, delays) & 0x3ff};
		ti->r.messages = &ti->msg;
		ti->r.n_messages = 1;
	}
}

/* A turn that committed: the model applies it. */
static void apply_turn(ctx *c, int i, const durq_token *t, const turn_in *ti)
{
	m_inst *n = &c->m.in[i];
	for (int k = 0; k < c->m.nm; k++) {
		m_msg *g = &c->m.m[k];
		if (g->live && g->inst == i && g->tagged && !memcmp(&g->tag, t, sizeof(*t)))
			g->live = 0;
	}
	if (!n->exists)
		*n = (m_inst){.exists = 1, .exec = 1, .status = DURQ_STATUS_RUNNING,
			      .last = n->last, .prev = n->prev};
	if (ti->exec != n->exec) {
		n->exec = ti->exec;
		n->n_hist = 0;
	}
	n->n_hist += (int)ti->r.n_history;
	if (ti->r.status > 0)
		n->status = ti->r.status;
	if (ti->r.n_work)
		m_add_item(&c->m, ti->work_queue, i, 0, 0, ti->wp);
	if (ti->r.n_messages)
		m_add_msg(&c->m, ti->msg_inst, 2, c->m.now + ti->msg.delay_ms, ti->mp);
	n->locked = 0;
}

static void op_orch_ack(ctx *c)
{
	int i = fuzz_byte(&c->in) % M_INSTANCES;
	turn_in ti;
	if (!m_room(&c->m, 1, 1))
		return;
	durq_token t = pick_token(c, &c->m.in[i].last, &c->m.in[i].prev);
	build_turn(c, i, &ti);
	int want = !m_lock_live(&c->m, i, &t) ? DURQ_ELOCKLOST : !ti.exec ? DURQ_EINVAL
		   : ti.dup ? DURQ_EDUP : DURQ_OK;
	expect_rc(c, durq_orch_ack(c->db, m_inst_name(i), &t, &ti.r), want);
	if (want == DURQ_OK)
		apply_turn(c, i, &t, &ti);
}

static void op_orch_abandon_renew(ctx *c)
{
	int i = fuzz_byte(&c->in) % M_INSTANCES, renew = fuzz_byte(&c->in) & 1;
	m_inst *n = &c->m.in[i];
	durq_token t = pick_token(c, &n->last, &n->prev);
	int64_t arg = renew ? FUZZ_PICK(&c->in, leases) : FUZZ_PICK(&c->in, delays);
	int ignore = fuzz_byte(&c->in) & 1;
	int valid = renew ? valid_lease(arg) : valid_delay(arg);
	int live = m_lock_live(&c->m, i, &t);
	int64_t until = 0;
	int rc = renew ? durq_orch_renew(c->db, &until, m_inst_name(i), &t, arg)
		       : durq_orch_abandon(c->db, m_inst_name(i), &t, arg, ignore);
	expect_rc(c, rc, !valid ? DURQ_EINVAL : live ? DURQ_OK : DURQ_ELOCKLOST);
	if (rc != DURQ_OK)
		return;
	if (renew) {
		if (until != c->m.now + arg)
			finding(c, "orch renew: until %lld, model %lld", (long long)until,
				(long long)(c->m.now + arg));
		n->lock_until = until;
		return;
	}
	for (int k = 0; k < c->m.nm; k++) {
		m_msg *g = &c->m.m[k];
		if (!g->live || g->inst != i || !g->tagged || memcmp(&g->tag, &t, sizeof(t)))
			continue;
		g->tagged = 0;
		if (arg > 0)
			g->visible_at = c->m.now + arg;
		if (ignore && g->attempt > 0)
			g->attempt--;
	}
	n->locked = 0;
}

static void op_instance_delete(ctx *c)
{
	int i = fuzz_byte(&c->in) % M_INSTANCES, msgs = 0;
	for (int k = 0; k < c->m.nm; k++)
		msgs |= c->m.m[k].live && c->m.m[k].inst == i;
	int found = c->m.in[i].exists || msgs;
	expect_rc(c, durq_instance_delete(c->db, m_inst_name(i)), found ? DURQ_OK : DURQ_ENOTFOUND);
	if (!found)
		return;
	for (int k = 0; k < c->m.nm; k++)
		if (c->m.m[k].inst == i)
			c->m.m[k].live = 0;
	for (int k = 0; k < c->m.nw; k++)
		if (c->m.w[k].inst == i)
			c->m.w[k].live = 0;
	m_inst *n = &c->m.in[i];
	*n = (m_inst){.last = n->last, .prev = n->prev};
}

/* ---- reads -------------------------------------------------------------------------- */

static void check_depths(ctx *c, int queue)
{
	durq_queue_depths d, w;
	expect_rc(c, durq_queue_depths_get(c->db, &d, queue < 0 ? NULL : m_queue_name(queue)),
		  DURQ_OK);
	m_depths(&c->m, queue, &w);
	if (memcmp(&d, &w, sizeof(d)))
		finding(c, "depths (queue %d): orch %lld/%lld/%lld work %lld/%lld/%lld dead %lld "
			"locked %lld; model %lld/%lld/%lld %lld/%lld/%lld %lld %lld", queue,
			(long long)d.orch_ready, (long long)d.orch_delayed, (long long)d.orch_leased,
			(long long)d.work_ready, (long long)d.work_delayed, (long long)d.work_leased,
			(long long)d.dead_letters, (long long)d.instances_locked,
			(long long)w.orch_ready, (long long)w.orch_delayed, (long long)w.orch_leased,
			(long long)w.work_ready, (long long)w.work_delayed, (long long)w.work_leased,
			(long long)w.dead_letters, (long long)w.instances_locked);
}

static void check_instance(ctx *c, int i)
{
	const m_inst *n = &c->m.in[i];
	durq_instance_info *info = NULL;
	int rc = durq_instance_get(c->db, &info, m_inst_name(i));
	expect_rc(c, rc, n->exists ? DURQ_OK : DURQ_ENOTFOUND);
	if (rc == DURQ_OK && (info->execution_id != n->exec || info->status != n->status))
		finding(c, "instance %s: exec %llu status %d, model %llu %d", m_inst_name(i),
			(unsigned long long)info->execution_id, info->status,
			(unsigned long long)n->exec, n->status);
	durq_instance_info_free(info);
	durq_event *ev = NULL;
	size_t ne = 0;
	rc = durq_history_read(c->db, &ev, &ne, m_inst_name(i), 0);
	expect_rc(c, rc, n->exists ? DURQ_OK : DURQ_ENOTFOUND);
	if (rc == DURQ_OK && ne != (size_t)n->n_hist)
		finding(c, "instance %s: %zu events, model %d", m_inst_name(i), ne, n->n_hist);
	for (size_t k = 0; rc == DURQ_OK && k < ne; k++)
		if (ev[k].event_id != k + 1)
			finding(c, "instance %s: event %zu has id %llu", m_inst_name(i), k,
				(unsigned long long)ev[k].event_id);
	durq_events_free(ev, ne);
}

static int dead_index(const model *m, const char *payload, size_t len)
{
	for (int k = 0; k < m->nd; k++)
		if (strlen(m->d[k].payload) == len && !memcmp(m->d[k].payload, payload, len))
			return k;
	return -1;
}

/* The dead letters are the model's (as a set); requeue one of them. */
static void op_dead(ctx *c)
{
	durq_dead_letter *dl = NULL;
	size_t n = 0;
	expect_rc(c, durq_dead_list(c->db, &dl, &n, M_DEAD), DURQ_OK);
	if (n != (size_t)c->m.nd)
		finding(c, "%zu dead letters, model %d", n, c->m.nd);
	for (size_t k = 0; k < n; k++) {
		int j = dead_index(&c->m, dl[k].payload, dl[k].payload_len);
		if (j < 0 || dl[k].source != c->m.d[j].source)
			finding(c, "dead letter %.*s not in the model (or from the other source)",
				(int)dl[k].payload_len, (const char *)dl[k].payload);
	}
	uint8_t b = fuzz_byte(&c->in);
	if (n && m_room(&c->m, 1, 1)) {
		const durq_dead_letter *x = &dl[b % n];
		int j = dead_index(&c->m, x->payload, x->payload_len);
		m_dead d = c->m.d[j];
		expect_rc(c, durq_dead_requeue(c->db, x->id), DURQ_OK);
		c->m.d[j] = c->m.d[--c->m.nd];
		if (d.source == DURQ_DEAD_WORK)
			m_add_item(&c->m, d.queue, d.inst, d.prio, 0, d.payload);
		else
			m_add_msg(&c->m, d.inst, d.kind, c->m.now, d.payload);
	}
	durq_dead_letters_free(dl, n);
}

static void op_advance(ctx *c)
{
	static const int64_t steps[] = {1, 5, 10, 50, 100, 100, 1000, 30000};
	c->m.now += FUZZ_PICK(&c->in, steps);
}

static void op_check(ctx *c)
{
	uint8_t b = fuzz_byte(&c->in);
	if (b & 1)
		check_depths(c, (int)(b >> 1) % (M_QUEUES + 1) - 1);
	else
		check_instance(c, (b >> 1) % M_INSTANCES);
}

typedef struct op_def {
	const char *name;
	void (*fn)(ctx *c);
} op_def;

static const op_def ops[] = {
	{"work_enqueue", op_work_enqueue},
	{"work_fetch", op_work_fetch},
	{"work_ack", op_work_ack},
	{"work_abandon", op_work_abandon},
	{"work_renew", op_work_renew},
	{"work_ack+completion", op_work_ack_completion},
	{"work_ack_many/async", op_work_ack_batch},
	{"orch_enqueue", op_orch_enqueue},
	{"orch_fetch", op_orch_fetch},
	{"orch_ack", op_orch_ack},
	{"orch_abandon/renew", op_orch_abandon_renew},
	{"instance_delete", op_instance_delete},
	{"dead_list/requeue", op_dead},
	{"advance clock", op_advance},
	{"advance clock", op_advance},
	{"check depths/instance", op_check},
};
#define N_OPS (sizeof(ops) / sizeof(ops[0]))

static void final_checks(ctx *c)
{
	c->what = "final checks";
	for (int q = -1; q < M_QUEUES; q++)
		check_depths(c, q);
	for (int i = 0; i < M_INSTANCES; i++)
		check_instance(c, i);
}

static unsigned long long calls_checked; /* over the whole run, printed at exit */

static void print_calls(void)
{
	fprintf(stderr, "fuzz_api: %llu durq calls checked against the model\n", calls_checked);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atexit(print_calls);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ctx *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->in = (fuzz_in){data, size};
	c->m.now = T0;
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = fuzz_byte(&c->in) & 1 ? DURQ_COMMIT_PER_OP : DURQ_COMMIT_GROUP;
	o.max_attempts = c->m.max_attempts = 1 + fuzz_byte(&c->in) % 4;
	o.pool_size = 5;
	o.clock = model_clock;
	o.clock_ctx = c;
	c->what = "open";
	expect_rc(c, durq_open(&c->db, "sqlite::memory:", &o), DURQ_OK);
	while (fuzz_left(&c->in)) {
		const op_def *d = &ops[fuzz_byte(&c->in) % N_OPS];
		c->op++;
		c->what = d->name;
		d->fn(c);
	}
	final_checks(c);
	calls_checked += (unsigned long long)c->op;
	c->what = "close";
	expect_rc(c, durq_close(c->db), DURQ_OK);
	durq_free(c->db);
	free(c);
	return 0;
}
