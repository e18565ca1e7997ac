/*
 * admin.c — the operator calls of durq/admin.h: argument checks, a pool connection per
 * call, and the dispatch to the provider's optional admin hooks. Owns the rules that hold
 * for every provider: paging limits, and the export dropping leases (instance_locks and
 * sessions are not exported; lock_token / locked_until of queue rows read as NULL). Does
 * not own SQL.
 */
#include <stdlib.h>
#include <string.h>

#include "durq_internal.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 10000

static int leave(durq *db, int rc)
{
	durq_api_leave(db);
	return rc;
}

/* The hook, or DURQ_EINVAL naming the provider. */
static int hook(durq *db, int present, const char *what)
{
	if (present)
		return DURQ_OK;
	return durq_error_set(DURQ_EINVAL, "%s: not supported by provider %s", what,
			      db->provider->name);
}

#define ADMIN(db) ((db)->provider->admin ? (db)->provider->admin : &no_admin)
static const struct durq_provider_admin no_admin = {.version = DURQ_PROVIDER_ADMIN_VERSION};

/* Run call on a pool connection (c_), with the API entered; rc holds the result. */
#define ON_CONN(db, call)                                                                 \
	do {                                                                              \
		durq_conn *c_;                                                            \
		rc = durq_pool_checkout(&(db)->pool, &c_);                                \
		if (rc == DURQ_OK) {                                                      \
			rc = call;                                                        \
			durq_pool_checkin(&(db)->pool, c_, rc == DURQ_EIO || rc == DURQ_ECORRUPT); \
		}                                                                         \
	} while (0)

static size_t page_size(size_t max)
{
	return max == 0 ? PAGE_DEFAULT : max > PAGE_MAX ? PAGE_MAX : max;
}

int durq_db_checkpoint(durq *db, durq_checkpoint_result *out)
{
	durq_checkpoint_result tmp = {.version = DURQ_CHECKPOINT_RESULT_VERSION};
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (out && out->version != DURQ_CHECKPOINT_RESULT_VERSION)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_db_checkpoint: out->version %u "
						"(this library knows %d)", out->version,
						DURQ_CHECKPOINT_RESULT_VERSION));
	if ((rc = hook(db, ADMIN(db)->checkpoint != NULL, "checkpoint")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->checkpoint(c_, &tmp));
	if (rc == DURQ_OK && out)
		*out = tmp;
	return leave(db, rc);
}

int durq_db_integrity(durq *db, char **report)
{
	char *r = NULL;
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (report)
		*report = NULL;
	if ((rc = hook(db, ADMIN(db)->integrity != NULL, "integrity")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->integrity(c_, &r));
	if (report)
		*report = r;
	else
		durq_mem_free(r);
	return leave(db, rc);
}

int durq_db_vacuum(durq *db)
{
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if ((rc = hook(db, ADMIN(db)->vacuum != NULL, "vacuum")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->vacuum(c_));
	return leave(db, rc);
}

int durq_queue_list(durq *db, durq_queue_info **out, size_t *n)
{
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!out || !n)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_queue_list: out/n is NULL"));
	*out = NULL;
	*n = 0;
	if ((rc = hook(db, ADMIN(db)->queue_list != NULL, "queue list")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->queue_list(c_, out, n, durq_clock_now(db)));
	return leave(db, rc);
}

void durq_queue_infos_free(durq_queue_info *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		durq_mem_free(list[i].name);
	durq_mem_free(list);
}

int durq_work_peek(durq *db, durq_work_info **out, size_t *n, const char *queue,
		   int64_t after_id, size_t max)
{
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!out || !n)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_work_peek: out/n is NULL"));
	*out = NULL;
	*n = 0;
	if (queue && strnlen(queue, DURQ_QUEUE_NAME_MAX + 1) > DURQ_QUEUE_NAME_MAX)
		return leave(db, durq_error_set(DURQ_EINVAL, "queue name longer than %d bytes",
						DURQ_QUEUE_NAME_MAX));
	if ((rc = hook(db, ADMIN(db)->work_peek != NULL, "work peek")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->work_peek(c_, out, n, queue, after_id, page_size(max)));
	return leave(db, rc);
}

void durq_work_infos_free(durq_work_info *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++) {
		durq_mem_free(list[i].queue);
		durq_mem_free(list[i].instance_id);
		durq_mem_free(list[i].payload);
	}
	durq_mem_free(list);
}

int durq_dead_page(durq *db, durq_dead_letter **out, size_t *n, int64_t after_id, size_t max)
{
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!out || !n)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_dead_page: out/n is NULL"));
	*out = NULL;
	*n = 0;
	if ((rc = hook(db, ADMIN(db)->dead_page != NULL, "dead letter page")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->dead_page(c_, out, n, after_id, page_size(max)));
	return leave(db, rc);
}

int durq_dead_purge(durq *db, size_t *purged, const durq_dead_filter *filter)
{
	durq_dead_filter all = DURQ_DEAD_FILTER_INIT;
	size_t count = 0;
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (filter && filter->version != DURQ_DEAD_FILTER_VERSION)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_dead_purge: filter->version %u "
						"(this library knows %d)", filter->version,
						DURQ_DEAD_FILTER_VERSION));
	if (durq_in_writer())
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_dead_purge: a write from the "
						"writing thread would wait for itself"));
	if ((rc = hook(db, ADMIN(db)->dead_purge != NULL, "dead letter purge")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->dead_purge(c_, &count, filter ? filter : &all));
	if (purged)
		*purged = rc == DURQ_OK ? count : 0;
	return leave(db, rc);
}

