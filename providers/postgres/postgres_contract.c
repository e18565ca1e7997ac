/*
 * postgres_contract.c — the PostgreSQL provider's reads of issue 10 (durq_query): children
 * and tree of an instance, the filtered instance list, one execution with its output,
 * system-wide counts, custom-status polling. Each is one prepared statement in autocommit
 * (one snapshot); a dead session is reopened and the read run once more, like
 * postgres_reads.c. The writes of issue 10 live in postgres_ops.c and the functions of
 * postgres_schema.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

static int run(pg_conn *c, enum pg_stmt_id id, const pg_params *p, const char *what,
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

/* Column 0 of every row as ids (durq_mem_*); skip rows where col 1 says so (tree). */
static int ids_of(PGresult *r, char ***ids, size_t *n)
{
	int rows = PQntuples(r), oom = 0;
	*ids = rows ? durq_mem_calloc((size_t)rows, sizeof(char *)) : NULL;
	if (rows && !*ids)
		oom = 1;
	for (int i = 0; !oom && i < rows; i++) {
		(*ids)[i] = pg_text(r, i, 0, &oom);
		*n = (size_t)i + 1;
	}
	PQclear(r);
	return oom ? durq_error_set(DURQ_ENOMEM, "postgresql: out of memory") : DURQ_OK;
}

static int q_ids(pg_conn *c, durq_query *q)
{
	pg_params p;
	PGresult *r;
	int tree = q->kind == DURQ_QUERY_TREE;
	pg_params_init(&p);
	pg_param_text(&p, q->u.ids.instance_id);
	int rc = run(c, tree ? PG_TREE : PG_CHILDREN, &p, "list instances", &r);
	if (rc < 0)
		return rc;
	/* the tree's first row is the instance itself (depth 0) when it exists */
	if (tree && (PQntuples(r) == 0 || pg_i64(r, 0, 1) != 0)) {
		PQclear(r);
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found",
				      q->u.ids.instance_id);
	}
	return ids_of(r, &q->u.ids.ids, &q->u.ids.n);
}

static int q_list(pg_conn *c, durq_query *q)
{
	const durq_instance_filter *f = q->u.list.f;
	pg_params p;
	PGresult *r;
	pg_params_init(&p);
	pg_param_text(&p, q->u.list.after_id ? q->u.list.after_id : "");
	pg_param_i64(&p, (int64_t)q->u.list.max);
	pg_param_i32(&p, f->status);
	pg_param_text(&p, f->name);
	pg_param_text(&p, f->version_tag);
	pg_param_i64(&p, f->created_from_ms);
	pg_param_i64(&p, f->created_before_ms);
	pg_param_i64(&p, f->completed_from_ms);
	pg_param_i64(&p, f->completed_before_ms);
	int rc = run(c, PG_LIST_FILTER, &p, "list instances", &r);
	return rc < 0 ? rc : ids_of(r, &q->u.list.ids, &q->u.list.n);
}

static int q_execution(pg_conn *c, durq_query *q)
{
	durq_execution_info *e = q->u.execution.out;
	pg_params p;
	PGresult *r;
	int oom = 0;
	pg_params_init(&p);
	pg_param_text(&p, q->u.execution.instance_id);
	pg_param_i64(&p, (int64_t)q->u.execution.execution_id);
	int rc = run(c, PG_EXECUTION_GET, &p, "read execution", &r);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' has no execution %llu",
				      q->u.execution.instance_id,
				      (unsigned long long)q->u.execution.execution_id);
	}
	e->execution_id = (uint64_t)pg_i64(r, 0, 0);
	e->status = pg_i32(r, 0, 1);
	e->created_ms = pg_i64(r, 0, 2);
	e->updated_ms = pg_i64(r, 0, 3);
	e->n_events = (size_t)pg_i64(r, 0, 4);
	e->completed_ms = pg_i64(r, 0, 5);
	e->name = pg_text(r, 0, 6, &oom);
	e->version = pg_text(r, 0, 7, &oom);
	e->output = pg_bytes(r, 0, 8, &e->output_len, &oom);
	e->runtime_version = pg_i64(r, 0, 9);
	PQclear(r);
	return oom ? durq_error_set(DURQ_ENOMEM, "postgresql: out of memory") : DURQ_OK;
}

