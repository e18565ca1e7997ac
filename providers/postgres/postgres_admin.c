/*
 * postgres_admin.c — the PostgreSQL provider's operator hooks (durq/provider.h, struct
 * durq_provider_admin): CHECKPOINT, consistency checks, VACUUM, per-queue depths, peeks at
 * work items and dead letters, dead-letter purge, pg_stat_database counters, the raw
 * export/import of every durq_* table of the schema (logical names without the prefix),
 * and the handle-stats table (made if missing; its read; its op is in postgres_ops.c).
 * Statements here run outside any pipeline, one at a time, with binary results; caller data
 * always travels as parameters, identifiers only come from the server's own catalog.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

#define MAX_COLS 64
#define MAX_TABLES 32
#define PREFIX "durq_"

/* One statement, text parameters (NULL = SQL NULL), binary results. */
static int run(pg_conn *c, const char *sql, int n, const char *const *vals, const char *what,
	       PGresult **out)
{
	int rc = pg_conn_ensure(c);
	*out = NULL;
	if (rc < 0)
		return rc;
	PGresult *r = PQexecParams(c->pg, sql, n, NULL, vals, NULL, NULL, 1);
	if (!pg_ok(r)) {
		rc = pg_error(c, r, what);
		PQclear(r);
		return rc;
	}
	*out = r;
	return DURQ_OK;
}

static int run0(pg_conn *c, const char *sql, const char *what)
{
	PGresult *r;
	int rc = run(c, sql, 0, NULL, what, &r);
	PQclear(r);
	return rc;
}

static void rollback(pg_conn *c)
{
	if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		PQclear(PQexec(c->pg, "ROLLBACK"));
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return DURQ_OK;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = durq_mem_realloc(*arr, ncap * size);
	if (!p)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
	*arr = p;
	*cap = ncap;
	return DURQ_OK;
}

static int pga_checkpoint(durq_conn *conn, durq_checkpoint_result *out)
{
	out->log_frames = -1;
	out->checkpointed = -1;
	return run0(pg_conn_of(conn), "CHECKPOINT", "CHECKPOINT");
}

static const char *const checks[][2] = {
	{"SELECT count(*) FROM durq_executions e WHERE NOT EXISTS (SELECT 1 FROM durq_instances i "
	 "WHERE i.id = e.instance_id)", "executions without their instance"},
	{"SELECT count(*) FROM durq_history h WHERE NOT EXISTS (SELECT 1 FROM durq_executions e "
	 "WHERE e.instance_id = h.instance_id AND e.execution_id = h.execution_id)",
	 "history rows without their execution"},
	{"SELECT count(*) FROM durq_instances i WHERE NOT EXISTS (SELECT 1 FROM durq_executions e "
	 "WHERE e.instance_id = i.id AND e.execution_id = i.execution_id)",
	 "instances without their current execution"},
	{"SELECT count(*) FROM durq_work_queue WHERE (lock_token IS NULL) <> (locked_until IS NULL)",
	 "work items with half a lease"},
};

static int report_add(char **r, size_t *len, const char *line)
{
	size_t n = strlen(line);
	char *p = durq_mem_realloc(*r, *len + n + 2);
	if (!p)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	memcpy(p + *len, line, n);
	p[*len + n] = '\n';
	p[*len + n + 1] = '\0';
	*len += n + 1;
	*r = p;
	return DURQ_OK;
}

static int pga_integrity(durq_conn *conn, char **report)
{
	pg_conn *c = pg_conn_of(conn);
	char *rep = NULL;
	size_t len = 0;
	int bad = 0, rc = DURQ_OK;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]) && rc == DURQ_OK; i++) {
		PGresult *r;
		if ((rc = run(c, checks[i][0], 0, NULL, "integrity", &r)) < 0)
			break;
		int64_t n = pg_i64(r, 0, 0);
		PQclear(r);
		if (n > 0) {
			char line[160];
			snprintf(line, sizeof(line), "%lld %s", (long long)n, checks[i][1]);
			bad = 1;
			rc = report_add(&rep, &len, line);
		}
	}
	if (rc == DURQ_OK && !bad)
		rc = report_add(&rep, &len, "ok");
	if (rc < 0) {
		durq_mem_free(rep);
		return rc;
	}
	*report = rep;
	return bad ? durq_error_set(DURQ_ECORRUPT, "postgresql: integrity check failed (the "
				    "report lists the problems)") : DURQ_OK;
}