int durq_db_activity_get(durq *db, durq_db_activity *out)
{
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!out || out->version != DURQ_DB_ACTIVITY_VERSION)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_db_activity_get: out is NULL or "
						"its version is not %d", DURQ_DB_ACTIVITY_VERSION));
	durq_db_activity a = {.version = DURQ_DB_ACTIVITY_VERSION,
			      .commits = DURQ_ACTIVITY_UNKNOWN,
			      .rows_written = DURQ_ACTIVITY_UNKNOWN};
	durq_provider_stats ps = {0};
	if (db->provider->stats && db->provider->stats(db->provider, &ps) == DURQ_OK) {
		a.db_bytes = ps.db_bytes;
		a.wal_bytes = ps.wal_bytes;
	}
	rc = DURQ_OK;
	if (ADMIN(db)->activity)
		ON_CONN(db, ADMIN(db)->activity(c_, &a));
	if (rc == DURQ_OK)
		*out = a;
	return leave(db, rc);
}

/* ---- export: the provider's raw rows, leases dropped --------------------------------- */

typedef struct export_ctx {
	durq_export_fn fn;
	void *ctx;
	int drop[64];        /* per column of the current table: 1 = a lease column */
	int skip_table;
	durq_cell cells[64];
} export_ctx;

static int is_lease_column(const char *table, const char *col)
{
	if (!strcmp(table, "orch_queue"))
		return !strcmp(col, "lock_token");
	if (!strcmp(table, "work_queue"))
		return !strcmp(col, "lock_token") || !strcmp(col, "locked_until");
	return 0;
}

static int export_row(void *arg, const durq_row *row)
{
	export_ctx *x = arg;
	if (row->n > sizeof(x->drop) / sizeof(x->drop[0]))
		return durq_error_set(DURQ_ETOOBIG, "export: table %s has %zu columns (at most 64)",
				      row->table, row->n);
	if (!row->cells) { /* a table starts */
		/* leases: instance locks, and who holds which activity session (G1) */
		x->skip_table = !strcmp(row->table, "instance_locks") ||
				!strcmp(row->table, "sessions");
		for (size_t i = 0; i < row->n; i++)
			x->drop[i] = is_lease_column(row->table, row->columns[i]);
		return x->skip_table ? DURQ_OK : x->fn(x->ctx, row);
	}
	if (x->skip_table)
		return DURQ_OK;
	durq_row r = *row;
	for (size_t i = 0; i < row->n; i++)
		x->cells[i] = x->drop[i] ? (durq_cell){.type = DURQ_CELL_NULL} : row->cells[i];
	r.cells = x->cells;
	return x->fn(x->ctx, &r);
}

int durq_db_export(durq *db, durq_export_info *info, durq_export_fn fn, void *ctx)
{
	durq_export_info tmp = {.version = DURQ_EXPORT_INFO_VERSION};
	export_ctx *x;
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!fn)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_db_export: fn is NULL"));
	if (info && info->version != DURQ_EXPORT_INFO_VERSION)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_db_export: info->version %u "
						"(this library knows %d)", info->version,
						DURQ_EXPORT_INFO_VERSION));
	if ((rc = hook(db, ADMIN(db)->export_rows != NULL, "export")) < 0)
		return leave(db, rc);
	if (!(x = calloc(1, sizeof(*x))))
		return leave(db, durq_error_set(DURQ_ENOMEM, "out of memory"));
	x->fn = fn;
	x->ctx = ctx;
	ON_CONN(db, ADMIN(db)->export_rows(c_, info ? info : &tmp, export_row, x));
	free(x);
	return leave(db, rc);
}

