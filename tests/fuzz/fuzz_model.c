/*
 * fuzz_model.c — the reference model of fuzz_api (see fuzz_model.h): pure bookkeeping, no
 * durq calls. Owns nothing but the model struct it is given.
 */
#include "fuzz_model.h"

#include <stdio.h>
#include <string.h>

static const char *const queue_names[M_QUEUES] = {"", "a", "b"};
static const char *const inst_names[M_INSTANCES] = {"i0", "i1", "i2", "i3"};

const char *m_queue_name(int q)
{
	return queue_names[q];
}

const char *m_inst_name(int i)
{
	return inst_names[i];
}

int m_inst_of(const char *name)
{
	for (int i = 0; name && i < M_INSTANCES; i++)
		if (!strcmp(name, inst_names[i]))
			return i;
	return -1;
}

static int same(const durq_token *a, const durq_token *b)
{
	return !memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}

int m_room(const model *m, int items, int msgs)
{
	return m->nw + items <= M_ITEMS && m->nm + msgs <= M_MSGS;
}

void m_next_payload(model *m, char prefix, char *out)
{
	snprintf(out, M_PAYLOAD, "%c%u", prefix, m->serial++);
}

m_item *m_add_item(model *m, int queue, int inst, int prio, int64_t delay_ms, const char *payload)
{
	m_item *w = &m->w[m->nw++];
	memset(w, 0, sizeof(*w));
	*w = (m_item){.live = 1, .queue = queue, .inst = inst, .prio = prio,
		      .visible_at = m->now + (delay_ms > 0 ? delay_ms : 0)};
	snprintf(w->payload, M_PAYLOAD, "%s", payload);
	return w;
}

m_msg *m_add_msg(model *m, int inst, int kind, int64_t visible_at, const char *payload)
{
	m_msg *g = &m->m[m->nm++];
	memset(g, 0, sizeof(*g));
	*g = (m_msg){.live = 1, .inst = inst, .kind = kind, .visible_at = visible_at};
	snprintf(g->payload, M_PAYLOAD, "%s", payload);
	return g;
}

/* ---- worker queue ------------------------------------------------------------------- */

static int claimable(const model *m, const m_item *w, int queue)
{
	return w->live && w->queue == queue &&
	       ((!w->leased && w->visible_at <= m->now) || (w->leased && w->lease_until <= m->now));
}

/* The next claimable item: highest priority, then oldest (lowest index = lowest id). */
static int next_claimable(const model *m, int queue, const unsigned char *taken)
{
	int best = -1;
	for (int i = 0; i < m->nw; i++)
		if (!taken[i] && claimable(m, &m->w[i], queue) &&
		    (best < 0 || m->w[i].prio > m->w[best].prio))
			best = i;
	return best;
}

static void dead_from_item(model *m, m_item *w)
{
	m_dead *d = &m->d[m->nd++];
	*d = (m_dead){.source = DURQ_DEAD_WORK, .queue = w->queue, .inst = w->inst, .prio = w->prio};
	memcpy(d->payload, w->payload, M_PAYLOAD);
	w->live = 0;
}

int m_work_claim(model *m, int queue, int max, int64_t lease_ms, const durq_token *t, int *out)
{
	unsigned char taken[M_ITEMS] = {0};
	int n = 0, i;
	while (n < max && (i = next_claimable(m, queue, taken)) >= 0) {
		m_item *w = &m->w[i];
		taken[i] = 1;
		if (++w->attempt > m->max_attempts) {
			dead_from_item(m, w);
			continue;
		}
		w->prev_token = w->token;
		w->token = *t;
		w->leased = 1;
		w->lease_until = m->now + lease_ms;
		out[n++] = i;
	}
	/* durq returns them sorted by priority, then id: the order of the loop above */
	return n;
}

int m_leased_item(const model *m, int64_t id, const durq_token *t)
{
	for (int i = 0; i < m->nw; i++) {
		const m_item *w = &m->w[i];
		if (w->live && w->id == id && w->leased && same(&w->token, t) &&
		    w->lease_until > m->now)
			return i;
	}
	return -1;
}

/* ---- orchestrations ----------------------------------------------------------------- */

int m_lock_live(const model *m, int i, const durq_token *t)
{
	const m_inst *n = &m->in[i];
	return n->locked && same(&n->lock, t) && n->lock_until > m->now;
}

