/*
 * postgres_pipe.c — the PostgreSQL provider's libpq plumbing: statement parameters and
 * arrays in the binary wire format (no value is ever formatted into SQL text), pipeline
 * mode (send many statements, one sync, read the results in order; sending is
 * non-blocking and reads whatever the server answers meanwhile, so a large batch cannot
 * deadlock with a server blocked on writing its results), single statements for reads,
 * decoding of binary results into durq_mem_* copies, and SQLSTATE -> durq code mapping.
 * Messages never carry the connection URL; a password that could echo is redacted.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

/* ---- parameters ----------------------------------------------------------------------- */

void pg_params_init(pg_params *p)
{
	memset(p, 0, sizeof(*p));
}

void pg_params_free(pg_params *p)
{
	for (int i = 0; i < p->n_owned; i++)
		free(p->owned[i]);
	p->n_owned = 0;
}

static int slot(pg_params *p)
{
	if (p->n >= PG_MAX_PARAMS) {
		p->oom = 1; /* a programming error; reported as out of memory by pg_pipe_send */
		return -1;
	}
	p->formats[p->n] = 1;
	return p->n++;
}

static void put_be(char *dst, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		dst[i] = (char)(v & 0xff);
}

void pg_param_null(pg_params *p)
{
	int i = slot(p);
	if (i >= 0) {
		p->values[i] = NULL;
		p->lengths[i] = 0;
	}
}

void pg_param_bytes(pg_params *p, const void *b, size_t n)
{
	int i = slot(p);
	if (i < 0)
		return;
	if (n > INT_MAX) {
		p->oom = 1;
		return;
	}
	p->values[i] = b ? (n ? (const char *)b : "") : NULL;
	p->lengths[i] = (int)n;
}

void pg_param_text(pg_params *p, const char *s)
{
	pg_param_bytes(p, s, s ? strlen(s) : 0);
}

void pg_param_token(pg_params *p, const durq_token *t)
{
	pg_param_bytes(p, t->bytes, sizeof(t->bytes));
}

static void param_int(pg_params *p, uint64_t v, int bytes)
{
	int i = slot(p);
	if (i < 0)
		return;
	put_be(p->num[i], v, bytes);
	p->values[i] = p->num[i];
	p->lengths[i] = bytes;
}

void pg_param_i64(pg_params *p, int64_t v)
{
	param_int(p, (uint64_t)v, 8);
}

void pg_param_i32(pg_params *p, int32_t v)
{
	param_int(p, (uint32_t)v, 4);
}

void pg_param_bool(pg_params *p, int v)
{
	param_int(p, v ? 1 : 0, 1);
}

/* The array header: 1 dimension of n elements from 1 (or none when empty). */
static size_t arr_finish(pg_arr *a)
{
	if (a->n == 0) {
		put_be(a->buf, 0, 4);
		put_be(a->buf + 4, 0, 4);
		put_be(a->buf + 8, a->elem_oid, 4);
		return 12;
	}
	put_be(a->buf, 1, 4);
	put_be(a->buf + 4, a->has_null ? 1 : 0, 4);
	put_be(a->buf + 8, a->elem_oid, 4);
	put_be(a->buf + 12, a->n, 4);
	put_be(a->buf + 16, 1, 4);
	return a->len;
}

void pg_param_arr(pg_params *p, pg_arr *a)
{
	int i = slot(p);
	if (i < 0 || a->oom || a->len > INT_MAX || p->n_owned >= PG_MAX_PARAMS) {
		p->oom = 1;
		pg_arr_free(a);
		return;
	}
	p->lengths[i] = (int)arr_finish(a);
	p->values[i] = a->buf;
	p->owned[p->n_owned++] = a->buf;
	a->buf = NULL;
}

/* ---- arrays ----------------------------------------------------------------------------- */

static void arr_reserve(pg_arr *a, size_t more)
{
	if (a->oom || a->len + more <= a->cap)
		return;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + more)
		cap *= 2;
	char *b = realloc(a->buf, cap);
	if (!b) {
		a->oom = 1;
		return;
	}
	a->buf = b;
	a->cap = cap;
}

void pg_arr_init(pg_arr *a, uint32_t elem_oid)
{
	memset(a, 0, sizeof(*a));
	a->elem_oid = elem_oid;
	arr_reserve(a, 20);
	a->len = 20; /* header, written by arr_finish */
}

