/*
 * sqlite_reads.c — the SQLite provider's reads, run on pool connections: history,
 * instances, executions, dead letters, queue depths, the next due time, PRAGMA read-back.
 * Each read is one statement (its own short read transaction), reset before returning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

static int step_done(sq_conn *c, sqlite3_stmt *s, int rc, const char *what)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? DURQ_OK : sq_error(c, rc, what);
}

/* Grow *arr (of elem bytes) to hold n+1 entries. */
int sq_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return DURQ_OK;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = durq_mem_realloc(*arr, ncap * elem);
	if (!p)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
	*arr = p;
	*cap = ncap;
	return DURQ_OK;
}

static int current_exec(sq_conn *c, const char *id, uint64_t *exec)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_INSTANCE_HEAD);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	*exec = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	if ((rc = step_done(c, s, rc, "read instance")) < 0)
		return rc;
	return *exec ? DURQ_OK : durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
}

/* The events of one known execution, ordered by event id; no partial result on error. */
int sq_history_rows(sq_conn *c, durq_event **events, size_t *n, const char *id, uint64_t exec)
{
	int rc;
	size_t cap = 0;
	sqlite3_stmt *s = sq_stmt(c, SQ_HISTORY_READ);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)exec);
	*events = NULL;
	*n = 0;
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		if (sq_grow((void **)events, &cap, *n, sizeof(**events)) < 0) {
			sqlite3_reset(s);
			durq_events_free(*events, *n);
			*events = NULL;
			*n = 0;
			return DURQ_ENOMEM;
		}
		durq_event *e = &(*events)[(*n)++];
		e->event_id = (uint64_t)sqlite3_column_int64(s, 0);
		e->payload = sq_col_blob(c, s, 1, &e->payload_len);
	}
	if ((rc = step_done(c, s, rc, "read history")) < 0) { /* no partial result */
		durq_events_free(*events, *n);
		*events = NULL;
		*n = 0;
	}
	return rc;
}

int sq_history_read(durq_conn *conn, durq_event **events, size_t *n, const char *id, uint64_t exec)
{
	sq_conn *c = sq_conn_of(conn);
	int rc;
	uint64_t cur;
	if ((rc = current_exec(c, id, &cur)) < 0) /* ENOTFOUND for any execution */
		return rc;
	return sq_history_rows(c, events, n, id, exec ? exec : cur);
}

int sq_instance_get(durq_conn *conn, durq_instance_info **out, const char *id)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s = sq_stmt(c, SQ_INSTANCE_GET);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	if (rc != SQLITE_ROW) {
		step_done(c, s, rc, "read instance");
		return rc == SQLITE_DONE
			       ? durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id)
			       : sq_error(c, rc, "read instance");
	}
	durq_instance_info *i = durq_mem_calloc(1, sizeof(*i));
	if (!i) {
		sqlite3_reset(s);
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	}
	i->id = sq_col_text(c, s, 0);
	i->name = sq_col_text(c, s, 1);
	i->version = sq_col_text(c, s, 2);
	i->parent_id = sq_col_text(c, s, 3);
	i->execution_id = (uint64_t)sqlite3_column_int64(s, 4);
	i->status = sqlite3_column_int(s, 5);
	i->output = sq_col_blob(c, s, 6, &i->output_len);
	i->custom_status = sq_col_blob(c, s, 7, &i->custom_status_len);
	i->custom_status_version = (uint64_t)sqlite3_column_int64(s, 8);
	i->created_ms = sqlite3_column_int64(s, 9);
	i->updated_ms = sqlite3_column_int64(s, 10);
	int crc = sq_check(c); /* a copy that ran out of memory: no half-filled info */
	if (crc != SQLITE_OK) {
		sqlite3_reset(s);
		durq_instance_info_free(i);
		return sq_error(c, crc, "read instance");
	}
	*out = i;
	return step_done(c, s, SQLITE_DONE, "read instance");
}

/* One keyset page: up to max ids above after_id, in id order; no partial result on error. */
int sq_instance_list(durq_conn *conn, char ***ids, size_t *n, int status, const char *after_id,
		     size_t max)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s = sq_stmt(c, status < 0 ? SQ_INSTANCE_LIST : SQ_INSTANCE_LIST_STATUS);
	size_t cap = 0;
	int rc;
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, after_id ? after_id : "", -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
	if (status >= 0)
		sq_bind_int(c, s, 3, status);
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		if (sq_grow((void **)ids, &cap, *n, sizeof(char *)) < 0 ||
		    !((*ids)[*n] = sq_col_text(c, s, 0))) /* an id is never NULL: out of memory */
			break;
		(*n)++;
	}
	if (rc == SQLITE_ROW) {
		step_done(c, s, SQLITE_DONE, "list instances");
		rc = durq_error_set(DURQ_ENOMEM, "out of memory");
	} else if ((rc = step_done(c, s, rc, "list instances")) == DURQ_OK) {
		return DURQ_OK;
	}
	durq_strings_free(*ids, *n);
	*ids = NULL;
	*n = 0;
	return rc;
}

