/*
 * contract.c — the public calls of issue 10 beyond the turn: hierarchy and checked deletes
 * (G8), retention (G9), per-execution and system reads and custom-status polling
 * (G10-G12), reads of an instance's key/value state (G3), renewing and cleaning up activity
 * sessions (G1; the session fetch is api.c's, beside the other fetches). Writes are ops for durq_exec /
 * durq_exec_async like those of api.c (one op, one savepoint of a group-committed
 * transaction); reads go through the provider's optional query method on a pool
 * connection. Does not own: SQL (providers), the turn's own fields (api.c).
 */
#include <stdlib.h>
#include <string.h>

#include "durq_internal.h"

/* Session lock and idle times stay far from int64 overflow (100 years, like delays). */
#define DURQ_SESSION_MS_MAX (100LL * 366 * 24 * 3600 * 1000)

#define ENTER(db)                                  \
	do {                                       \
		int enter_rc_ = durq_api_enter(db); \
		if (enter_rc_ < 0)                 \
			return enter_rc_;          \
	} while (0)

static int leave(durq *db, int rc)
{
	durq_api_leave(db);
	return rc;
}

/* ---- writes ------------------------------------------------------------------------- */

static int prep_delete_many(durq *db, durq_op *op, const char *const *ids, size_t n,
			    unsigned int flags)
{
	int rc;
	if (!ids || n == 0)
		return durq_error_set(DURQ_EINVAL, "durq_instance_delete_many: no ids (ids NULL or "
				      "n 0)");
	if (n > db->opts.max_turn_entries)
		return durq_error_set(DURQ_ETOOBIG, "%zu ids exceed max_turn_entries %zu", n,
				      db->opts.max_turn_entries);
	if (flags & ~(unsigned int)DURQ_DELETE_FORCE)
		return durq_error_set(DURQ_EINVAL, "durq_instance_delete_many: unknown flags 0x%x",
				      flags);
	for (size_t i = 0; i < n; i++)
		if ((rc = durq_check_id(ids[i], "instance id")) < 0)
			return rc;
	*op = (durq_op){.kind = DURQ_OP_INSTANCE_DELETE_MANY,
			.u.instance_delete_many = {.ids = ids, .n = n, .flags = flags}};
	return DURQ_OK;
}

static void counts_out(durq_delete_counts *out, const durq_op *op)
{
	if (out) {
		*out = op->u.instance_delete_many.counts;
		out->version = DURQ_DELETE_COUNTS_VERSION;
	}
}

int durq_instance_delete_many(durq *db, durq_delete_counts *counts, const char *const *ids,
			      size_t n, unsigned int flags)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_delete_many(db, &op, ids, n, flags)) < 0)
		return leave(db, rc);
	if ((rc = durq_exec(db, &op)) == DURQ_OK)
		counts_out(counts, &op);
	return leave(db, rc);
}

int durq_instance_delete_many_async(durq *db, const char *const *ids, size_t n,
				    unsigned int flags, const durq_async *a)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_delete_many(db, &op, ids, n, flags)) < 0)
		return leave(db, rc);
	return leave(db, durq_exec_async(db, &op, a));
}

static int prep_purge(durq_op *op, int64_t before, size_t limit)
{
	if (before <= 0)
		return durq_error_set(DURQ_EINVAL, "durq_instance_purge: completed_before_ms must "
				      "be > 0 (got %lld)", (long long)before);
	if (limit == 0 || limit > DURQ_INSTANCE_LIST_MAX)
		return durq_error_set(DURQ_EINVAL, "durq_instance_purge: limit %zu out of range "
				      "1..%d", limit, DURQ_INSTANCE_LIST_MAX);
	*op = (durq_op){.kind = DURQ_OP_INSTANCE_PURGE,
			.u.instance_delete_many = {.completed_before = before, .limit = limit}};
	return DURQ_OK;
}