void pg_arr_free(pg_arr *a)
{
	free(a->buf);
	a->buf = NULL;
}

static void arr_elem(pg_arr *a, const void *b, size_t n)
{
	if (n > INT_MAX) {
		a->oom = 1;
		return;
	}
	arr_reserve(a, 4 + n);
	if (a->oom)
		return;
	put_be(a->buf + a->len, b ? n : 0xffffffffu, 4);
	a->len += 4;
	if (b && n)
		memcpy(a->buf + a->len, b, n);
	a->len += b ? n : 0;
	a->has_null |= !b;
	a->n++;
}

void pg_arr_bytes(pg_arr *a, const void *b, size_t n)
{
	arr_elem(a, b ? (n ? b : "") : NULL, n);
}

void pg_arr_text(pg_arr *a, const char *s)
{
	arr_elem(a, s, s ? strlen(s) : 0);
}

void pg_arr_i64(pg_arr *a, int64_t v)
{
	char b[8];
	put_be(b, (uint64_t)v, 8);
	arr_elem(a, b, 8);
}

void pg_arr_i32(pg_arr *a, int32_t v)
{
	char b[4];
	put_be(b, (uint32_t)v, 4);
	arr_elem(a, b, 4);
}

void pg_arr_bool(pg_arr *a, int v)
{
	char b = v ? 1 : 0;
	arr_elem(a, &b, 1);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* Every occurrence of needle in msg replaced by with (the rest blanked if it cannot fit). */
static void replace_all(char *msg, size_t cap, const char *needle, const char *with)
{
	size_t n = needle ? strlen(needle) : 0, w = strlen(with);
	char *from = msg, *hit;
	if (n == 0)
		return;
	while ((hit = strstr(from, needle))) {
		size_t tail = strlen(hit + n) + 1;
		if ((size_t)(hit - msg) + w + tail > cap) {
			memset(hit, '*', strlen(hit));
			return;
		}
		memmove(hit + w, hit + n, tail);
		memcpy(hit, with, w);
		from = hit + w;
	}
}

void pg_redact(const pg_provider *p, char *msg, size_t cap)
{
	if (!p)
		return;
	replace_all(msg, cap, p->conninfo, "(the URL)"); /* libpq quotes a URL it cannot parse */
	for (int s = 0; s < 2; s++)
		replace_all(msg, cap, p->secret[s], "***");
}

/* One line: libpq's multi-line messages joined, trailing newline dropped. */
static void tidy(char *msg)
{
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	for (char *s = msg; *s; s++)
		if (*s == '\n' || *s == '\t')
			*s = ' ';
}

void pg_message(const pg_provider *p, const char *in, char *out, size_t cap)
{
	snprintf(out, cap, "%s", in ? in : "");
	tidy(out);
	pg_redact(p, out, cap);
}

int pg_ok(const PGresult *r)
{
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

int pg_conn_broken(const pg_conn *c)
{
	return !c->pg || PQstatus(c->pg) != CONNECTION_OK;
}

static int starts(const char *state, const char *prefix)
{
	return state && !strncmp(state, prefix, strlen(prefix));
}

static int code_of(const char *state)
{
	if (!strcmp(state, "23505"))
		return DURQ_EDUP;
	if (starts(state, "22") || starts(state, "23"))
		return DURQ_EINVAL;
	if (starts(state, "40") || !strcmp(state, "55P03") || !strcmp(state, "57014") ||
	    !strcmp(state, "53300"))
		return DURQ_EBUSY;
	if (!strcmp(state, "53100"))
		return DURQ_EFULL;
	if (!strcmp(state, "53200"))
		return DURQ_ENOMEM;
	if (starts(state, "54"))
		return DURQ_ETOOBIG;
	if (!strcmp(state, "XX001") || !strcmp(state, "XX002"))
		return DURQ_ECORRUPT;
	return DURQ_EIO;
}

int pg_error_is_op_local(const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return starts(state, "22") || starts(state, "23") || starts(state, "40") ||
	       starts(state, "54") || (state && (!strcmp(state, "55P03") ||
						  !strcmp(state, "57014")));
}

int pg_error(pg_conn *c, const PGresult *r, const char *what)
{
	char msg[384];
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *text = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (r && PQresultStatus(r) == PGRES_PIPELINE_ABORTED)
		return durq_error_set(DURQ_EIO, "postgresql: %s: not run (an earlier statement of "
				      "the transaction failed)", what);
	if (!text || !*text)
		text = c->pg ? PQerrorMessage(c->pg) : "no connection";
	pg_message(c->p, text, msg, sizeof(msg));
	if (!state || pg_conn_broken(c))
		return durq_error_set(DURQ_EIO, "postgresql: %s: connection failed: %s", what, msg);
	int code = code_of(state);
	if (!strcmp(state, "22021") || !strcmp(state, "22P05"))
		return durq_error_set(code, "postgresql: %s: %s (ids, queues and names must be "
				      "valid UTF-8)", what, msg);
	return durq_error_set(code, "postgresql: %s: %s (SQLSTATE %s)", what, msg, state);
}

static int conn_lost(pg_conn *c, const char *what)
{
	return pg_error(c, NULL, what);
}

/* ---- pipeline ------------------------------------------------------------------------- */

/* Wait until the socket is writable or readable; take what the server sent. */
static int wait_io(pg_conn *c)
{
	struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN | POLLOUT};
	if (pfd.fd < 0)
		return -1;
	if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
		return -1;
	if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c->pg))
		return -1;
	return 0;
}

