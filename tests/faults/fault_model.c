/*
 * fault_model.c — the fault sweep's expected state and its read-back from the database
 * file (see fault_model.h). The read-back knows durq's SQLite schema (work_queue,
 * orch_queue, instances, history, instance_locks): it is a test of that provider.
 */
#include "fault_model.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static const char *const payloads[FM_ITEMS] = {"w1", "w2", "w3", "w4", "a1", "w5"};

const char *fm_payload(int item)
{
	return item >= 0 && item < FM_ITEMS ? payloads[item] : "?";
}

static int item_of(const void *p, int len)
{
	for (int i = 0; i < FM_ITEMS; i++)
		if ((size_t)len == strlen(payloads[i]) && !memcmp(p, payloads[i], (size_t)len))
			return i;
	return -1;
}

static int fail(char *why, size_t len, const char *msg, const char *detail)
{
	snprintf(why, len, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
	return -1;
}

/* A rollback journal left by a failed first open (before the database is in WAL mode)
 * is hot: only a writer may roll it back, and durq's next open does. */
static int needs_writer(sqlite3 *s)
{
	int e = sqlite3_extended_errcode(s);
	return e == SQLITE_READONLY_ROLLBACK || e == SQLITE_READONLY_RECOVERY;
}

static int integrity(sqlite3 *s, char *why, size_t len)
{
	sqlite3_stmt *st;
	int rc = -1;
	if (sqlite3_prepare_v2(s, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		return needs_writer(s) ? 1 : fail(why, len, "integrity_check", sqlite3_errmsg(s));
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		rc = r && !strcmp(r, "ok") ? 0 : fail(why, len, "integrity_check", r);
	} else {
		rc = needs_writer(s) ? 1 : fail(why, len, "integrity_check", sqlite3_errmsg(s));
	}
	sqlite3_finalize(st);
	return rc;
}

static int has_schema(sqlite3 *s)
{
	sqlite3_stmt *st;
	int found = 0;
	if (sqlite3_prepare_v2(s, "SELECT 1 FROM sqlite_schema WHERE name = 'work_queue'", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);
	found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return found;
}

static int read_work(sqlite3 *s, fm_model *out, int64_t now, char *why, size_t len)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s, "SELECT payload, lock_token IS NOT NULL AND locked_until > ?1,"
			       " attempt, locked_until, id FROM work_queue", -1, &st, NULL) != SQLITE_OK)
		return fail(why, len, "read work_queue", sqlite3_errmsg(s));
	sqlite3_bind_int64(st, 1, now);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int i = item_of(sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0));
		if (i < 0 || out->w[i].present) {
			sqlite3_finalize(st);
			return fail(why, len, i < 0 ? "an item the workload never enqueued"
					    : "an item stored twice", i < 0 ? NULL : payloads[i]);
		}
		out->w[i].present = 1;
		out->w[i].leased = sqlite3_column_int(st, 1);
		out->w[i].attempt = sqlite3_column_int(st, 2);
		out->w[i].lease_until = sqlite3_column_int64(st, 3);
		out->w[i].id = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(why, len, "read work_queue", sqlite3_errmsg(s));
}

static int read_orch_queue(sqlite3 *s, fm_model *out, char *why, size_t len)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s, "SELECT payload, lock_token IS NOT NULL FROM orch_queue", -1, &st,
			       NULL) != SQLITE_OK)
		return fail(why, len, "read orch_queue", sqlite3_errmsg(s));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		int *slot = n == strlen(FM_START_PAYLOAD) && !memcmp(p, FM_START_PAYLOAD, n)
				    ? &out->o.start
			    : n == strlen(FM_TIMER_PAYLOAD) && !memcmp(p, FM_TIMER_PAYLOAD, n)
				    ? &out->o.timer
				    : NULL;
		if (!slot || *slot) {
			sqlite3_finalize(st);
			return fail(why, len, slot ? "an orchestration message stored twice"
					    : "an orchestration message never sent", NULL);
		}
		*slot = slot == &out->o.start && sqlite3_column_int(st, 1) ? 2 : 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(why, len, "read orch_queue", sqlite3_errmsg(s));
}

