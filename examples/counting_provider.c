/*
 * counting_provider.c — a provider written outside the tree: it uses only the installed
 * headers (durq.h, durq/provider.h) and wraps whatever provider another URL opens,
 * counting what the core asks of it. "counting:sqlite:/tmp/q.db" opens the SQLite file
 * through it once counting_provider_register() has run.
 *
 * It shows the parts of the interface an out-of-tree provider needs: a scheme factory,
 * connections that start with durq_conn and know their provider, every method forwarded,
 * and the counters read back through the provider pointer a connection carries.
 *
 * Owns: the wrapper provider, its wrapped connections and counters (counting_provider.h).
 */
#include <stdlib.h>
#include <string.h>

#include "counting_provider.h"

typedef struct wconn {
	durq_conn base; /* first: the core sees a durq_conn */
	durq_conn *inner;
	int in_txn;
} wconn;

static counting_provider *owner(durq_conn *c)
{
	return (counting_provider *)c->provider;
}

static durq_conn *inner(durq_conn *c)
{
	return ((wconn *)c)->inner;
}

static durq_provider *real(durq_conn *c)
{
	return owner(c)->real;
}

static int w_conn_open(durq_provider *p, durq_conn **out, int role)
{
	counting_provider *cp = (counting_provider *)p;
	wconn *w = calloc(1, sizeof(*w));
	if (!w)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	int rc = cp->real->conn_open(cp->real, &w->inner, role);
	if (rc < 0) {
		free(w);
		return rc;
	}
	w->base.provider = p;
	atomic_fetch_add(&cp->conns_opened, 1);
	*out = &w->base;
	return DURQ_OK;
}

static void w_conn_close(durq_provider *p, durq_conn *c)
{
	counting_provider *cp = (counting_provider *)p;
	cp->real->conn_close(cp->real, inner(c));
	free(c);
}

static int w_conn_check(durq_conn *c)
{
	return real(c)->conn_check ? real(c)->conn_check(inner(c)) : DURQ_OK;
}

static int w_txn_begin(durq_conn *c, unsigned int flags)
{
	atomic_fetch_add(&owner(c)->begins, 1);
	((wconn *)c)->in_txn = 1;
	return real(c)->txn_begin(inner(c), flags);
}

static int w_txn_commit(durq_conn *c)
{
	atomic_fetch_add(&owner(c)->commits, 1);
	((wconn *)c)->in_txn = 0;
	return real(c)->txn_commit(inner(c));
}

static int w_txn_rollback(durq_conn *c)
{
	((wconn *)c)->in_txn = 0;
	return real(c)->txn_rollback(inner(c));
}

static int w_op_begin(durq_conn *c)
{
	atomic_fetch_add(&owner(c)->op_begins, 1);
	return real(c)->op_begin(inner(c));
}

static int w_op_end(durq_conn *c, int keep)
{
	return real(c)->op_end(inner(c), keep);
}

static int w_op_apply(durq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	atomic_fetch_add(&owner(c)->applies, 1);
	atomic_fetch_add(&owner(c)->outside_txn, !((wconn *)c)->in_txn);
	return real(c)->op_apply(inner(c), op, ctx);
}

static int w_op_apply_batch(durq_conn *c, durq_op *const *ops, durq_op_result *res, size_t n,
			    const durq_op_ctx *ctx)
{
	atomic_fetch_add(&owner(c)->batches, 1);
	atomic_fetch_add(&owner(c)->batch_ops, (int)n);
	atomic_fetch_add(&owner(c)->outside_txn, !((wconn *)c)->in_txn);
	return real(c)->op_apply_batch(inner(c), ops, res, n, ctx);
}

static int w_history_read(durq_conn *c, durq_event **ev, size_t *n, const char *id,
			  uint64_t exec)
{
	atomic_fetch_add(&owner(c)->reads, 1);
	return real(c)->history_read(inner(c), ev, n, id, exec);
}

static int w_instance_get(durq_conn *c, durq_instance_info **out, const char *id)
{
	atomic_fetch_add(&owner(c)->reads, 1);
	return real(c)->instance_get(inner(c), out, id);
}