static int flush_all(pg_conn *c)
{
	int f;
	while ((f = PQflush(c->pg)) == 1)
		if (wait_io(c) < 0)
			return -1;
	return f;
}

static int send_prepared(pg_conn *c, enum pg_stmt_id id, const pg_params *p)
{
	if (p && p->oom)
		return durq_error_set(DURQ_ENOMEM, "postgresql: out of memory building the "
				      "parameters of %s", pg_stmt_name(id));
	if (!PQsendQueryPrepared(c->pg, pg_stmt_name(id), p ? p->n : 0, p ? p->values : NULL,
				 p ? p->lengths : NULL, p ? p->formats : NULL, 1))
		return conn_lost(c, pg_stmt_name(id));
	return DURQ_OK;
}

int pg_prefix_add(pg_conn *c, enum pg_stmt_id id)
{
	int rc;
	if (c->n_prefix == PG_PREFIX_MAX && (rc = pg_prefix_flush(c)) < 0)
		return rc;
	c->prefix[c->n_prefix++] = id;
	return DURQ_OK;
}

int pg_pipe_start(pg_conn *c)
{
	if (pg_conn_broken(c))
		return conn_lost(c, "send");
	if (!PQenterPipelineMode(c->pg) || PQsetnonblocking(c->pg, 1) != 0)
		return conn_lost(c, "enter pipeline mode");
	c->in_pipeline = 1;
	int n = c->n_prefix, rc;
	c->n_prefix = 0;
	for (int i = 0; i < n; i++) {
		if (c->prefix[i] == PG_BEGIN)
			c->txn = PG_TXN_OPEN;
		if ((rc = send_prepared(c, c->prefix[i], NULL)) < 0)
			return rc;
	}
	return n;
}

/* libpq writes out its buffer past 8 KB by itself (without blocking: non-blocking mode),
 * and reads what the server sends meanwhile; pg_pipe_sync flushes the rest. */
int pg_pipe_send(pg_conn *c, enum pg_stmt_id id, const pg_params *p)
{
	return send_prepared(c, id, p);
}

int pg_pipe_sync(pg_conn *c)
{
	if (!PQpipelineSync(c->pg) || flush_all(c) < 0 || PQsetnonblocking(c->pg, 0) != 0)
		return conn_lost(c, "send");
	return DURQ_OK;
}

PGresult *pg_pipe_next(pg_conn *c)
{
	PGresult *r = PQgetResult(c->pg);
	if (!r) {
		conn_lost(c, "read result");
		pg_pipe_abandon(c);
		return NULL;
	}
	if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) { /* fewer results than statements */
		PQclear(r);
		durq_error_set(DURQ_EIO, "postgresql: pipeline out of step (a result is missing)");
		pg_pipe_abandon(c);
		return NULL;
	}
	if (!pg_conn_broken(c)) {
		PGresult *end = PQgetResult(c->pg); /* the NULL that closes this statement */
		if (end) {
			PQclear(end);
			PQclear(r);
			durq_error_set(DURQ_EIO, "postgresql: pipeline out of step (extra result)");
			pg_pipe_abandon(c);
			return NULL;
		}
	}
	return r;
}