static int read_instance(sqlite3 *s, fm_model *out, int64_t now, char *why, size_t len)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s, "SELECT (SELECT count(*) FROM instances),"
			       " (SELECT count(*) FROM history WHERE instance_id = ?1),"
			       " (SELECT count(*) FROM instance_locks WHERE locked_until > ?2),"
			       " (SELECT count(*) FROM history)", -1, &st, NULL) != SQLITE_OK)
		return fail(why, len, "read instances", sqlite3_errmsg(s));
	sqlite3_bind_text(st, 1, FM_INSTANCE, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->o.instance = sqlite3_column_int(st, 0);
		out->o.history = sqlite3_column_int(st, 1);
		out->o.locked = sqlite3_column_int(st, 2);
		if (sqlite3_column_int(st, 3) != out->o.history)
			rc = SQLITE_MISMATCH;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_MISMATCH)
		return fail(why, len, "history of an instance the workload never ran", NULL);
	return rc == SQLITE_ROW ? 0 : fail(why, len, "read instances", sqlite3_errmsg(s));
}

int fm_read_db(fm_model *out, const char *path, int64_t now, char *why, size_t len)
{
	sqlite3 *s = NULL;
	memset(out, 0, sizeof(*out));
	int rc = sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_CANTOPEN) {
		sqlite3_close(s);
		return 0; /* never created: empty */
	}
	if (rc != SQLITE_OK) {
		fail(why, len, "open for the check", sqlite3_errmsg(s));
		sqlite3_close(s);
		return -1;
	}
	rc = integrity(s, why, len);
	if (rc == 0) {
		int schema = has_schema(s);
		if (schema < 0)
			rc = fail(why, len, "read the schema", sqlite3_errmsg(s));
		else if (schema > 0 && (read_work(s, out, now, why, len) < 0 ||
					read_orch_queue(s, out, why, len) < 0 ||
					read_instance(s, out, now, why, len) < 0))
			rc = -1;
	}
	sqlite3_close(s);
	return rc;
}

static int item_agrees(const fm_item *m, const fm_item *d, int i, char *why, size_t len)
{
	const char *p = payloads[i];
	if (m->present != d->present)
		snprintf(why, len, "%s: model %s, database %s", p, m->present ? "present" : "absent",
			 d->present ? "present" : "absent");
	else if (!m->present)
		return 1;
	else if ((m->leased != FM_FREE) != (d->leased != 0))
		snprintf(why, len, "%s: model %s, database %s", p, m->leased ? "leased" : "free",
			 d->leased ? "leased" : "free");
	else if (m->attempt != d->attempt)
		snprintf(why, len, "%s: attempt: model %d, database %d", p, m->attempt, d->attempt);
	else if (m->leased == FM_OURS && m->lease_until != d->lease_until)
		snprintf(why, len, "%s: lease until: model %lld, database %lld", p,
			 (long long)m->lease_until, (long long)d->lease_until);
	else
		return 1;
	return 0;
}

static int orch_agrees(const fm_orch *m, const fm_orch *d, char *why, size_t len)
{
	if (m->start == d->start && m->timer == d->timer && m->instance == d->instance &&
	    m->history == d->history && (m->locked != FM_FREE) == (d->locked != 0))
		return 1;
	snprintf(why, len, "o1: model start %d timer %d instance %d history %d locked %d, "
		 "database %d %d %d %d %d", m->start, m->timer, m->instance, m->history,
		 m->locked != FM_FREE, d->start, d->timer, d->instance, d->history, d->locked);
	return 0;
}

int fm_agree(const fm_model *model, const fm_model *db, unsigned mask, char *why, size_t len)
{
	for (int i = 0; i < FM_ITEMS; i++)
		if ((mask & FM_BIT(i)) && !item_agrees(&model->w[i], &db->w[i], i, why, len))
			return 0;
	return !(mask & FM_BIT(FM_ORCH)) || orch_agrees(&model->o, &db->o, why, len);
}

void fm_take(fm_model *dst, const fm_model *src, unsigned mask)
{
	for (int i = 0; i < FM_ITEMS; i++)
		if (mask & FM_BIT(i))
			dst->w[i] = src->w[i];
	if (mask & FM_BIT(FM_ORCH))
		dst->o = src->o;
}
