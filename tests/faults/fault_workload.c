/*
 * fault_workload.c — the fault sweep's workload and its step-by-step checks (see
 * fault_workload.h). Each step makes one durq call (an async step: its submits and one
 * flush) and describes its effect as groups: the entities one op touches and the model as
 * it is if the op applied. settle() then judges the call against the model and, when a
 * fault was involved, against the database.
 *
 * Owns: the run state (handle, clock, model) of one run. Does not own: the VFS, the figures.
 */
#include "fault_workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ck_pr.h>

#define T0 1700000000000LL       /* the injected clock never moves */
#define LEASE_MS 60000
#define RENEW_MS 120000
#define TIMER_AT (T0 + 3600000)  /* the turn's timer: never due during the run */
#define QUEUE "q"

typedef struct run {
	const fw_config *cfg;
	fw_figures *fig;
	long *print_budget;
	int op;
	long nth;
	char path[512];
	char url[600];
	durq *db;
	int64_t now;
	fm_model m;
	int step;                 /* the step running */
	int fired;                /* the step in which the fault fired, -1 before */
	int post_failures;        /* calls that failed after the fault cleared */
	int violations;
} run;

/* One op of a step: the entities it touches, its result, the result a fault-free run gets. */
typedef struct group {
	unsigned mask;
	int rc;
	int expect;
} group;

typedef struct outcome {
	fm_model post;            /* the model if every op of the step applied */
	group g[FM_ITEMS + 1];
	int ng;
} outcome;

typedef struct step {
	const char *name;
	void (*fn)(run *r, outcome *o);
} step;

static const char *step_name(int i);

static void violation(run *r, const char *fmt, ...)
{
	r->violations++;
	r->fig->violations++;
	if (*r->print_budget <= 0)
		return;
	(*r->print_budget)--;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "VIOLATION sweep=%s fault=%s:%ld step=%s (fault fired in %s): %s\n"
		"  reproduce: DURQ_FAULT_ONLY=%s:%s:%ld\n", r->cfg->sweep,
		faultvfs_op_name(r->op), r->nth, step_name(r->step),
		r->fired >= 0 ? step_name(r->fired) : "no step", msg, r->cfg->sweep,
		faultvfs_op_name(r->op), r->nth);
}

static int64_t run_clock(void *ctx)
{
	return ck_pr_load_64((uint64_t *)&((run *)ctx)->now);
}

static void add_group(outcome *o, unsigned mask, int rc, int expect)
{
	o->g[o->ng++] = (group){mask, rc, expect};
}

static int open_handle(run *r)
{
	durq_options opts = DURQ_OPTIONS_INIT;
	opts.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* I/O counted: none time-driven */
	opts.pool_size = 5;
	opts.commit_mode = r->cfg->commit_mode;
	opts.clock = run_clock;
	opts.clock_ctx = r;
	return durq_open(&r->db, r->url, &opts);
}

static int lowest_ours(const fm_model *m)
{
	for (int i = 0; i < FM_ITEMS; i++)
		if (m->w[i].present && m->w[i].leased == FM_OURS)
			return i;
	return -1;
}

/* ---- steps -------------------------------------------------------------------------- */

static void st_open(run *r, outcome *o)
{
	int rc = open_handle(r);
	if (rc != DURQ_OK)
		r->db = NULL;
	add_group(o, 0, rc, DURQ_OK);
}

static void st_close(run *r, outcome *o)
{
	int rc = durq_close(r->db);
	durq_free(r->db);
	r->db = NULL;
	add_group(o, 0, rc, DURQ_OK);
}

static void set_enqueued(outcome *o, int item)
{
	o->post.w[item] = (fm_item){.present = 1};
}

static durq_work work_of(int item)
{
	return (durq_work){.queue = QUEUE, .payload = fm_payload(item),
			   .payload_len = strlen(fm_payload(item))};
}