int pg_pipe_prefix_results(pg_conn *c, int n_prefix)
{
	int rc = DURQ_OK;
	for (int i = 0; i < n_prefix; i++) {
		PGresult *r = pg_pipe_next(c);
		if (!r)
			return DURQ_EIO;
		if (rc == DURQ_OK && !pg_ok(r))
			rc = pg_error(c, r, "begin");
		PQclear(r);
	}
	return rc;
}

int pg_pipe_finish(pg_conn *c)
{
	int nulls = 0;
	while (!pg_conn_broken(c)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			if (++nulls > 2)
				break;
			continue;
		}
		nulls = 0;
		ExecStatusType s = PQresultStatus(r);
		PQclear(r);
		if (s != PGRES_PIPELINE_SYNC)
			continue;
		if (!PQexitPipelineMode(c->pg))
			break;
		c->in_pipeline = 0;
		return DURQ_OK;
	}
	int rc = conn_lost(c, "end of pipeline");
	pg_pipe_abandon(c);
	return rc;
}

/* The session is out of step or gone: drop it. The next use reconnects (outside a
 * transaction) or fails with EIO (inside one: the server rolled it back). */
void pg_pipe_abandon(pg_conn *c)
{
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->in_pipeline = 0;
	c->listening = 0;
}

int pg_prefix_flush(pg_conn *c)
{
	if (c->n_prefix == 0)
		return DURQ_OK;
	int n = pg_pipe_start(c);
	if (n < 0)
		return n;
	int rc = pg_pipe_sync(c);
	if (rc == DURQ_OK)
		rc = pg_pipe_prefix_results(c, n);
	int frc = c->pg ? pg_pipe_finish(c) : DURQ_EIO;
	return rc < 0 ? rc : frc;
}

int pg_exec(pg_conn *c, enum pg_stmt_id id, const pg_params *p, const char *what,
	    PGresult **out)
{
	*out = NULL;
	if (p && p->oom)
		return durq_error_set(DURQ_ENOMEM, "postgresql: %s: out of memory", what);
	if (pg_conn_broken(c))
		return conn_lost(c, what);
	PGresult *r = PQexecPrepared(c->pg, pg_stmt_name(id), p ? p->n : 0, p ? p->values : NULL,
				     p ? p->lengths : NULL, p ? p->formats : NULL, 1);
	if (!pg_ok(r)) {
		int rc = pg_error(c, r, what);
		PQclear(r);
		return rc;
	}
	*out = r;
	return DURQ_OK;
}

/* ---- results ---------------------------------------------------------------------------- */

int pg_isnull(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col);
}

static uint64_t get_be(const unsigned char *v, int n)
{
	uint64_t x = 0;
	for (int i = 0; i < n; i++)
		x = x << 8 | v[i];
	return x;
}

int64_t pg_i64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
	switch (PQgetlength(r, row, col)) {
	case 8: return (int64_t)get_be(v, 8);
	case 4: return (int32_t)(uint32_t)get_be(v, 4);
	case 2: return (int16_t)(uint16_t)get_be(v, 2);
	case 1: return v[0];
	default: return 0;
	}
}

int32_t pg_i32(const PGresult *r, int row, int col)
{
	return (int32_t)pg_i64(r, row, col);
}

char *pg_text(const PGresult *r, int row, int col, int *oom)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	size_t n = (size_t)PQgetlength(r, row, col);
	char *s = durq_mem_alloc(n + 1);
	if (!s) {
		*oom = 1;
		return NULL;
	}
	memcpy(s, PQgetvalue(r, row, col), n);
	s[n] = '\0';
	return s;
}

void *pg_bytes(const PGresult *r, int row, int col, size_t *len, int *oom)
{
	*len = 0;
	if (PQgetisnull(r, row, col))
		return NULL;
	size_t n = (size_t)PQgetlength(r, row, col);
	void *b = durq_mem_alloc(n ? n : 1);
	if (!b) {
		*oom = 1; /* never a payload NULL with a length */
		return NULL;
	}
	memcpy(b, PQgetvalue(r, row, col), n);
	*len = n;
	return b;
}