int durq_instance_purge(durq *db, durq_delete_counts *counts, int64_t completed_before_ms,
			size_t limit)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_purge(&op, completed_before_ms, limit)) < 0)
		return leave(db, rc);
	if ((rc = durq_exec(db, &op)) == DURQ_OK)
		counts_out(counts, &op);
	return leave(db, rc);
}

int durq_instance_purge_async(durq *db, int64_t completed_before_ms, size_t limit,
			      const durq_async *a)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_purge(&op, completed_before_ms, limit)) < 0)
		return leave(db, rc);
	return leave(db, durq_exec_async(db, &op, a));
}

static int prep_prune_ex(durq_op *op, const char *instance_id, const durq_prune_options *o)
{
	int rc = DURQ_OK;
	if (!o || o->version != DURQ_PRUNE_OPTIONS_VERSION)
		rc = durq_error_set(DURQ_EINVAL, "durq_execution_prune_ex: options NULL or version "
				    "unsupported (use DURQ_PRUNE_OPTIONS_INIT)");
	else if (o->keep_last == 0 && o->completed_before_ms <= 0)
		rc = durq_error_set(DURQ_EINVAL, "durq_execution_prune_ex: give keep_last and/or "
				    "completed_before_ms");
	else if (o->completed_before_ms < 0)
		rc = durq_error_set(DURQ_EINVAL, "durq_execution_prune_ex: completed_before_ms < 0");
	else if (instance_id)
		rc = durq_check_id(instance_id, "instance_id");
	if (rc < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_EXECUTION_PRUNE,
			.u.execution_prune = {.instance_id = instance_id, .keep_last = o->keep_last,
					      .completed_before = o->completed_before_ms}};
	return DURQ_OK;
}

int durq_execution_prune_ex(durq *db, size_t *pruned, const char *instance_id,
			    const durq_prune_options *o)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_prune_ex(&op, instance_id, o)) < 0)
		return leave(db, rc);
	if ((rc = durq_exec(db, &op)) == DURQ_OK && pruned)
		*pruned = op.u.execution_prune.pruned;
	return leave(db, rc);
}

int durq_execution_prune_ex_async(durq *db, const char *instance_id,
				  const durq_prune_options *o, const durq_async *a)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_prune_ex(&op, instance_id, o)) < 0)
		return leave(db, rc);
	return leave(db, durq_exec_async(db, &op, a));
}

/* ---- activity sessions (G1) ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The renew op over a sorted copy of the owner ids without repeats (*ids, freed by the
 * caller after the submit: an async op copies its inputs), so a name given twice counts
 * once whatever the provider. */
static int prep_session_renew(durq *db, durq_op *op, const char ***ids,
			      const char *const *owner_ids, size_t n, int64_t extend_ms,
			      int64_t idle_ms)
{
	int rc;
	*ids = NULL;
	if ((rc = durq_check_sessions(db)) < 0)
		return rc;
	if (!owner_ids || n == 0)
		return durq_error_set(DURQ_EINVAL, "durq_session_renew: no owner ids (owner_ids "
				      "NULL or n 0)");
	if (n > db->opts.max_turn_entries)
		return durq_error_set(DURQ_ETOOBIG, "%zu owner ids exceed max_turn_entries %zu", n,
				      db->opts.max_turn_entries);
	if (extend_ms <= 0 || extend_ms > DURQ_SESSION_MS_MAX)
		return durq_error_set(DURQ_EINVAL, "durq_session_renew: extend_ms %lld out of range "
				      "1..%lld", (long long)extend_ms, (long long)DURQ_SESSION_MS_MAX);
	if (idle_ms < 0 || idle_ms > DURQ_SESSION_MS_MAX)
		return durq_error_set(DURQ_EINVAL, "durq_session_renew: idle_timeout_ms %lld out of "
				      "range 0..%lld", (long long)idle_ms,
				      (long long)DURQ_SESSION_MS_MAX);
	for (size_t i = 0; i < n; i++)
		if ((rc = durq_check_session_id(owner_ids[i], "session owner id")) < 0)
			return rc;
	const char **v = malloc(n * sizeof(*v));
	if (!v)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	memcpy(v, owner_ids, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_str);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
			v[k++] = v[i];
	*ids = v;
	*op = (durq_op){.kind = DURQ_OP_SESSION_RENEW,
			.u.session = {.owners = v, .n = k, .extend_ms = extend_ms,
				      .idle_ms = idle_ms}};
	return DURQ_OK;
}