static void enqueue(run *r, outcome *o, const int *items, size_t n)
{
	durq_work w[3];
	unsigned mask = 0;
	for (size_t i = 0; i < n; i++) {
		w[i] = work_of(items[i]);
		set_enqueued(o, items[i]);
		mask |= FM_BIT(items[i]);
	}
	add_group(o, mask, durq_work_enqueue(r->db, w, n), DURQ_OK);
}

static void st_enqueue_w123(run *r, outcome *o)
{
	static const int items[] = {FM_W1, FM_W2, FM_W3};
	enqueue(r, o, items, 3);
}

static void st_enqueue_w5(run *r, outcome *o)
{
	static const int item = FM_W5;
	enqueue(r, o, &item, 1);
}

typedef struct async_slot {
	int done;
	int rc;
} async_slot;

static void async_done(void *ctx, const durq_completion *c)
{
	async_slot *s = ctx;
	ck_pr_store_int(&s->rc, c->rc);
	ck_pr_store_int(&s->done, 1);
}

/* After a flush, every slot whose submit returned OK must have completed. */
static int async_result(run *r, int submit_rc, async_slot *s)
{
	if (submit_rc < 0)
		return submit_rc;
	if (!ck_pr_load_int(&s->done)) {
		violation(r, "an async op accepted before durq_flush had not completed after it");
		return DURQ_EIO;
	}
	return ck_pr_load_int(&s->rc);
}

static void st_enqueue_async_w4(run *r, outcome *o)
{
	async_slot s = {0, 0};
	durq_work w = work_of(FM_W4);
	durq_async a = {.done = async_done, .ctx = &s};
	int rc = durq_work_enqueue_async(r->db, &w, 1, &a);
	int frc = durq_flush(r->db, -1);
	if (frc != DURQ_OK)
		violation(r, "durq_flush(-1) returned %s", durq_error_name(frc));
	set_enqueued(o, FM_W4);
	add_group(o, FM_BIT(FM_W4), async_result(r, rc, &s), DURQ_OK);
}

static void st_orch_enqueue(run *r, outcome *o)
{
	durq_message m = {.instance_id = FM_INSTANCE, .kind = 1, .payload = FM_START_PAYLOAD,
			  .payload_len = strlen(FM_START_PAYLOAD)};
	o->post.o.start = 1;
	add_group(o, FM_BIT(FM_ORCH), durq_orch_enqueue(r->db, &m, 1), DURQ_OK);
}

/* Fetch: the model's visible items, FIFO (the enum is the enqueue order), up to max. */
static int fetch_expected(const fm_model *m, size_t max, int *out)
{
	int n = 0;
	for (int i = 0; i < FM_ITEMS && (size_t)n < max; i++)
		if (m->w[i].present && m->w[i].leased == FM_FREE)
			out[n++] = i;
	return n;
}

static void check_fetched(run *r, outcome *o, const durq_work_item *it, size_t n,
			  const int *want, int nwant)
{
	if (n != (size_t)nwant) {
		violation(r, "fetch returned %zu items, the model has %d visible", n, nwant);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		fm_item *w = &o->post.w[want[k]];
		const char *p = fm_payload(want[k]);
		if (it[k].payload_len != strlen(p) || memcmp(it[k].payload, p, it[k].payload_len) ||
		    it[k].attempt != w->attempt || it[k].lease_until_ms != r->now + LEASE_MS) {
			violation(r, "fetch item %zu: got %.*s attempt %d lease %lld, want %s attempt "
				  "%d lease %lld", k, (int)it[k].payload_len, (const char *)it[k].payload,
				  it[k].attempt, (long long)it[k].lease_until_ms, p, w->attempt,
				  (long long)(r->now + LEASE_MS));
			return;
		}
		w->leased = FM_OURS;
		w->token = it[k].token;
		w->id = it[k].id;
	}
}

