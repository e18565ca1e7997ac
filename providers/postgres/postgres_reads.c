/*
 * postgres_reads.c — the PostgreSQL provider's reads, run on pool connections: history,
 * instances, executions, dead letters, queue depths, the next due time, settings. Each read
 * is one prepared statement in autocommit (its own snapshot); a connection found broken
 * is reconnected (and the read retried once). Outputs are durq_mem_* copies; on error
 * nothing is returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

/* The statement's rows. A session found dead (the server restarted, an idle connection
 * was cut) is reopened and the read, which changes nothing, run once more. */
static int query(pg_conn *c, enum pg_stmt_id id, const pg_params *p, const char *what,
		 PGresult **r)
{
	int rc = pg_conn_ensure(c);
	*r = NULL;
	if (rc == DURQ_OK)
		rc = pg_exec(c, id, p, what, r);
	if (rc < 0 && pg_conn_broken(c) && c->txn == PG_TXN_NONE &&
	    (rc = pg_conn_ensure(c)) == DURQ_OK)
		rc = pg_exec(c, id, p, what, r);
	return rc;
}

static int oom_error(const char *what)
{
	return durq_error_set(DURQ_ENOMEM, "postgresql: %s: out of memory", what);
}

int pg_history_read(durq_conn *conn, durq_event **events, size_t *n, const char *id,
		    uint64_t exec)
{
	pg_conn *c = pg_conn_of(conn);
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, id);
	pg_param_i64(&p, (int64_t)exec);
	PGresult *r;
	int qrc = query(c, PG_HISTORY_READ, &p, "read history", &r);
	if (qrc < 0)
		return qrc;
	int rows = PQntuples(r), oom = 0;
	if (rows == 0) {
		PQclear(r);
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
	}
	durq_event *ev = durq_mem_calloc((size_t)rows, sizeof(*ev));
	size_t k = 0;
	for (int i = 0; ev && i < rows; i++) {
		if (pg_isnull(r, i, 1))
			continue; /* the instance's row: an execution with no events */
		size_t len;
		ev[k].event_id = (uint64_t)pg_i64(r, i, 1);
		ev[k].payload = pg_bytes(r, i, 2, &len, &oom);
		ev[k++].payload_len = len;
	}
	PQclear(r);
	if (!ev || oom) {
		durq_events_free(ev, k);
		return oom_error("read history");
	}
	if (k == 0) {
		durq_mem_free(ev);
		ev = NULL;
	}
	*events = ev;
	*n = k;
	return DURQ_OK;
}

int pg_instance_get(durq_conn *conn, durq_instance_info **out, const char *id)
{
	pg_conn *c = pg_conn_of(conn);
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, id);
	PGresult *r;
	int qrc = query(c, PG_INSTANCE_GET, &p, "read instance", &r);
	if (qrc < 0)
		return qrc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
	}
	int oom = 0;
	durq_instance_info *i = durq_mem_calloc(1, sizeof(*i));
	if (i) {
		i->id = pg_text(r, 0, 0, &oom);
		i->name = pg_text(r, 0, 1, &oom);
		i->version = pg_text(r, 0, 2, &oom);
		i->parent_id = pg_text(r, 0, 3, &oom);
		i->execution_id = (uint64_t)pg_i64(r, 0, 4);
		i->status = pg_i32(r, 0, 5);
		i->output = pg_bytes(r, 0, 6, &i->output_len, &oom);
		i->custom_status = pg_bytes(r, 0, 7, &i->custom_status_len, &oom);
		i->custom_status_version = (uint64_t)pg_i64(r, 0, 8);
		i->created_ms = pg_i64(r, 0, 9);
		i->updated_ms = pg_i64(r, 0, 10);
	}
	PQclear(r);
	if (!i || oom || !i->id) {
		durq_instance_info_free(i);
		return oom_error("read instance");
	}
	*out = i;
	return DURQ_OK;
}