static int has_visible(const model *m, int inst)
{
	for (int k = 0; k < m->nm; k++)
		if (m->m[k].live && m->m[k].inst == inst && m->m[k].visible_at <= m->now)
			return 1;
	return 0;
}

/* An instance whose lease expired with a visible message: the earliest expiry, ties by id. */
static int expired_instance(const model *m)
{
	int best = -1;
	for (int i = 0; i < M_INSTANCES; i++) {
		const m_inst *n = &m->in[i];
		if (n->locked && n->lock_until <= m->now && has_visible(m, i) &&
		    (best < 0 || n->lock_until < m->in[best].lock_until))
			best = i;
	}
	return best;
}

/* The instance of the oldest ready message: visible, untagged, instance not leased. */
static int ready_instance(const model *m)
{
	int best = -1;
	for (int k = 0; k < m->nm; k++) {
		const m_msg *g = &m->m[k];
		const m_inst *n = &m->in[g->inst];
		if (!g->live || g->tagged || g->visible_at > m->now ||
		    (n->locked && n->lock_until > m->now))
			continue;
		if (best < 0 || g->visible_at < m->m[best].visible_at)
			best = k;
	}
	return best < 0 ? -1 : m->m[best].inst;
}

/* Lease instance i with t and tag its visible messages; the highest attempt. */
static int lease_and_tag(model *m, int i, int64_t lease_ms, const durq_token *t)
{
	m_inst *n = &m->in[i];
	int attempt = 0;
	n->locked = 1;
	n->lock = *t;
	n->lock_until = m->now + lease_ms;
	for (int k = 0; k < m->nm; k++) {
		m_msg *g = &m->m[k];
		if (!g->live || g->inst != i || g->visible_at > m->now)
			continue;
		g->tagged = 1;
		g->tag = *t;
		if (++g->attempt > attempt)
			attempt = g->attempt;
	}
	return attempt;
}

static void poison_instance(model *m, int i, const durq_token *t)
{
	for (int k = 0; k < m->nm; k++) {
		m_msg *g = &m->m[k];
		if (!g->live || g->inst != i || !g->tagged || memcmp(&g->tag, t, sizeof(*t)))
			continue;
		m_dead *d = &m->d[m->nd++];
		*d = (m_dead){.source = DURQ_DEAD_ORCH, .inst = i, .kind = g->kind};
		memcpy(d->payload, g->payload, M_PAYLOAD);
		g->live = 0;
	}
	m->in[i].locked = 0;
	if (m->in[i].exists)
		m->in[i].status = DURQ_STATUS_FAILED;
}

int m_orch_claim(model *m, int64_t lease_ms, const durq_token *t, int *attempt)
{
	for (;;) {
		int i = expired_instance(m);
		if (i < 0)
			i = ready_instance(m);
		if (i < 0)
			return -1;
		*attempt = lease_and_tag(m, i, lease_ms, t);
		if (*attempt <= m->max_attempts) {
			m->in[i].prev = m->in[i].last;
			m->in[i].last = *t;
			return i;
		}
		poison_instance(m, i, t);
	}
}

/* ---- depths ------------------------------------------------------------------------- */

void m_depths(const model *m, int queue, durq_queue_depths *o)
{
	memset(o, 0, sizeof(*o));
	for (int k = 0; k < m->nm; k++) {
		const m_msg *g = &m->m[k];
		if (!g->live)
			continue;
		int leased = g->tagged && m_lock_live(m, g->inst, &g->tag);
		o->orch_delayed += g->visible_at > m->now;
		o->orch_ready += g->visible_at <= m->now && !leased;
		o->orch_leased += leased;
	}
	for (int i = 0; i < m->nw; i++) {
		const m_item *w = &m->w[i];
		if (!w->live || (queue >= 0 && w->queue != queue))
			continue;
		o->work_ready += (!w->leased && w->visible_at <= m->now) ||
				 (w->leased && w->lease_until <= m->now);
		o->work_delayed += !w->leased && w->visible_at > m->now;
		o->work_leased += w->leased && w->lease_until > m->now;
	}
	o->dead_letters = m->nd;
	for (int i = 0; i < M_INSTANCES; i++)
		o->instances_locked += m->in[i].locked && m->in[i].lock_until > m->now;
}