static void fetch(run *r, outcome *o, size_t max)
{
	int want[FM_ITEMS];
	int nwant = fetch_expected(&r->m, max, want);
	unsigned mask = 0;
	for (int k = 0; k < nwant; k++) {
		fm_item *w = &o->post.w[want[k]];
		w->leased = FM_LOST; /* unless the call returns it to us */
		w->attempt++;
		w->lease_until = r->now + LEASE_MS;
		mask |= FM_BIT(want[k]);
	}
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(r->db, &it, &n, QUEUE, max, LEASE_MS, 0);
	if (rc == DURQ_OK)
		check_fetched(r, o, it, n, want, nwant);
	durq_work_items_free(it, n);
	add_group(o, mask, rc, nwant ? DURQ_OK : DURQ_EMPTY);
}

static void st_fetch_2(run *r, outcome *o)
{
	fetch(r, o, 2);
}

static void st_fetch_8(run *r, outcome *o)
{
	fetch(r, o, 8);
}

static void st_ack_one(run *r, outcome *o)
{
	int i = lowest_ours(&r->m);
	if (i < 0)
		return;
	o->post.w[i].present = 0;
	add_group(o, FM_BIT(i), durq_work_ack(r->db, r->m.w[i].id, &r->m.w[i].token, NULL),
		  DURQ_OK);
}

static void st_renew(run *r, outcome *o)
{
	int i = lowest_ours(&r->m);
	if (i < 0)
		return;
	int64_t until = 0, want = r->now + RENEW_MS;
	o->post.w[i].lease_until = want;
	int rc = durq_work_renew(r->db, &until, r->m.w[i].id, &r->m.w[i].token, RENEW_MS);
	if (rc == DURQ_OK && until != want)
		violation(r, "renew: lease until %lld, want %lld", (long long)until, (long long)want);
	add_group(o, FM_BIT(i), rc, DURQ_OK);
}

static void st_abandon(run *r, outcome *o)
{
	int i = lowest_ours(&r->m);
	if (i < 0)
		return;
	o->post.w[i].leased = FM_FREE;
	add_group(o, FM_BIT(i), durq_work_abandon(r->db, r->m.w[i].id, &r->m.w[i].token, 0, 0),
		  DURQ_OK);
}

static void check_turn(run *r, outcome *o, const durq_turn *t)
{
	const size_t sl = strlen(FM_START_PAYLOAD);
	if (strcmp(t->instance_id, FM_INSTANCE) || t->n_messages != 1 ||
	    t->messages[0].payload_len != sl || memcmp(t->messages[0].payload, FM_START_PAYLOAD, sl) ||
	    t->exists != r->m.o.instance || t->n_history != (size_t)r->m.o.history) {
		violation(r, "orch fetch: got instance %s with %zu messages, exists %d, %zu events; "
			  "want o1, 1 message (the start), exists %d, %d events", t->instance_id,
			  t->n_messages, t->exists, t->n_history, r->m.o.instance, r->m.o.history);
		return;
	}
	o->post.o.locked = FM_OURS;
	o->post.o.token = t->token;
}

static void st_orch_fetch(run *r, outcome *o)
{
	int visible = r->m.o.start == 1 && r->m.o.locked == FM_FREE;
	if (visible) {
		o->post.o.start = 2;
		o->post.o.locked = FM_LOST;
	}
	durq_turn *t = NULL;
	int rc = durq_orch_fetch(r->db, &t, LEASE_MS, 0);
	if (rc == DURQ_OK)
		check_turn(r, o, t);
	durq_turn_free(t);
	add_group(o, visible ? FM_BIT(FM_ORCH) : 0, rc, visible ? DURQ_OK : DURQ_EMPTY);
}