/* ---- tables of the schema --------------------------------------------------------- */

typedef struct pg_table {
	char name[128];         /* as on the server (durq_...) */
	const char *logical;    /* name + strlen(PREFIX) */
	char *cols[MAX_COLS];
	Oid types[MAX_COLS];
	size_t ncols;
	char *quoted;           /* PQescapeIdentifier of name */
	char order[512];
} pg_table;

static void tables_free(pg_table *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < t[i].ncols; j++)
			free(t[i].cols[j]);
		PQfreemem(t[i].quoted);
	}
}

static int table_pk(pg_conn *c, pg_table *t)
{
	PGresult *r;
	const char *v[] = {t->quoted};
	int rc = run(c, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
		     "i.indrelid AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = "
		     "$1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], "
		     "a.attnum)", 1, v, "primary key", &r);
	if (rc < 0)
		return rc;
	t->order[0] = '\0';
	for (int i = 0; i < PQntuples(r); i++) {
		char *q = PQescapeIdentifier(c->pg, PQgetvalue(r, i, 0),
					     (size_t)PQgetlength(r, i, 0));
		if (q && strlen(t->order) + strlen(q) + 3 < sizeof(t->order)) {
			if (i)
				strcat(t->order, ", ");
			strcat(t->order, q);
		}
		PQfreemem(q);
	}
	PQclear(r);
	if (!t->order[0])
		snprintf(t->order, sizeof(t->order), "ctid");
	return DURQ_OK;
}

static int table_columns(pg_conn *c, pg_table *t)
{
	char sql[300];
	PGresult *r;
	snprintf(sql, sizeof(sql), "SELECT * FROM %s LIMIT 0", t->quoted);
	int rc = run(c, sql, 0, NULL, "table columns", &r);
	if (rc < 0)
		return rc;
	int n = PQnfields(r);
	for (int i = 0; i < n && i < MAX_COLS; i++) {
		if (!(t->cols[i] = strdup(PQfname(r, i)))) {
			PQclear(r);
			return durq_error_set(DURQ_ENOMEM, "out of memory");
		}
		t->types[i] = PQftype(r, i);
		t->ncols++;
	}
	PQclear(r);
	return n > MAX_COLS ? durq_error_set(DURQ_ETOOBIG, "table %s has %d columns (at most "
					     "%d)", t->name, n, MAX_COLS) : table_pk(c, t);
}

/* durq's tables of the current schema (durq_meta apart: its version is the header's;
 * durq_handle_stats apart: live counters of running processes, not data to move). */
static int list_tables(pg_conn *c, pg_table *t, size_t *n)
{
	PGresult *r;
	int rc = run(c, "SELECT table_name::text FROM information_schema.tables WHERE table_schema "
		     "= current_schema() AND table_type = 'BASE TABLE' AND table_name LIKE "
		     "'durq\\_%' AND table_name <> 'durq_meta' AND table_name <> 'durq_handle_stats' "
		     "ORDER BY table_name COLLATE \"C\"",
		     0, NULL, "list tables", &r);
	*n = 0;
	if (rc < 0)
		return rc;
	for (int i = 0; i < PQntuples(r) && *n < MAX_TABLES; i++) {
		pg_table *tb = &t[(*n)++];
		memset(tb, 0, sizeof(*tb));
		snprintf(tb->name, sizeof(tb->name), "%s", PQgetvalue(r, i, 0));
		tb->logical = tb->name + strlen(PREFIX);
		tb->quoted = PQescapeIdentifier(c->pg, tb->name, strlen(tb->name));
		if (!tb->quoted) {
			PQclear(r);
			return durq_error_set(DURQ_ENOMEM, "out of memory");
		}
	}
	PQclear(r);
	for (size_t i = 0; i < *n; i++)
		if ((rc = table_columns(c, &t[i])) < 0)
			return rc;
	return DURQ_OK;
}

