/*
 * history.c — history events of the runtime: the text encoding described in history.h and
 * a growable list of events. Knows nothing of durq or of replay.
 */
#include "history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
	[RT_H_STARTED] = "started", [RT_H_SCHEDULED] = "scheduled", [RT_H_RESULT] = "result",
	[RT_H_TIMER] = "timer",	    [RT_H_FIRED] = "fired",	    [RT_H_EVENT] = "event",
	[RT_H_COMPLETED] = "completed", [RT_H_FAILED] = "failed",
};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

static int type_from_name(const char *s, size_t len)
{
	for (size_t t = 1; t < N_TYPES; t++)
		if (strlen(type_names[t]) == len && memcmp(type_names[t], s, len) == 0)
			return (int)t;
	return 0;
}

static char *dup_n(const char *s, size_t len)
{
	char *d = malloc(len + 1);
	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

void rt_hevent_clear(rt_hevent *e)
{
	free(e->name);
	free(e->value);
	*e = (rt_hevent){0};
}

int rt_history_take(rt_history *h, rt_hevent *e)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 16;
		rt_hevent *ev = realloc(h->ev, cap * sizeof *ev);
		if (!ev) {
			rt_hevent_clear(e);
			return -1;
		}
		h->ev = ev;
		h->cap = cap;
	}
	h->ev[h->n++] = *e;
	*e = (rt_hevent){0};
	return 0;
}

int rt_history_push(rt_history *h, int type, uint64_t seq, const char *name, const char *value)
{
	rt_hevent e = {.type = type, .seq = seq};
	e.name = strdup(name ? name : "");
	e.value = strdup(value ? value : "");
	if (!e.name || !e.value) {
		rt_hevent_clear(&e);
		return -1;
	}
	return rt_history_take(h, &e);
}

long rt_history_find(const rt_history *h, int type, uint64_t seq)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->ev[i].type == type && h->ev[i].seq == seq)
			return (long)i;
	return -1;
}

void rt_history_clear(rt_history *h)
{
	for (size_t i = 0; i < h->n; i++)
		rt_hevent_clear(&h->ev[i]);
	free(h->ev);
	*h = (rt_history){0};
}

/* "prefix" + "type\nseq\nname\nvalue" into one malloc'd buffer. */
static int encode_with(const char *prefix, const rt_hevent *e, char **out, size_t *len)
{
	if (e->type <= 0 || (size_t)e->type >= N_TYPES || strchr(e->name, '\n'))
		return -1;
	int n = snprintf(NULL, 0, "%s%s\n%" PRIu64 "\n%s\n", prefix, type_names[e->type], e->seq,
			 e->name);
	size_t vlen = strlen(e->value);
	char *buf = malloc((size_t)n + vlen + 1);
	if (!buf)
		return -1;
	snprintf(buf, (size_t)n + 1, "%s%s\n%" PRIu64 "\n%s\n", prefix, type_names[e->type], e->seq,
		 e->name);
	memcpy(buf + n, e->value, vlen + 1);
	*out = buf;
	*len = (size_t)n + vlen; /* the NUL is not part of the payload */
	return 0;
}

int rt_hevent_encode(const rt_hevent *e, char **out, size_t *len)
{
	return encode_with("", e, out, len);
}

int rt_message_encode(uint64_t execution_id, const rt_hevent *e, char **out, size_t *len)
{
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%" PRIu64 "\n", execution_id);
	return encode_with(prefix, e, out, len);
}

/* Next '\n'-terminated field of [*p, end): its start and length; 0 or -1 if none. */
static int field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl)
		return -1;
	*f = *p;
	*flen = (size_t)(nl - *p);
	*p = nl + 1;
	return 0;
}

static int parse_u64(const char *s, size_t len, uint64_t *v)
{
	char tmp[24], *endp;
	if (len == 0 || len >= sizeof tmp)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	*v = strtoull(tmp, &endp, 10);
	return *endp == '\0' ? 0 : -1;
}

static int decode_from(rt_hevent *e, const char *p, const char *end)
{
	const char *f;
	size_t flen;
	*e = (rt_hevent){0};
	if (field(&p, end, &f, &flen) < 0 || !(e->type = type_from_name(f, flen)) ||
	    field(&p, end, &f, &flen) < 0 || parse_u64(f, flen, &e->seq) < 0 ||
	    field(&p, end, &f, &flen) < 0 || memchr(p, '\0', (size_t)(end - p)))
		return -1;
	e->name = dup_n(f, flen);
	e->value = dup_n(p, (size_t)(end - p));
	if (!e->name || !e->value) {
		rt_hevent_clear(e);
		return -1;
	}
	return 0;
}

int rt_hevent_decode(rt_hevent *e, const void *buf, size_t len)
{
	const char *p = buf;
	if (!p || len == 0)
		return -1;
	return decode_from(e, p, p + len);
}

int rt_message_decode(uint64_t *execution_id, rt_hevent *e, const void *buf, size_t len)
{
	const char *p = buf, *end = p + len, *f;
	size_t flen;
	*e = (rt_hevent){0};
	if (!p || len == 0 || field(&p, end, &f, &flen) < 0 || parse_u64(f, flen, execution_id) < 0)
		return -1;
	return decode_from(e, p, end);
}