static int q_counts(pg_conn *c, durq_query *q)
{
	durq_system_counts *o = q->u.counts.out;
	PGresult *r;
	int rc = run(c, PG_SYSTEM_COUNTS, NULL, "count instances", &r);
	if (rc < 0)
		return rc;
	uint64_t *v[7] = {&o->instances, &o->running, &o->completed, &o->failed,
			  &o->terminated, &o->executions, &o->events};
	for (int i = 0; i < 7 && PQntuples(r) == 1; i++)
		*v[i] = (uint64_t)pg_i64(r, 0, i);
	PQclear(r);
	return DURQ_OK;
}

static int q_custom_status(pg_conn *c, durq_query *q)
{
	pg_params p;
	PGresult *r;
	int oom = 0;
	uint64_t seen = q->u.custom_status.last_seen;
	pg_params_init(&p);
	pg_param_text(&p, q->u.custom_status.instance_id);
	pg_param_i64(&p, seen > INT64_MAX ? INT64_MAX : (int64_t)seen);
	int rc = run(c, PG_CUSTOM_STATUS, &p, "read custom status", &r);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found",
				      q->u.custom_status.instance_id);
	}
	q->u.custom_status.version = (uint64_t)pg_i64(r, 0, 0);
	int newer = q->u.custom_status.version > seen;
	if (newer && !pg_isnull(r, 0, 1))
		q->u.custom_status.value = pg_bytes(r, 0, 1, &q->u.custom_status.len, &oom);
	PQclear(r);
	if (oom)
		return durq_error_set(DURQ_ENOMEM, "postgresql: out of memory");
	return newer ? DURQ_OK : durq_error_set(DURQ_EMPTY, "custom status unchanged");
}

/* One key, or every key of an instance (a row with a NULL key: it has none). */
static int q_kv(pg_conn *c, durq_query *q)
{
	pg_params p;
	PGresult *r;
	int oom = 0, list = q->kind == DURQ_QUERY_KV_LIST;
	pg_params_init(&p);
	pg_param_text(&p, q->u.kv.instance_id);
	if (!list)
		pg_param_text(&p, q->u.kv.key);
	int rc = run(c, list ? PG_KV_LIST : PG_KV_GET, &p, "read key/values", &r);
	if (rc < 0)
		return rc;
	int rows = PQntuples(r);
	if (rows == 0) {
		PQclear(r);
		return list ? durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found",
					     q->u.kv.instance_id)
			    : durq_error_set(DURQ_ENOTFOUND, "instance '%s' has no key '%s'",
					     q->u.kv.instance_id, q->u.kv.key);
	}
	if (!list) {
		q->u.kv.value = pg_bytes(r, 0, 0, &q->u.kv.len, &oom);
		if (!q->u.kv.value && !oom)
			q->u.kv.value = durq_mem_calloc(1, 1);
		PQclear(r);
		return q->u.kv.value ? DURQ_OK : durq_error_set(DURQ_ENOMEM, "out of memory");
	}
	if (!pg_isnull(r, 0, 0) && !(q->u.kv.entries = durq_mem_calloc((size_t)rows,
								       sizeof(durq_kv_entry))))
		oom = 1;
	for (int i = 0; !oom && q->u.kv.entries && i < rows; i++) {
		durq_kv_entry *e = &q->u.kv.entries[q->u.kv.n++];
		e->key = pg_text(r, i, 0, &oom);
		e->value = pg_bytes(r, i, 1, &e->value_len, &oom);
		if (!e->value && !oom)
			e->value = durq_mem_calloc(1, 1);
		if (!e->key || !e->value)
			oom = 1;
	}
	PQclear(r);
	return oom ? durq_error_set(DURQ_ENOMEM, "postgresql: out of memory") : DURQ_OK;
}

int pg_query(durq_conn *conn, durq_query *q)
{
	pg_conn *c = pg_conn_of(conn);
	switch (q->kind) {
	case DURQ_QUERY_CHILDREN:
	case DURQ_QUERY_TREE: return q_ids(c, q);
	case DURQ_QUERY_LIST_FILTER: return q_list(c, q);
	case DURQ_QUERY_EXECUTION_GET: return q_execution(c, q);
	case DURQ_QUERY_SYSTEM_COUNTS: return q_counts(c, q);
	case DURQ_QUERY_CUSTOM_STATUS: return q_custom_status(c, q);
	case DURQ_QUERY_KV_GET:
	case DURQ_QUERY_KV_LIST: return q_kv(c, q);
	default: return durq_error_set(DURQ_EINVAL, "unknown query kind %d", q->kind);
	}
}