/* The turn: one history event, activity a1, a timer; all of it or nothing. */
static void st_orch_ack(run *r, outcome *o)
{
	if (r->m.o.locked != FM_OURS)
		return;
	durq_event ev = {.event_id = 1, .payload = "ev1", .payload_len = 3};
	durq_work act = work_of(FM_A1);
	act.instance_id = FM_INSTANCE;
	act.execution_id = 1;
	act.activity_id = 1;
	durq_message timer = {.instance_id = FM_INSTANCE, .kind = 2, .payload = FM_TIMER_PAYLOAD,
			      .payload_len = strlen(FM_TIMER_PAYLOAD), .visible_at_ms = TIMER_AT};
	durq_turn_result res = DURQ_TURN_RESULT_INIT;
	res.name = "orch";
	res.history = &ev;
	res.n_history = 1;
	res.work = &act;
	res.n_work = 1;
	res.messages = &timer;
	res.n_messages = 1;
	o->post.o = (fm_orch){.start = 0, .timer = 1, .instance = 1, .history = 1};
	set_enqueued(o, FM_A1);
	add_group(o, FM_BIT(FM_ORCH) | FM_BIT(FM_A1),
		  durq_orch_ack(r->db, FM_INSTANCE, &r->m.o.token, &res), DURQ_OK);
}

static void st_ack_many(run *r, outcome *o)
{
	durq_work_ack_req req[FM_ITEMS];
	int idx[FM_ITEMS], rcs[FM_ITEMS];
	size_t n = 0;
	for (int i = 0; i < FM_ITEMS; i++)
		if (r->m.w[i].present && r->m.w[i].leased == FM_OURS) {
			req[n] = (durq_work_ack_req){r->m.w[i].id, &r->m.w[i].token, NULL};
			rcs[n] = 1; /* not a durq code: must be overwritten */
			idx[n++] = i;
		}
	if (!n)
		return;
	durq_work_ack_many(r->db, req, n, rcs);
	for (size_t k = 0; k < n; k++) {
		o->post.w[idx[k]].present = 0;
		add_group(o, FM_BIT(idx[k]), rcs[k], DURQ_OK);
	}
}

static void st_ack_async(run *r, outcome *o)
{
	async_slot s[FM_ITEMS];
	int idx[FM_ITEMS], sub[FM_ITEMS];
	size_t n = 0;
	for (int i = 0; i < FM_ITEMS; i++)
		if (r->m.w[i].present && r->m.w[i].leased == FM_OURS) {
			s[n] = (async_slot){0, 0};
			durq_async a = {.done = async_done, .ctx = &s[n]};
			sub[n] = durq_work_ack_async(r->db, r->m.w[i].id, &r->m.w[i].token, NULL, &a);
			idx[n++] = i;
		}
	if (!n)
		return;
	int frc = durq_flush(r->db, -1);
	if (frc != DURQ_OK)
		violation(r, "durq_flush(-1) returned %s", durq_error_name(frc));
	for (size_t k = 0; k < n; k++) {
		o->post.w[idx[k]].present = 0;
		add_group(o, FM_BIT(idx[k]), async_result(r, sub[k], &s[k]), DURQ_OK);
	}
}

static const step steps[] = {
	{"open", st_open},
	{"enqueue w1-w3", st_enqueue_w123},
	{"enqueue_async w4 + flush", st_enqueue_async_w4},
	{"orch_enqueue start", st_orch_enqueue},
	{"fetch 2", st_fetch_2},
	{"ack", st_ack_one},
	{"renew", st_renew},
	{"abandon", st_abandon},
	{"orch_fetch", st_orch_fetch},
	{"orch_ack (turn)", st_orch_ack},
	{"fetch 8", st_fetch_8},
	{"ack_many", st_ack_many},
	{"close (checkpoint)", st_close},
	{"reopen", st_open},
	{"enqueue w5", st_enqueue_w5},
	{"fetch 8 after reopen", st_fetch_8},
	{"ack_async all + flush", st_ack_async},
	{"close", st_close},
};
#define N_STEPS (int)(sizeof(steps) / sizeof(steps[0]))