int durq_db_import(durq *db, size_t *rows, durq_import_fn next, void *ctx)
{
	size_t count = 0;
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!next)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_db_import: next is NULL"));
	if (durq_in_writer())
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_db_import: a write from the "
						"writing thread would wait for itself"));
	if ((rc = hook(db, ADMIN(db)->import_rows != NULL, "import")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->import_rows(c_, &count, next, ctx));
	if (rows)
		*rows = rc == DURQ_OK ? count : 0;
	if (rc == DURQ_OK)
		durq_next_due_refresh(db);
	return leave(db, rc);
}

int durq_db_schema_version(durq *db, int *out)
{
	int v = 0;
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!out)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_db_schema_version: out is NULL"));
	if ((rc = hook(db, ADMIN(db)->schema_version != NULL, "schema version")) == DURQ_OK)
		ON_CONN(db, ADMIN(db)->schema_version(c_, &v));
	if (rc == DURQ_OK)
		*out = v;
	return leave(db, rc);
}

/* ---- the counters every handle published (publish.c writes them) --------------------- */

typedef struct stats_rows {
	durq_handle_stats *v;
	size_t n, cap;
	int64_t now;
} stats_rows;

static void cell_text(const durq_cell *c, char *out, size_t cap)
{
	size_t n = c->type == DURQ_CELL_TEXT && c->p ? c->len : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(out, c->p, n);
	out[n] = '\0';
}

static int stats_row(void *arg, const durq_row *row)
{
	stats_rows *x = arg;
	if (!row->cells)
		return DURQ_OK;
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 8;
		durq_handle_stats *v = durq_mem_realloc(x->v, cap * sizeof(*v));
		if (!v)
			return durq_error_set(DURQ_ENOMEM, "out of memory");
		x->v = v;
		x->cap = cap;
	}
	durq_handle_stats *h = &x->v[x->n];
	memset(h, 0, sizeof(*h));
	for (size_t i = 0; i < row->n; i++) {
		const char *col = row->columns[i];
		const durq_cell *c = &row->cells[i];
		int64_t v = c->type == DURQ_CELL_INT ? c->i : 0;
		if (!strcmp(col, "handle_key"))
			cell_text(c, h->key, sizeof(h->key));
		else if (!strcmp(col, "host"))
			cell_text(c, h->host, sizeof(h->host));
		else if (!strcmp(col, "pid"))
			h->pid = v;
		else if (!strcmp(col, "started_ms"))
			h->started_ms = v;
		else if (!strcmp(col, "updated_ms"))
			h->updated_ms = v;
		else if (!strcmp(col, "interval_ms"))
			h->interval_ms = v;
		else if (!strcmp(col, "counters") && c->type == DURQ_CELL_TEXT && c->p)
			durq_publish_decode(c->p, c->len, h);
	}
	int64_t window = 3 * h->interval_ms; /* 3 intervals, at least 3 s (clock skew) */
	h->fresh = h->updated_ms >= x->now - (window > 3000 ? window : 3000);
	x->n++;
	return DURQ_OK;
}

static int stats_cmp(const void *a, const void *b)
{
	const durq_handle_stats *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	if (c)
		return c;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->started_ms != y->started_ms)
		return x->started_ms < y->started_ms ? -1 : 1;
	return strcmp(x->key, y->key);
}

int durq_handle_stats_list(durq *db, durq_handle_stats **out, size_t *n)
{
	int rc = durq_api_enter(db);
	if (rc < 0)
		return rc;
	if (!out || !n)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_handle_stats_list: out/n is NULL"));
	*out = NULL;
	*n = 0;
	const struct durq_provider_admin *a = ADMIN(db);
	if ((rc = hook(db, a->version >= 2 && a->handle_stats, "handle stats")) < 0)
		return leave(db, rc);
	stats_rows x = {.now = durq_clock_wall_ms(NULL)}; /* rows hold wall-clock times */
	ON_CONN(db, a->handle_stats(c_, stats_row, &x));
	if (rc < 0) {
		durq_mem_free(x.v);
		return leave(db, rc);
	}
	if (x.n > 1)
		qsort(x.v, x.n, sizeof(*x.v), stats_cmp);
	*out = x.v;
	*n = x.n;
	return leave(db, DURQ_OK);
}

void durq_handle_stats_free(durq_handle_stats *list)
{
	durq_mem_free(list);
}