static int pga_vacuum(durq_conn *conn)
{
	pg_conn *c = pg_conn_of(conn);
	pg_table t[MAX_TABLES];
	size_t n = 0;
	int rc = list_tables(c, t, &n);
	for (size_t i = 0; i < n && rc == DURQ_OK; i++) {
		char sql[300];
		snprintf(sql, sizeof(sql), "VACUUM (ANALYZE) %s", t[i].quoted);
		rc = run0(c, sql, "VACUUM");
	}
	tables_free(t, n);
	return rc;
}

/* ---- queues, peeks, purge ------------------------------------------------------------ */

#define ORCH_LEASED                                                                         \
	"EXISTS (SELECT 1 FROM durq_instance_locks l WHERE l.instance_id = q.instance_id "     \
	"AND l.locked_until > $1::int8 AND l.token = q.lock_token)"
#define WORK_READY                                                                          \
	"((lock_token IS NULL AND visible_at <= $1::int8) OR (lock_token IS NOT NULL AND "     \
	"locked_until <= $1::int8))"

static const char sql_queues[] =
	"SELECT 1::int4, NULL::text, count(*) FILTER (WHERE visible_at <= $1::int8 AND NOT "
	ORCH_LEASED "), count(*) FILTER (WHERE visible_at > $1::int8), count(*) FILTER (WHERE "
	ORCH_LEASED "), coalesce(min(visible_at) FILTER (WHERE visible_at <= $1::int8 AND NOT "
	ORCH_LEASED "), 0) FROM durq_orch_queue q "
	"UNION ALL (SELECT 2, queue, count(*) FILTER (WHERE " WORK_READY "), count(*) FILTER "
	"(WHERE lock_token IS NULL AND visible_at > $1::int8), count(*) FILTER (WHERE lock_token "
	"IS NOT NULL AND locked_until > $1::int8), coalesce(min(visible_at) FILTER (WHERE "
	WORK_READY "), 0) FROM durq_work_queue GROUP BY queue ORDER BY queue)";