int sq_execution_list(durq_conn *conn, durq_execution_info **out, size_t *n, const char *id)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s = sq_stmt(c, SQ_EXECUTION_LIST_V2);
	size_t cap = 0;
	int rc;
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		if (sq_grow((void **)out, &cap, *n, sizeof(**out)) < 0)
			break;
		durq_execution_info *e = &(*out)[(*n)++];
		e->execution_id = (uint64_t)sqlite3_column_int64(s, 0);
		e->status = sqlite3_column_int(s, 1);
		e->created_ms = sqlite3_column_int64(s, 2);
		e->updated_ms = sqlite3_column_int64(s, 3);
		e->n_events = (size_t)sqlite3_column_int64(s, 4);
		e->completed_ms = sqlite3_column_int64(s, 5);
		e->name = sq_col_text(c, s, 6);
		e->version = sq_col_text(c, s, 7);
		e->runtime_version = sqlite3_column_int64(s, 8);
	}
	if (rc == SQLITE_ROW || (rc = step_done(c, s, rc, "list executions")) < 0 ||
	    sq_check(c) != SQLITE_OK) {
		if (rc == SQLITE_ROW || rc == DURQ_OK) {
			step_done(c, s, SQLITE_DONE, "list executions");
			rc = durq_error_set(DURQ_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < *n; i++) {
			durq_mem_free((*out)[i].name);
			durq_mem_free((*out)[i].version);
		}
		durq_mem_free(*out);
		*out = NULL;
		*n = 0;
		return rc;
	}
	return *n ? DURQ_OK : durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
}

int sq_dead_list(durq_conn *conn, durq_dead_letter **out, size_t *n, size_t max)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s = sq_stmt(c, SQ_DEAD_LIST);
	size_t cap = 0;
	int rc;
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, (sqlite3_int64)max);
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		if (sq_grow((void **)out, &cap, *n, sizeof(**out)) < 0) {
			sqlite3_reset(s);
			durq_dead_letters_free(*out, *n);
			*out = NULL;
			*n = 0;
			return DURQ_ENOMEM;
		}
		durq_dead_letter *d = &(*out)[(*n)++];
		d->id = sqlite3_column_int64(s, 0);
		d->source = sqlite3_column_int(s, 1);
		d->queue = sq_col_text(c, s, 2);
		d->instance_id = sq_col_text(c, s, 3);
		d->execution_id = (uint64_t)sqlite3_column_int64(s, 4);
		d->activity_id = (uint64_t)sqlite3_column_int64(s, 5);
		d->kind = sqlite3_column_int(s, 6);
		d->attempt = sqlite3_column_int(s, 7);
		d->payload = sq_col_blob(c, s, 8, &d->payload_len);
		d->dead_at_ms = sqlite3_column_int64(s, 9);
	}
	return step_done(c, s, rc, "list dead letters");
}

int sq_queue_depths(durq_conn *conn, durq_queue_depths *out, const char *queue, int64_t now)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s = sq_stmt(c, SQ_DEPTHS);
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, now);
	if (queue)
		sq_bind_text(c, s, 2, queue, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	if (rc == SQLITE_ROW) {
		int64_t *f[] = {&out->orch_ready, &out->orch_delayed, &out->orch_leased,
				&out->work_ready, &out->work_delayed, &out->work_leased,
				&out->dead_letters, &out->instances_locked};
		for (int i = 0; i < 8; i++)
			*f[i] = sqlite3_column_int64(s, i);
	}
	return step_done(c, s, rc, "queue depths");
}

int sq_next_due(durq_conn *conn, int64_t *due, int64_t now)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s = sq_stmt(c, SQ_NEXT_DUE);
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, now);
	int rc = sq_step(c, s);
	*due = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL
		       ? sqlite3_column_int64(s, 0)
		       : INT64_MAX;
	return step_done(c, s, rc, "next due");
}

/* Allow-list: the PRAGMA name never reaches SQL text from the caller. */
int sq_pragma_get(durq_conn *conn, char *buf, size_t len, const char *name)
{
	sq_conn *c = sq_conn_of(conn);
	static const char *const names[] = {
		"journal_mode", "synchronous", "busy_timeout", "foreign_keys", "temp_store",
		"cache_size", "mmap_size", "wal_autocheckpoint", "journal_size_limit",
		"trusted_schema", "page_size", "user_version"};
	static const char *const sql[] = {
		"PRAGMA journal_mode", "PRAGMA synchronous", "PRAGMA busy_timeout",
		"PRAGMA foreign_keys", "PRAGMA temp_store", "PRAGMA cache_size",
		"PRAGMA mmap_size", "PRAGMA wal_autocheckpoint", "PRAGMA journal_size_limit",
		"PRAGMA trusted_schema", "PRAGMA page_size", "PRAGMA user_version"};
	if (strcmp(name, "busy_timeout") == 0) {
		/* durq installs its own busy handler (counted backoff) with this budget; SQLite
		 * reports 0 for PRAGMA busy_timeout whenever a custom handler is set */
		snprintf(buf, len, "%d", c->p->opts->busy_timeout_ms);
		return DURQ_OK;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) != 0)
			continue;
		sqlite3_stmt *s;
		int rc = sqlite3_prepare_v2(c->db, sql[i], -1, &s, NULL);
		if (rc != SQLITE_OK)
			return sq_error(c, rc, sql[i]);
		rc = sq_step(c, s);
		if (rc == SQLITE_ROW)
			snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		return rc == SQLITE_ROW ? DURQ_OK : sq_error(c, rc, sql[i]);
	}
	return durq_error_set(DURQ_EINVAL, "PRAGMA '%.64s' is not readable through durq", name);
}

int sq_data_version(durq_conn *conn, uint64_t *out)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s = sq_stmt(c, SQ_DATA_VERSION);
	if (!s)
		return DURQ_EIO;
	int rc = sq_step(c, s);
	*out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	return step_done(c, s, rc, "data_version");
}