int durq_session_renew(durq *db, size_t *renewed, const char *const *owner_ids, size_t n,
		       int64_t extend_ms, int64_t idle_timeout_ms)
{
	durq_op op;
	const char **ids;
	int rc;
	ENTER(db);
	if ((rc = prep_session_renew(db, &op, &ids, owner_ids, n, extend_ms, idle_timeout_ms)) ==
	    DURQ_OK) {
		if ((rc = durq_exec(db, &op)) == DURQ_OK && renewed)
			*renewed = op.u.session.count;
		free(ids);
	}
	return leave(db, rc);
}

int durq_session_renew_async(durq *db, const char *const *owner_ids, size_t n,
			     int64_t extend_ms, int64_t idle_timeout_ms, const durq_async *a)
{
	durq_op op;
	const char **ids;
	int rc;
	ENTER(db);
	if ((rc = prep_session_renew(db, &op, &ids, owner_ids, n, extend_ms, idle_timeout_ms)) ==
	    DURQ_OK) {
		rc = durq_exec_async(db, &op, a); /* copies the ids */
		free(ids);
	}
	return leave(db, rc);
}

static int prep_session_cleanup(durq *db, durq_op *op, int64_t idle_ms)
{
	int rc;
	if ((rc = durq_check_sessions(db)) < 0)
		return rc;
	if (idle_ms < 0 || idle_ms > DURQ_SESSION_MS_MAX)
		return durq_error_set(DURQ_EINVAL, "durq_session_cleanup: idle_timeout_ms %lld out "
				      "of range 0..%lld", (long long)idle_ms,
				      (long long)DURQ_SESSION_MS_MAX);
	*op = (durq_op){.kind = DURQ_OP_SESSION_CLEANUP, .u.session = {.idle_ms = idle_ms}};
	return DURQ_OK;
}

int durq_session_cleanup(durq *db, size_t *removed, int64_t idle_timeout_ms)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_session_cleanup(db, &op, idle_timeout_ms)) < 0)
		return leave(db, rc);
	if ((rc = durq_exec(db, &op)) == DURQ_OK && removed)
		*removed = op.u.session.count;
	return leave(db, rc);
}

int durq_session_cleanup_async(durq *db, int64_t idle_timeout_ms, const durq_async *a)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_session_cleanup(db, &op, idle_timeout_ms)) < 0)
		return leave(db, rc);
	return leave(db, durq_exec_async(db, &op, a));
}

/* ---- reads -------------------------------------------------------------------------- */

static int query(durq *db, durq_query *q)
{
	durq_conn *c;
	int rc;
	if (!db->provider->query)
		return durq_error_set(DURQ_EINVAL, "not supported by provider %s",
				      db->provider->name);
	if ((rc = durq_pool_checkout(&db->pool, &c)) < 0)
		return rc;
	rc = db->provider->query(c, q);
	durq_pool_checkin(&db->pool, c, rc == DURQ_EIO || rc == DURQ_ECORRUPT);
	return rc;
}

static int id_list(durq *db, int kind, char ***ids, size_t *n, const char *instance_id)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!ids || !n)
		rc = durq_error_set(DURQ_EINVAL, "ids/n is NULL");
	else
		rc = durq_check_id(instance_id, "instance_id");
	if (rc < 0)
		return leave(db, rc);
	durq_query q = {.kind = kind, .u.ids = {.instance_id = instance_id}};
	*ids = NULL;
	*n = 0;
	if ((rc = query(db, &q)) == DURQ_OK) {
		*ids = q.u.ids.ids;
		*n = q.u.ids.n;
	} else {
		durq_strings_free(q.u.ids.ids, q.u.ids.n);
	}
	return leave(db, rc);
}