static int pga_queue_list(durq_conn *conn, durq_queue_info **out, size_t *n, int64_t now)
{
	pg_conn *c = pg_conn_of(conn);
	char nows[24];
	const char *v[] = {nows};
	PGresult *r;
	size_t cap = 0;
	int oom = 0;
	snprintf(nows, sizeof(nows), "%lld", (long long)now);
	int rc = run(c, sql_queues, 1, v, "queue list", &r);
	if (rc < 0)
		return rc;
	for (int i = 0; i < PQntuples(r) && rc == DURQ_OK; i++) {
		if ((rc = grow((void **)out, &cap, *n, sizeof(**out))) < 0)
			break;
		durq_queue_info *q = &(*out)[(*n)++];
		q->kind = pg_i32(r, i, 0);
		q->name = pg_text(r, i, 1, &oom);
		q->ready = pg_i64(r, i, 2);
		q->delayed = pg_i64(r, i, 3);
		q->leased = pg_i64(r, i, 4);
		q->oldest_ms = pg_i64(r, i, 5);
	}
	PQclear(r);
	if (rc == DURQ_OK && oom)
		rc = durq_error_set(DURQ_ENOMEM, "out of memory");
	if (rc < 0) {
		durq_queue_infos_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int pga_work_peek(durq_conn *conn, durq_work_info **out, size_t *n, const char *queue,
			 int64_t after_id, size_t max)
{
	pg_conn *c = pg_conn_of(conn);
	char after[24], lim[24];
	const char *v[] = {after, queue, lim};
	PGresult *r;
	size_t cap = 0;
	int oom = 0;
	snprintf(after, sizeof(after), "%lld", (long long)after_id);
	snprintf(lim, sizeof(lim), "%zu", max);
	int rc = run(c, "SELECT id, queue, instance_id, execution_id, activity_id, priority, "
		     "attempt, payload, visible_at, CASE WHEN lock_token IS NULL THEN 0 ELSE "
		     "locked_until END, created_ms FROM durq_work_queue WHERE id > $1::int8 AND "
		     "($2::text IS NULL OR queue = $2::text) ORDER BY id LIMIT $3::int8", 3, v,
		     "work peek", &r);
	if (rc < 0)
		return rc;
	for (int i = 0; i < PQntuples(r) && rc == DURQ_OK; i++) {
		if ((rc = grow((void **)out, &cap, *n, sizeof(**out))) < 0)
			break;
		durq_work_info *w = &(*out)[(*n)++];
		w->id = pg_i64(r, i, 0);
		w->queue = pg_text(r, i, 1, &oom);
		w->instance_id = pg_text(r, i, 2, &oom);
		w->execution_id = (uint64_t)pg_i64(r, i, 3);
		w->activity_id = (uint64_t)pg_i64(r, i, 4);
		w->priority = pg_i32(r, i, 5);
		w->attempt = pg_i32(r, i, 6);
		w->payload = pg_bytes(r, i, 7, &w->payload_len, &oom);
		w->visible_at_ms = pg_i64(r, i, 8);
		w->locked_until_ms = pg_i64(r, i, 9);
		w->created_ms = pg_i64(r, i, 10);
	}
	PQclear(r);
	if (rc == DURQ_OK && oom)
		rc = durq_error_set(DURQ_ENOMEM, "out of memory");
	if (rc < 0) {
		durq_work_infos_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int pga_dead_page(durq_conn *conn, durq_dead_letter **out, size_t *n, int64_t after_id,
			 size_t max)
{
	pg_conn *c = pg_conn_of(conn);
	char after[24], lim[24];
	const char *v[] = {after, lim};
	PGresult *r;
	size_t cap = 0;
	int oom = 0;
	snprintf(after, sizeof(after), "%lld", (long long)after_id);
	snprintf(lim, sizeof(lim), "%zu", max);
	int rc = run(c, "SELECT id, source, queue, instance_id, execution_id, activity_id, kind, "
		     "attempt, payload, dead_at FROM durq_dead_letters WHERE id > $1::int8 "
		     "ORDER BY id LIMIT $2::int8", 2, v, "dead letter page", &r);
	if (rc < 0)
		return rc;
	for (int i = 0; i < PQntuples(r) && rc == DURQ_OK; i++) {
		if ((rc = grow((void **)out, &cap, *n, sizeof(**out))) < 0)
			break;
		durq_dead_letter *d = &(*out)[(*n)++];
		d->id = pg_i64(r, i, 0);
		d->source = pg_i32(r, i, 1);
		d->queue = pg_text(r, i, 2, &oom);
		d->instance_id = pg_text(r, i, 3, &oom);
		d->execution_id = (uint64_t)pg_i64(r, i, 4);
		d->activity_id = (uint64_t)pg_i64(r, i, 5);
		d->kind = pg_i32(r, i, 6);
		d->attempt = pg_i32(r, i, 7);
		d->payload = pg_bytes(r, i, 8, &d->payload_len, &oom);
		d->dead_at_ms = pg_i64(r, i, 9);
	}
	PQclear(r);
	if (rc == DURQ_OK && oom)
		rc = durq_error_set(DURQ_ENOMEM, "out of memory");
	if (rc < 0) {
		durq_dead_letters_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int pga_dead_purge(durq_conn *conn, size_t *purged, const durq_dead_filter *f)
{
	pg_conn *c = pg_conn_of(conn);
	char id[24], before[24];
	const char *v[] = {id, before, f->queue};
	PGresult *r;
	snprintf(id, sizeof(id), "%lld", (long long)f->id);
	snprintf(before, sizeof(before), "%lld", (long long)f->dead_before_ms);
	int rc = run(c, "DELETE FROM durq_dead_letters WHERE ($1::int8 <= 0 OR id = $1::int8) AND "
		     "($2::int8 <= 0 OR dead_at < $2::int8) AND ($3::text IS NULL OR (source = 2 "
		     "AND queue = $3::text))", 3, v, "dead letter purge", &r);
	if (rc < 0)
		return rc;
	*purged = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return DURQ_OK;
}

static int pga_activity(durq_conn *conn, durq_db_activity *out)
{
	pg_conn *c = pg_conn_of(conn);
	PGresult *r;
	int rc = run(c, "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM "
		     "pg_stat_database WHERE datname = current_database()", 0, NULL, "activity", &r);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 1) {
		out->commits = (uint64_t)pg_i64(r, 0, 0);
		out->rows_written = (uint64_t)pg_i64(r, 0, 1);
	}
	PQclear(r);
	return DURQ_OK;
}

static int pga_schema_version(durq_conn *conn, int *out)
{
	pg_conn *c = pg_conn_of(conn);
	PGresult *r;
	int rc = run(c, "SELECT value FROM durq_meta WHERE key = 'schema_version'", 0, NULL,
		     "schema version", &r);
	if (rc < 0)
		return rc;
	*out = PQntuples(r) == 1 ? (int)pg_i64(r, 0, 0) : 0;
	PQclear(r);
	return DURQ_OK;
}

/* ---- export ------------------------------------------------------------------------- */

static int cell_of(const PGresult *r, int row, int col, Oid type, durq_cell *cell)
{
	if (PQgetisnull(r, row, col)) {
		*cell = (durq_cell){.type = DURQ_CELL_NULL};
		return DURQ_OK;
	}
	switch (type) {
	case PG_OID_INT8:
	case PG_OID_INT4:
	case 21: /* int2 */
		*cell = (durq_cell){.type = DURQ_CELL_INT, .i = pg_i64(r, row, col)};
		return DURQ_OK;
	case PG_OID_BOOL:
		*cell = (durq_cell){.type = DURQ_CELL_INT, .i = PQgetvalue(r, row, col)[0] != 0};
		return DURQ_OK;
	case PG_OID_TEXT:
	case 1043: /* varchar */
		*cell = (durq_cell){.type = DURQ_CELL_TEXT, .p = PQgetvalue(r, row, col),
				    .len = (size_t)PQgetlength(r, row, col)};
		return DURQ_OK;
	case PG_OID_BYTEA:
		*cell = (durq_cell){.type = DURQ_CELL_BLOB, .p = PQgetvalue(r, row, col),
				    .len = (size_t)PQgetlength(r, row, col)};
		return DURQ_OK;
	default:
		return durq_error_set(DURQ_EINVAL, "export: column %s has type oid %u, which durq "
				      "does not export", PQfname(r, col), (unsigned)type);
	}
}

/* A cursor, 1000 rows per fetch: a large table never sits in memory whole. */
static int export_table(pg_conn *c, pg_table *t, durq_export_fn fn, void *ctx)
{
	char sql[1024];
	const char *names[MAX_COLS];
	durq_cell cells[MAX_COLS];
	for (size_t i = 0; i < t->ncols; i++)
		names[i] = t->cols[i];
	durq_row row = {.table = t->logical, .columns = names, .n = t->ncols};
	int rc = fn(ctx, &row);
	snprintf(sql, sizeof(sql), "DECLARE durq_export BINARY NO SCROLL CURSOR FOR SELECT * FROM "
		 "%s ORDER BY %s", t->quoted, t->order);
	if (rc == DURQ_OK)
		rc = run0(c, sql, "export");
	while (rc == DURQ_OK) {
		PGresult *r;
		if ((rc = run(c, "FETCH 1000 FROM durq_export", 0, NULL, "export", &r)) < 0)
			break;
		int nrows = PQntuples(r);
		for (int i = 0; i < nrows && rc == DURQ_OK; i++) {
			for (size_t j = 0; j < t->ncols && rc == DURQ_OK; j++)
				rc = cell_of(r, i, (int)j, PQftype(r, (int)j), &cells[j]);
			row.cells = cells;
			if (rc == DURQ_OK)
				rc = fn(ctx, &row);
		}
		PQclear(r);
		if (nrows == 0)
			break;
	}
	if (rc == DURQ_OK)
		rc = run0(c, "CLOSE durq_export", "export");
	return rc;
}

static int pga_export(durq_conn *conn, durq_export_info *info, durq_export_fn fn, void *ctx)
{
	pg_conn *c = pg_conn_of(conn);
	pg_table t[MAX_TABLES];
	size_t n = 0;
	int rc = run0(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "export");
	if (rc < 0)
		return rc;
	info->provider = c->p->base.name;
	rc = pga_schema_version(conn, &info->schema_version);
	if (rc == DURQ_OK)
		rc = list_tables(c, t, &n);
	for (size_t i = 0; i < n && rc == DURQ_OK; i++)
		rc = export_table(c, &t[i], fn, ctx);
	tables_free(t, n);
	if (rc == DURQ_OK)
		rc = run0(c, "COMMIT", "export");
	if (rc < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", durq_error_last());
		rollback(c);
		durq_error_set(rc, "%s", msg);
	}
	return rc;
}

/* ---- import ------------------------------------------------------------------------- */

static pg_table *import_table(pg_table *t, size_t nt, const durq_row *row, int *map)
{
	pg_table *tab = NULL;
	for (size_t i = 0; i < nt && !tab; i++)
		if (!strcmp(t[i].logical, row->table))
			tab = &t[i];
	if (!tab) {
		durq_error_set(DURQ_EINVAL, "import: no table '%.64s' in this database", row->table);
		return NULL;
	}
	if (row->n != tab->ncols) {
		durq_error_set(DURQ_EINVAL, "import: table %s has %zu columns here, the row has %zu "
			       "(a different schema)", tab->logical, tab->ncols, row->n);
		return NULL;
	}
	for (size_t i = 0; i < row->n; i++) {
		size_t j = 0;
		while (j < tab->ncols && strcmp(tab->cols[j], row->columns[i]))
			j++;
		if (j == tab->ncols) {
			durq_error_set(DURQ_EINVAL, "import: table %s has no column '%.64s' here (a "
				       "different schema)", tab->logical, row->columns[i]);
			return NULL;
		}
		map[i] = (int)j;
	}
	return tab;
}

static int table_empty(pg_conn *c, pg_table *t)
{
	char sql[300];
	PGresult *r;
	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 1", t->quoted);
	int rc = run(c, sql, 0, NULL, "import", &r);
	if (rc < 0)
		return rc;
	int rows = PQntuples(r);
	PQclear(r);
	return rows ? durq_error_set(DURQ_EINVAL, "import: table %s already holds rows; import "
				     "needs an empty database (nothing was written)", t->logical)
		    : DURQ_OK;
}

/* Does the cell's type fit the column's? (NULL fits any; the server checks NOT NULL.) */
static int cell_fits(const durq_cell *cell, Oid type)
{
	switch (cell->type) {
	case DURQ_CELL_NULL:
		return 1;
	case DURQ_CELL_INT:
		return type == PG_OID_INT8 || type == PG_OID_INT4 || type == 21 || type == PG_OID_BOOL;
	case DURQ_CELL_TEXT:
		return type == PG_OID_TEXT || type == 1043;
	case DURQ_CELL_BLOB:
		return type == PG_OID_BYTEA;
	default:
		return 0;
	}
}

static int insert_row(pg_conn *c, pg_table *t, const durq_row *row, const int *map)
{
	char sql[4096], nums[MAX_COLS][24];
	char *texts[MAX_COLS] = {0};
	const char *vals[MAX_COLS];
	int lens[MAX_COLS], fmts[MAX_COLS];
	int rc = DURQ_OK;
	snprintf(sql, sizeof(sql), "INSERT INTO %s(", t->quoted);
	for (size_t i = 0; i < row->n; i++) {
		char *q = PQescapeIdentifier(c->pg, t->cols[map[i]], strlen(t->cols[map[i]]));
		if (!q)
			return durq_error_set(DURQ_ENOMEM, "out of memory");
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%s%s", i ? ", " : "", q);
		PQfreemem(q);
	}
	strcat(sql, ") OVERRIDING SYSTEM VALUE VALUES(");
	for (size_t i = 0; i < row->n; i++)
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%s$%zu", i ? ", " : "", i + 1);
	strcat(sql, ")");
	for (size_t i = 0; i < row->n && rc == DURQ_OK; i++) {
		const durq_cell *cell = &row->cells[i];
		Oid type = t->types[map[i]];
		fmts[i] = 0;
		lens[i] = 0;
		vals[i] = NULL;
		if (!cell_fits(cell, type)) {
			rc = durq_error_set(DURQ_EINVAL, "import: table %s column %s: a value of the "
					    "wrong type", t->logical, t->cols[map[i]]);
		} else if (cell->type == DURQ_CELL_INT) {
			snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)cell->i);
			vals[i] = nums[i];
		} else if (cell->type == DURQ_CELL_TEXT) {
			if (!(texts[i] = malloc(cell->len + 1)))
				rc = durq_error_set(DURQ_ENOMEM, "out of memory");
			else {
				memcpy(texts[i], cell->p, cell->len);
				texts[i][cell->len] = '\0';
				vals[i] = texts[i];
			}
		} else if (cell->type == DURQ_CELL_BLOB) {
			vals[i] = cell->len ? cell->p : "";
			lens[i] = (int)cell->len;
			fmts[i] = 1;
		}
	}
	if (rc == DURQ_OK) {
		PGresult *r = PQexecParams(c->pg, sql, (int)row->n, NULL, vals, lens, fmts, 1);
		if (!pg_ok(r))
			rc = pg_error(c, r, t->logical);
		PQclear(r);
	}
	for (size_t i = 0; i < row->n; i++)
		free(texts[i]);
	return rc;
}

/* Identity sequences continue after the imported ids. */
static int reset_identities(pg_conn *c, pg_table *t, size_t nt)
{
	int rc = DURQ_OK;
	for (size_t i = 0; i < nt && rc == DURQ_OK; i++) {
		PGresult *r;
		const char *v[] = {t[i].quoted};
		if ((rc = run(c, "SELECT attname::text FROM pg_attribute WHERE attrelid = "
			      "$1::regclass AND attidentity IN ('a', 'd')", 1, v, "identity", &r)) < 0)
			break;
		for (int j = 0; j < PQntuples(r) && rc == DURQ_OK; j++) {
			char sql[600];
			char *col = PQescapeIdentifier(c->pg, PQgetvalue(r, j, 0),
						       (size_t)PQgetlength(r, j, 0));
			char *lit = PQescapeLiteral(c->pg, t[i].quoted, strlen(t[i].quoted));
			char *clit = PQescapeLiteral(c->pg, PQgetvalue(r, j, 0),
						     (size_t)PQgetlength(r, j, 0));
			if (!col || !lit || !clit)
				rc = durq_error_set(DURQ_ENOMEM, "out of memory");
			else {
				snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence(%s, "
					 "%s), max(%s)) FROM %s HAVING max(%s) IS NOT NULL", lit, clit,
					 col, t[i].quoted, col);
				rc = run0(c, sql, "identity");
			}
			PQfreemem(col);
			PQfreemem(lit);
			PQfreemem(clit);
		}
		PQclear(r);
	}
	return rc;
}

static int pga_import(durq_conn *conn, size_t *count, durq_import_fn next, void *ctx)
{
	pg_conn *c = pg_conn_of(conn);
	pg_table t[MAX_TABLES];
	size_t nt = 0;
	int map[MAX_COLS];
	durq_row row;
	int rc = run0(c, "BEGIN", "import");
	if (rc < 0)
		return rc;
	rc = list_tables(c, t, &nt);
	for (size_t i = 0; i < nt && rc == DURQ_OK; i++)
		rc = table_empty(c, &t[i]);
	while (rc == DURQ_OK && (rc = next(ctx, &row)) == DURQ_OK) {
		pg_table *tab = import_table(t, nt, &row, map);
		rc = tab ? insert_row(c, tab, &row, map) : DURQ_EINVAL;
		if (rc == DURQ_OK)
			(*count)++;
	}
	if (rc == DURQ_EMPTY)
		rc = reset_identities(c, t, nt);
	tables_free(t, nt);
	if (rc == DURQ_OK)
		rc = run0(c, "COMMIT", "import: COMMIT");
	if (rc < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", durq_error_last());
		rollback(c);
		*count = 0;
		durq_error_set(rc, "%s", msg);
	}
	return rc;
}

/* ---- the handle-stats table (src/publish.c writes it, durq_handle_stats_list reads) ---- */

/* Simple-protocol setup statement (the session's statements are not prepared yet). */
static int setup(pg_conn *c, const char *sql)
{
	PGresult *r = PQexec(c->pg, sql);
	int rc = pg_ok(r) ? DURQ_OK : pg_error(c, r, "create durq_handle_stats");
	PQclear(r);
	return rc;
}

/* Made if missing, once per provider, outside the versioned schema: it holds no durable
 * data, so no migration and no version bump; a cheap catalog look when it exists. Two
 * processes creating it at once would collide in the catalog: an advisory lock (the schema
 * lock's key, second half 1) makes the second one find it made. */
int pg_handle_stats_ensure(pg_conn *c)
{
	PGresult *r = PQexec(c->pg, "SELECT to_regclass('durq_handle_stats') IS NOT NULL");
	if (!pg_ok(r)) {
		int rc = pg_error(c, r, "look for durq_handle_stats");
		PQclear(r);
		return rc;
	}
	int exists = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	if (exists)
		return DURQ_OK;
	int rc = setup(c, "BEGIN");
	if (rc == DURQ_OK)
		rc = setup(c, "SELECT pg_advisory_xact_lock(1685418611, 1)");
	if (rc == DURQ_OK)
		rc = setup(c, "CREATE TABLE IF NOT EXISTS durq_handle_stats(handle_key text PRIMARY "
			   "KEY, pid int8 NOT NULL, host text NOT NULL, started_ms int8 NOT NULL, "
			   "updated_ms int8 NOT NULL, interval_ms int8 NOT NULL, counters text NOT "
			   "NULL)");
	if (rc == DURQ_OK)
		return setup(c, "COMMIT");
	PQclear(PQexec(c->pg, "ROLLBACK"));
	return rc;
}

/* Every row, one callback each (one statement: one snapshot). */
static int pga_handle_stats(durq_conn *conn, durq_export_fn fn, void *ctx)
{
	pg_conn *c = pg_conn_of(conn);
	static const char *const names[] = {"handle_key", "pid", "host", "started_ms",
					    "updated_ms", "interval_ms", "counters"};
	durq_cell cells[7];
	durq_row row = {.table = "handle_stats", .columns = names, .cells = cells, .n = 7};
	PGresult *r;
	int rc = run(c, "SELECT handle_key, pid, host, started_ms, updated_ms, interval_ms, "
		     "counters FROM durq_handle_stats ORDER BY handle_key", 0, NULL,
		     "handle stats", &r);
	for (int i = 0; rc == DURQ_OK && i < PQntuples(r); i++) {
		for (int k = 0; k < 7; k++) {
			if (k == 0 || k == 2 || k == 6) /* text, binary format = its bytes */
				cells[k] = (durq_cell){.type = DURQ_CELL_TEXT,
						       .p = PQgetvalue(r, i, k),
						       .len = (size_t)PQgetlength(r, i, k)};
			else
				cells[k] = (durq_cell){.type = DURQ_CELL_INT, .i = pg_i64(r, i, k)};
		}
		rc = fn(ctx, &row);
	}
	PQclear(r);
	return rc;
}

const struct durq_provider_admin durq_postgres_admin = {
	.version = DURQ_PROVIDER_ADMIN_VERSION,
	.checkpoint = pga_checkpoint,
	.integrity = pga_integrity,
	.vacuum = pga_vacuum,
	.queue_list = pga_queue_list,
	.work_peek = pga_work_peek,
	.dead_page = pga_dead_page,
	.dead_purge = pga_dead_purge,
	.activity = pga_activity,
	.schema_version = pga_schema_version,
	.export_rows = pga_export,
	.import_rows = pga_import,
	.handle_stats = pga_handle_stats,
};