static const char *step_name(int i)
{
	return i >= 0 && i < N_STEPS ? steps[i].name : i == N_STEPS ? "final check" : "?";
}

/* ---- judging a step ----------------------------------------------------------------- */

static int is_io_error(int rc)
{
	return rc == DURQ_EIO || rc == DURQ_EFULL;
}

/* One failed op: the database must show it applied entirely or not at all. */
static void resolve_failed(run *r, const outcome *o, const group *g, const fm_model *d)
{
	char why[256] = "";
	if (!is_io_error(g->rc))
		violation(r, "a failed op returned %s, not DURQ_EIO/DURQ_EFULL: %s",
			  durq_error_name(g->rc), durq_error_last());
	if (fm_agree(&r->m, d, g->mask, why, sizeof(why)))
		return; /* not applied: what durq.h promises in this process */
	if (fm_agree(&o->post, d, g->mask, why, sizeof(why))) {
		r->fig->applied_anyway++;
		fm_take(&r->m, &o->post, g->mask);
		return;
	}
	violation(r, "an op that failed (%s) is half applied: %s", durq_error_name(g->rc), why);
}

/* Compare the database with the model: entities the step did not touch are as they were;
 * each OK'd op applied; each failed one applied entirely or not at all. */
static void check_db(run *r, const outcome *o)
{
	fm_model d;
	char why[256] = "";
	unsigned touched = 0;
	for (int k = 0; k < o->ng; k++)
		touched |= o->g[k].mask;
	int rc = fm_read_db(&d, r->path, r->now, why, sizeof(why));
	if (rc == 1 && !touched) {
		r->fig->deferred++; /* a failed first open left a hot journal: next open's job */
		return;
	}
	if (rc != 0) {
		violation(r, "database check: %s", rc > 0 ? "a hot journal after a failed op" : why);
		return;
	}
	if (!fm_agree(&r->m, &d, FM_ALL & ~touched, why, sizeof(why)))
		violation(r, "something no op of this step touches changed: %s", why);
	for (int k = 0; k < o->ng; k++) {
		const group *g = &o->g[k];
		if (g->rc != g->expect) {
			resolve_failed(r, o, g, &d);
			continue;
		}
		if (!fm_agree(&o->post, &d, g->mask, why, sizeof(why)))
			violation(r, "an op that returned %s is not in the database as it said: %s",
				  durq_error_name(g->rc), why);
		fm_take(&r->m, &o->post, g->mask);
	}
}

static void count_codes(run *r, const outcome *o)
{
	int failed = 0;
	for (int k = 0; k < o->ng; k++) {
		failed |= o->g[k].rc != o->g[k].expect;
		r->fig->eio += o->g[k].rc == DURQ_EIO;
		r->fig->efull += o->g[k].rc == DURQ_EFULL;
	}
	r->fig->absorbed += !failed;
}

/* A call failed after the fault cleared: the handle may need a close and reopen, once. */
static void recover(run *r)
{
	if (++r->post_failures > 1) {
		violation(r, "a call failed again after the fault cleared and the handle was "
			  "reopened: %s", durq_error_last());
		return;
	}
	r->fig->reopened++;
	durq_free(r->db);
	r->db = NULL;
	if (open_handle(r) != DURQ_OK) {
		r->db = NULL;
		violation(r, "reopen after the fault cleared failed: %s", durq_error_last());
	}
}