int durq_instance_children(durq *db, char ***ids, size_t *n, const char *instance_id)
{
	return id_list(db, DURQ_QUERY_CHILDREN, ids, n, instance_id);
}

int durq_instance_tree(durq *db, char ***ids, size_t *n, const char *instance_id)
{
	return id_list(db, DURQ_QUERY_TREE, ids, n, instance_id);
}

static int check_filter(const durq_instance_filter *f)
{
	if (f->version != DURQ_INSTANCE_FILTER_VERSION)
		return durq_error_set(DURQ_EINVAL, "instance filter version %u unsupported (use "
				      "DURQ_INSTANCE_FILTER_INIT)", f->version);
	if (f->status < 0 || f->status > DURQ_STATUS_TERMINATED)
		return durq_error_set(DURQ_EINVAL, "instance filter status %d unknown", f->status);
	if ((f->name && strnlen(f->name, DURQ_NAME_MAX + 1) > DURQ_NAME_MAX) ||
	    (f->version_tag && strnlen(f->version_tag, DURQ_NAME_MAX + 1) > DURQ_NAME_MAX))
		return durq_error_set(DURQ_EINVAL, "instance filter name or version longer than "
				      "%d bytes", DURQ_NAME_MAX);
	if (f->created_from_ms < 0 || f->created_before_ms < 0 || f->completed_from_ms < 0 ||
	    f->completed_before_ms < 0)
		return durq_error_set(DURQ_EINVAL, "instance filter: negative time bound");
	if ((f->created_before_ms && f->created_before_ms <= f->created_from_ms) ||
	    (f->completed_before_ms && f->completed_before_ms <= f->completed_from_ms))
		return durq_error_set(DURQ_EINVAL, "instance filter: empty time range (before <= "
				      "from)");
	return DURQ_OK;
}

int durq_instance_list_filter(durq *db, char ***ids, size_t *n, const durq_instance_filter *f,
			      const char *after_id, size_t max)
{
	static const durq_instance_filter none = DURQ_INSTANCE_FILTER_INIT;
	int rc = DURQ_OK;
	ENTER(db);
	if (!ids || !n)
		rc = durq_error_set(DURQ_EINVAL, "durq_instance_list_filter: ids/n is NULL");
	else if (after_id)
		rc = durq_check_id(after_id, "after_id");
	if (rc == DURQ_OK)
		rc = check_filter(f ? f : &none);
	if (rc < 0)
		return leave(db, rc);
	if (max == 0)
		max = DURQ_INSTANCE_PAGE_DEFAULT;
	else if (max > DURQ_INSTANCE_LIST_MAX)
		max = DURQ_INSTANCE_LIST_MAX;
	durq_query q = {.kind = DURQ_QUERY_LIST_FILTER,
			.u.list = {.f = f ? f : &none, .after_id = after_id, .max = max}};
	*ids = NULL;
	*n = 0;
	if ((rc = query(db, &q)) == DURQ_OK) {
		*ids = q.u.list.ids;
		*n = q.u.list.n;
	} else {
		durq_strings_free(q.u.list.ids, q.u.list.n);
	}
	return leave(db, rc);
}

int durq_execution_get(durq *db, durq_execution_info **out, const char *instance_id,
		       uint64_t execution_id)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!out)
		rc = durq_error_set(DURQ_EINVAL, "durq_execution_get: out is NULL");
	else
		rc = durq_check_id(instance_id, "instance_id");
	if (rc < 0)
		return leave(db, rc);
	*out = NULL;
	durq_execution_info *info = calloc(1, sizeof(*info));
	if (!info)
		return leave(db, durq_error_set(DURQ_ENOMEM, "out of memory"));
	durq_query q = {.kind = DURQ_QUERY_EXECUTION_GET,
			.u.execution = {instance_id, execution_id, info}};
	if ((rc = query(db, &q)) == DURQ_OK)
		*out = info;
	else
		durq_execution_info_free(info);
	return leave(db, rc);
}