static int w_instance_list(durq_conn *c, char ***ids, size_t *n, int status, const char *after,
			   size_t max)
{
	atomic_fetch_add(&owner(c)->reads, 1);
	return real(c)->instance_list(inner(c), ids, n, status, after, max);
}

static int w_execution_list(durq_conn *c, durq_execution_info **out, size_t *n, const char *id)
{
	atomic_fetch_add(&owner(c)->reads, 1);
	return real(c)->execution_list(inner(c), out, n, id);
}

static int w_dead_list(durq_conn *c, durq_dead_letter **out, size_t *n, size_t max)
{
	atomic_fetch_add(&owner(c)->reads, 1);
	return real(c)->dead_list(inner(c), out, n, max);
}

static int w_queue_depths(durq_conn *c, durq_queue_depths *out, const char *q, int64_t now)
{
	atomic_fetch_add(&owner(c)->reads, 1);
	return real(c)->queue_depths(inner(c), out, q, now);
}

static int w_next_due(durq_conn *c, int64_t *due, int64_t now)
{
	return real(c)->next_due(inner(c), due, now);
}

static int w_pragma_get(durq_conn *c, char *buf, size_t len, const char *name)
{
	return real(c)->pragma_get(inner(c), buf, len, name);
}

static int w_data_version(durq_conn *c, uint64_t *out)
{
	return real(c)->data_version(inner(c), out);
}

static int w_change_wait(durq_conn *c, int64_t timeout_ms)
{
	return real(c)->change_wait(inner(c), timeout_ms);
}

static void w_change_cancel(durq_conn *c)
{
	real(c)->change_cancel(inner(c));
}

static int w_stats(durq_provider *p, durq_provider_stats *out)
{
	counting_provider *cp = (counting_provider *)p;
	return cp->real->stats(cp->real, out);
}

static void w_free(durq_provider *p)
{
	counting_provider *cp = (counting_provider *)p;
	cp->real->free(cp->real);
	if (cp->freed)
		atomic_store(cp->freed, 1);
	free(cp);
}

/* Optional methods stay NULL where the wrapped provider has none. */
#define FORWARD(m) (r->m ? w_##m : NULL)

int counting_provider_wrap(counting_provider **out, durq_provider *r)
{
	counting_provider *cp = calloc(1, sizeof(*cp));
	if (!cp) {
		r->free(r);
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	}
	cp->real = r;
	cp->base = (durq_provider){
		.version = DURQ_PROVIDER_VERSION,
		.name = "counting",
		.flags = r->flags,
		.conn_open = w_conn_open,
		.conn_close = w_conn_close,
		.conn_check = w_conn_check,
		.txn_begin = w_txn_begin,
		.txn_commit = w_txn_commit,
		.txn_rollback = w_txn_rollback,
		.op_begin = w_op_begin,
		.op_end = w_op_end,
		.op_apply = w_op_apply,
		.history_read = w_history_read,
		.instance_get = w_instance_get,
		.instance_list = w_instance_list,
		.execution_list = w_execution_list,
		.dead_list = w_dead_list,
		.queue_depths = w_queue_depths,
		.next_due = w_next_due,
		.pragma_get = FORWARD(pragma_get),
		.data_version = FORWARD(data_version),
		.stats = FORWARD(stats),
		.free = w_free,
		.settings = r->settings,
		.op_apply_batch = FORWARD(op_apply_batch),
		.change_wait = FORWARD(change_wait),
		.change_cancel = FORWARD(change_cancel),
	};
	*out = cp;
	return DURQ_OK;
}

/* "counting:<any other durq URL>": the location (with its own query) is that URL. */
static int factory(durq_provider **out, const durq_provider_config *cfg, void *ctx)
{
	(void)ctx;
	const char *inner_url = cfg->url + strlen(cfg->scheme) + 1;
	durq_provider *r;
	counting_provider *cp;
	int rc = durq_provider_new(&r, inner_url, cfg->opts);
	if (rc < 0)
		return rc;
	if ((rc = counting_provider_wrap(&cp, r)) < 0)
		return rc;
	*out = &cp->base;
	return DURQ_OK;
}

int counting_provider_register(void)
{
	return durq_provider_register("counting", factory, NULL);
}