static void settle(run *r, const outcome *o)
{
	int fired_now = r->fired < 0 && faultvfs_injected(r->cfg->vfs) > 0;
	int failed = 0;
	if (fired_now) {
		r->fired = r->step;
		faultvfs_disarm(r->cfg->vfs); /* a persistent fault lasts one step */
	}
	for (int k = 0; k < o->ng; k++)
		failed |= o->g[k].rc != o->g[k].expect;
	if (r->cfg->verbose)
		for (int k = 0; k < o->ng; k++)
			fprintf(stderr, "  step %-26s rc %-15s want %-11s%s%s\n", step_name(r->step),
				durq_error_name(o->g[k].rc), durq_error_name(o->g[k].expect),
				fired_now ? " (fault fired)" : "", o->g[k].rc < 0 ? durq_error_last() : "");
	if (r->fired < 0) { /* before the fault: as in a fault-free run */
		if (failed)
			violation(r, "a call failed before any fault fired: %s", durq_error_last());
		r->m = o->post;
		return;
	}
	if (fired_now)
		count_codes(r, o);
	if (!fired_now && !failed) {
		r->m = o->post;
		return;
	}
	check_db(r, o);
	if (!fired_now && failed)
		recover(r);
}

/* Steps after the fault run on a handle: if it is gone (its open failed), reopen. */
static int ensure_handle(run *r, int i)
{
	if (r->db || steps[i].fn == st_open)
		return 0;
	if (r->fired < 0) {
		violation(r, "no handle, and no fault fired");
		return -1;
	}
	r->fig->open_failed++;
	if (r->post_failures++ > 0 || open_handle(r) != DURQ_OK) {
		r->db = NULL;
		violation(r, "cannot get a working handle after the fault cleared: %s",
			  durq_error_last());
		return -1;
	}
	return 0;
}

/* After the last step: the file holds exactly the model, and a fresh handle works. */
static void final_check(run *r)
{
	fm_model d;
	char why[256] = "";
	r->step = N_STEPS;
	int rc = fm_read_db(&d, r->path, r->now, why, sizeof(why));
	if (rc != 0)
		violation(r, "final check: %s", rc > 0 ? "a hot journal after close" : why);
	else if (!fm_agree(&r->m, &d, FM_ALL, why, sizeof(why)))
		violation(r, "final state differs from the OK'd calls: %s", why);
	durq_work probe = {.queue = "probe", .payload = "p", .payload_len = 1};
	rc = open_handle(r);
	if (rc == DURQ_OK)
		rc = durq_work_enqueue(r->db, &probe, 1);
	if (rc == DURQ_OK)
		rc = durq_close(r->db);
	if (rc != DURQ_OK)
		violation(r, "a fresh handle does not work after the run: %s: %s",
			  durq_error_name(rc), durq_error_last());
	durq_free(r->db);
	r->db = NULL;
}

static void remove_files(const run *r)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char name[600];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", r->path, suffix[i]);
		unlink(name);
	}
}

int fw_run(const fw_config *cfg, int op, long nth, int rc, fw_figures *fig, long *print_budget,
	   long counts[FAULTVFS__COUNT])
{
	run *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	*r = (run){.cfg = cfg, .fig = fig, .print_budget = print_budget, .op = op, .nth = nth,
		   .now = T0, .fired = -1};
	snprintf(r->path, sizeof(r->path), "%s/fault.db", cfg->dir);
	snprintf(r->url, sizeof(r->url), "sqlite:%s?vfs=%s", r->path, faultvfs_name(cfg->vfs));
	remove_files(r);
	fig->runs++;
	faultvfs_reset(cfg->vfs);
	if (nth > 0)
		faultvfs_arm(cfg->vfs, op, nth, cfg->repeat, rc);
	for (int i = 0; i < N_STEPS; i++) {
		outcome o = {.post = r->m, .ng = 0};
		r->step = i;
		if (ensure_handle(r, i) < 0)
			break;
		steps[i].fn(r, &o);
		settle(r, &o);
	}
	faultvfs_disarm(cfg->vfs);
	for (int t = 0; counts && t < FAULTVFS__COUNT; t++)
		counts[t] = faultvfs_calls(cfg->vfs, t);
	if (r->db) { /* a step failed to close it (a violation already) */
		durq_free(r->db);
		r->db = NULL;
	}
	if (nth > 0 && r->fired < 0)
		fig->not_reached++;
	final_check(r);
	remove_files(r);
	int v = r->violations;
	free(r);
	return v;
}