/* One keyset page: up to max ids above after_id, in byte order. */
int pg_instance_list(durq_conn *conn, char ***ids, size_t *n, int status, const char *after_id,
		     size_t max)
{
	pg_conn *c = pg_conn_of(conn);
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, after_id ? after_id : "");
	pg_param_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if (status >= 0)
		pg_param_i32(&p, status);
	PGresult *r;
	int qrc = query(c, status < 0 ? PG_INSTANCE_LIST : PG_INSTANCE_LIST_STATUS, &p,
			    "list instances", &r);
	if (qrc < 0)
		return qrc;
	int rows = PQntuples(r), oom = 0;
	char **out = rows ? durq_mem_calloc((size_t)rows, sizeof(char *)) : NULL;
	for (int i = 0; out && i < rows && !oom; i++)
		if (!(out[i] = pg_text(r, i, 0, &oom)))
			oom = 1;
	PQclear(r);
	if ((rows && !out) || oom) {
		durq_strings_free(out, (size_t)rows);
		return oom_error("list instances");
	}
	*ids = out;
	*n = (size_t)rows;
	return DURQ_OK;
}

int pg_execution_list(durq_conn *conn, durq_execution_info **out, size_t *n, const char *id)
{
	pg_conn *c = pg_conn_of(conn);
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, id);
	PGresult *r;
	int qrc = query(c, PG_EXECUTION_LIST, &p, "list executions", &r);
	if (qrc < 0)
		return qrc;
	int rows = PQntuples(r);
	if (rows == 0) {
		PQclear(r);
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
	}
	durq_execution_info *e = durq_mem_calloc((size_t)rows, sizeof(*e));
	int oom = 0;
	for (int i = 0; e && i < rows; i++) {
		e[i].execution_id = (uint64_t)pg_i64(r, i, 0);
		e[i].status = pg_i32(r, i, 1);
		e[i].created_ms = pg_i64(r, i, 2);
		e[i].updated_ms = pg_i64(r, i, 3);
		e[i].n_events = (size_t)pg_i64(r, i, 4);
		e[i].completed_ms = pg_i64(r, i, 5);
		e[i].name = pg_text(r, i, 6, &oom);
		e[i].version = pg_text(r, i, 7, &oom);
		e[i].runtime_version = pg_i64(r, i, 8);
	}
	PQclear(r);
	if (e && oom) {
		for (int i = 0; i < rows; i++) {
			durq_mem_free(e[i].name);
			durq_mem_free(e[i].version);
		}
		durq_mem_free(e);
		e = NULL;
	}
	if (!e)
		return oom_error("list executions");
	*out = e;
	*n = (size_t)rows;
	return DURQ_OK;
}

static void dead_row(durq_dead_letter *d, const PGresult *r, int i, int *oom)
{
	d->id = pg_i64(r, i, 0);
	d->source = pg_i32(r, i, 1);
	d->queue = pg_text(r, i, 2, oom);
	d->instance_id = pg_text(r, i, 3, oom);
	d->execution_id = (uint64_t)pg_i64(r, i, 4);
	d->activity_id = (uint64_t)pg_i64(r, i, 5);
	d->kind = pg_i32(r, i, 6);
	d->attempt = pg_i32(r, i, 7);
	d->payload = pg_bytes(r, i, 8, &d->payload_len, oom);
	d->dead_at_ms = pg_i64(r, i, 9);
}

int pg_dead_list(durq_conn *conn, durq_dead_letter **out, size_t *n, size_t max)
{
	pg_conn *c = pg_conn_of(conn);
	pg_params p;
	pg_params_init(&p);
	pg_param_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	PGresult *r;
	int qrc = query(c, PG_DEAD_LIST, &p, "list dead letters", &r);
	if (qrc < 0)
		return qrc;
	int rows = PQntuples(r), oom = 0;
	durq_dead_letter *d = rows ? durq_mem_calloc((size_t)rows, sizeof(*d)) : NULL;
	for (int i = 0; d && i < rows; i++)
		dead_row(&d[i], r, i, &oom);
	PQclear(r);
	if ((rows && !d) || oom) {
		durq_dead_letters_free(d, (size_t)rows);
		return oom_error("list dead letters");
	}
	*out = d;
	*n = (size_t)rows;
	return DURQ_OK;
}