void durq_execution_info_free(durq_execution_info *info)
{
	if (!info)
		return;
	free(info->name);
	free(info->version);
	free(info->output);
	free(info);
}

int durq_system_counts_get(durq *db, durq_system_counts *out)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!out)
		return leave(db, durq_error_set(DURQ_EINVAL, "durq_system_counts_get: out is NULL"));
	memset(out, 0, sizeof(*out));
	durq_query q = {.kind = DURQ_QUERY_SYSTEM_COUNTS, .u.counts = {out}};
	rc = query(db, &q);
	out->version = DURQ_SYSTEM_COUNTS_VERSION;
	return leave(db, rc);
}

int durq_custom_status_get(durq *db, void **value, size_t *len, uint64_t *version,
			   const char *instance_id, uint64_t last_seen_version)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!value || !len || !version)
		rc = durq_error_set(DURQ_EINVAL, "durq_custom_status_get: value/len/version NULL");
	else
		rc = durq_check_id(instance_id, "instance_id");
	if (rc < 0)
		return leave(db, rc);
	*value = NULL;
	*len = 0;
	durq_query q = {.kind = DURQ_QUERY_CUSTOM_STATUS,
			.u.custom_status = {.instance_id = instance_id,
					    .last_seen = last_seen_version}};
	rc = query(db, &q);
	if (rc == DURQ_OK) {
		*value = q.u.custom_status.value;
		*len = q.u.custom_status.len;
	} else {
		free(q.u.custom_status.value);
	}
	if (rc == DURQ_OK || rc == DURQ_EMPTY)
		*version = q.u.custom_status.version;
	return leave(db, rc);
}

/* ---- key/value state (G3) ----------------------------------------------------------- */

int durq_kv_get(durq *db, void **value, size_t *len, const char *instance_id, const char *key)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!value || !len)
		rc = durq_error_set(DURQ_EINVAL, "durq_kv_get: value/len is NULL");
	else if ((rc = durq_check_id(instance_id, "instance_id")) == DURQ_OK)
		rc = durq_check_kv_key(key);
	if (rc < 0)
		return leave(db, rc);
	*value = NULL;
	*len = 0;
	durq_query q = {.kind = DURQ_QUERY_KV_GET,
			.u.kv = {.instance_id = instance_id, .key = key}};
	if ((rc = query(db, &q)) == DURQ_OK) {
		*value = q.u.kv.value;
		*len = q.u.kv.len;
	} else {
		free(q.u.kv.value);
	}
	return leave(db, rc);
}

int durq_kv_list(durq *db, durq_kv_entry **entries, size_t *n, const char *instance_id)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!entries || !n)
		rc = durq_error_set(DURQ_EINVAL, "durq_kv_list: entries/n is NULL");
	else
		rc = durq_check_id(instance_id, "instance_id");
	if (rc < 0)
		return leave(db, rc);
	*entries = NULL;
	*n = 0;
	durq_query q = {.kind = DURQ_QUERY_KV_LIST, .u.kv = {.instance_id = instance_id}};
	if ((rc = query(db, &q)) == DURQ_OK) {
		*entries = q.u.kv.entries;
		*n = q.u.kv.n;
	} else {
		durq_kv_entries_free(q.u.kv.entries, q.u.kv.n);
	}
	return leave(db, rc);
}

void durq_kv_entries_free(durq_kv_entry *e, size_t n)
{
	if (!e)
		return;
	for (size_t i = 0; i < n; i++) {
		free(e[i].key);
		free(e[i].value);
	}
	free(e);
}