int pg_queue_depths(durq_conn *conn, durq_queue_depths *out, const char *queue, int64_t now)
{
	pg_conn *c = pg_conn_of(conn);
	pg_params p;
	pg_params_init(&p);
	pg_param_i64(&p, now);
	pg_param_text(&p, queue);
	PGresult *r;
	int qrc = query(c, PG_DEPTHS, &p, "queue depths", &r);
	if (qrc < 0)
		return qrc;
	if (PQntuples(r) == 1) {
		int64_t *f[] = {&out->orch_ready, &out->orch_delayed, &out->orch_leased,
				&out->work_ready, &out->work_delayed, &out->work_leased,
				&out->dead_letters, &out->instances_locked};
		for (int i = 0; i < 8; i++)
			*f[i] = pg_i64(r, 0, i);
	}
	PQclear(r);
	return DURQ_OK;
}

int pg_next_due(durq_conn *conn, int64_t *due, int64_t now)
{
	pg_conn *c = pg_conn_of(conn);
	pg_params p;
	pg_params_init(&p);
	pg_param_i64(&p, now);
	PGresult *r;
	int qrc = query(c, PG_NEXT_DUE, &p, "next due", &r);
	if (qrc < 0)
		return qrc;
	*due = PQntuples(r) == 1 && !pg_isnull(r, 0, 0) ? pg_i64(r, 0, 0) : INT64_MAX;
	PQclear(r);
	return DURQ_OK;
}

/*
 * Settings by name, allow-listed (the name is a parameter, never SQL text). durq's
 * portable names are answered as PostgreSQL means them: "synchronous" is FULL when a
 * commit waits for its WAL flush (synchronous_commit on, remote_write, remote_apply or
 * local) and OFF otherwise; "journal_mode" is always "wal"; "foreign_keys" always "1"
 * (PostgreSQL always enforces them); "busy_timeout" is lock_timeout in ms. Server settings
 * are read with current_setting.
 */
static const char *const server_settings[] = {
	"synchronous_commit", "lock_timeout", "statement_timeout", "server_version",
	"server_encoding", "client_encoding", "transaction_isolation", "search_path",
	"default_transaction_isolation", "max_connections", "fsync", "full_page_writes",
	"wal_level", "application_name",
};

static int setting(pg_conn *c, char *buf, size_t len, const char *name)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, name);
	PGresult *r;
	int qrc = query(c, PG_SETTING, &p, "read setting", &r);
	if (qrc < 0)
		return qrc;
	snprintf(buf, len, "%.*s", PQgetlength(r, 0, 0), PQgetvalue(r, 0, 0));
	PQclear(r);
	return DURQ_OK;
}

static int portable(pg_conn *c, char *buf, size_t len, const char *name)
{
	int rc;
	if (!strcmp(name, "journal_mode")) {
		snprintf(buf, len, "wal");
	} else if (!strcmp(name, "foreign_keys")) {
		snprintf(buf, len, "1");
	} else if (!strcmp(name, "busy_timeout")) {
		snprintf(buf, len, "%d", c->p->opts->busy_timeout_ms);
	} else if (!strcmp(name, "synchronous")) {
		char v[32];
		if ((rc = setting(c, v, sizeof(v), "synchronous_commit")) < 0)
			return rc;
		snprintf(buf, len, "%s", strcmp(v, "off") ? "full" : "off");
	} else {
		return 1;
	}
	return DURQ_OK;
}

int pg_pragma_get(durq_conn *conn, char *buf, size_t len, const char *name)
{
	pg_conn *c = pg_conn_of(conn);
	int rc = portable(c, buf, len, name);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < sizeof(server_settings) / sizeof(server_settings[0]); i++)
		if (!strcmp(name, server_settings[i]))
			return setting(c, buf, len, name);
	return durq_error_set(DURQ_EINVAL, "setting '%.64s' is not readable through durq's "
			      "postgresql provider", name);
}
