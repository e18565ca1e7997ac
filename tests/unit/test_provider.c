/*
 * test_provider.c — the provider interface: durq_provider_check refuses bad versions and
 * missing methods with a message naming them; durq_open_provider takes ownership (frees a
 * refused provider); a wrapping provider that counts calls sees every op the core sends,
 * each between txn_begin and txn_commit, one savepoint per op in group mode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "durq/provider.h"
#include "durq_internal.h"
#include "sqlite/sqlite_provider.h"
#include "unit_util.h"

static void test_check_refuses_null_and_bad_versions(void **state)
{
	(void)state;
	durq_provider p = DURQ_PROVIDER_INIT;
	assert_int_equal(durq_provider_check(NULL), DURQ_EINVAL);
	p.version = 0;
	assert_int_equal(durq_provider_check(&p), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "version 0"));
	p.version = DURQ_PROVIDER_VERSION + 1;
	assert_int_equal(durq_provider_check(&p), DURQ_EINVAL);
}

static void test_check_names_the_missing_method(void **state)
{
	(void)state;
	fx *f = fx_new("check.db");
	durq_provider *real;
	assert_int_equal(durq_sqlite_provider_new(&real, strchr(f->url, ':') + 1, NULL), DURQ_OK);
	assert_int_equal(durq_provider_check(real), DURQ_OK);
	durq_provider copy = *real;
	copy.op_apply = NULL;
	assert_int_equal(durq_provider_check(&copy), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "op_apply"));
	copy = *real;
	copy.conn_check = NULL; /* optional */
	copy.pragma_get = NULL; /* optional */
	copy.data_version = NULL; /* optional */
	assert_int_equal(durq_provider_check(&copy), DURQ_OK);
	real->free(real);
	fx_teardown((void **)&f);
}

/* ---- a provider wrapping the SQLite one, counting calls ----------------------------- */

typedef struct counting {
	durq_provider base;
	durq_provider *real;
	int begins, commits, op_begins, applies, in_txn, outside;
	int batches, batch_ops; /* op_apply_batch calls, and the ops they carried */
	int freed;
} counting;

static counting *the; /* one wrapper per test; the vtable has no user pointer per conn */

static int c_conn_open(durq_provider *p, durq_conn **out, int role)
{
	counting *c = (counting *)p;
	return c->real->conn_open(c->real, out, role);
}
static void c_conn_close(durq_provider *p, durq_conn *conn)
{
	counting *c = (counting *)p;
	c->real->conn_close(c->real, conn);
}
static int c_txn_begin(durq_conn *conn, unsigned int flags)
{
	the->begins++;
	the->in_txn = 1;
	return the->real->txn_begin(conn, flags);
}
static int c_txn_commit(durq_conn *conn)
{
	the->commits++;
	the->in_txn = 0;
	return the->real->txn_commit(conn);
}
static int c_txn_rollback(durq_conn *conn)
{
	the->in_txn = 0;
	return the->real->txn_rollback(conn);
}
static int c_op_begin(durq_conn *conn)
{
	the->op_begins++;
	return the->real->op_begin(conn);
}
static int c_op_apply(durq_conn *conn, durq_op *op, const durq_op_ctx *ctx)
{
	the->applies++;
	the->outside += !the->in_txn;
	return the->real->op_apply(conn, op, ctx);
}
static int c_op_apply_batch(durq_conn *conn, durq_op *const *ops, durq_op_result *res, size_t n,
			    const durq_op_ctx *ctx)
{
	the->batches++;
	the->batch_ops += (int)n;
	the->outside += !the->in_txn;
	return the->real->op_apply_batch(conn, ops, res, n, ctx);
}
static void c_free(durq_provider *p)
{
	counting *c = (counting *)p;
	c->real->free(c->real);
	c->freed = 1;
}

static void wrap(counting *c, durq_provider *real)
{
	memset(c, 0, sizeof(*c));
	c->base = *real;
	c->real = real;
	c->base.name = "counting";
	c->base.conn_open = c_conn_open;
	c->base.conn_close = c_conn_close;
	c->base.txn_begin = c_txn_begin;
	c->base.txn_commit = c_txn_commit;
	c->base.txn_rollback = c_txn_rollback;
	c->base.op_begin = c_op_begin;
	c->base.op_apply = c_op_apply;
	c->base.op_apply_batch = c_op_apply_batch;
	c->base.free = c_free;
	the = c;
}

/* A version 1 provider (no batch method): the core wraps each op in its own savepoint. */
static void test_version_1_provider_gets_a_savepoint_per_op(void **state)
{
	(void)state;
	fx *f = fx_new("wrap.db");
	durq_provider *real;
	counting c;
	assert_int_equal(durq_sqlite_provider_new(&real, strchr(f->url, ':') + 1, NULL), DURQ_OK);
	wrap(&c, real);
	c.base.version = 1;
	c.base.op_apply_batch = NULL; /* a v1 provider does not have the field's method */
	assert_int_equal(durq_open_provider(&f->db, &c.base, NULL), DURQ_OK);
	durq_work w = {.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 60000, 0), DURQ_OK);
	assert_int_equal(durq_work_ack(f->db, it[0].id, &it[0].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	durq_close(f->db); /* the committer is joined: the counters are ours to read */
	assert_int_equal(c.applies, 3);
	assert_int_equal(c.op_begins, 3); /* one savepoint per op */
	assert_int_equal(c.batches, 0);
	assert_int_equal(c.outside, 0);
	assert_true(c.begins >= 3 && c.commits == c.begins);
	durq_free(f->db);
	f->db = NULL;
	assert_int_equal(c.freed, 1);
	fx_teardown((void **)&f);
}

/* A version 2 provider gets the whole batch in one call: 8 acks held in the ring, one
 * transaction, one op_apply_batch with 8 ops; a stale token fails alone. */
static void test_version_2_provider_applies_the_whole_batch(void **state)
{
	(void)state;
	fx *f = fx_new("batch.db");
	durq_provider *real;
	counting c;
	assert_int_equal(durq_sqlite_provider_new(&real, strchr(f->url, ':') + 1, NULL), DURQ_OK);
	wrap(&c, real);
	assert_int_equal(durq_open_provider(&f->db, &c.base, NULL), DURQ_OK);
	for (int i = 0; i < 8; i++) {
		durq_work w = {.payload = "x", .payload_len = 1};
		assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	}
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 8, 60000, 0), DURQ_OK);
	assert_int_equal(n, 8);
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	int before = c.batches;
	durq_committer_pause(f->db, 1);
	durq_token bad = it[2].token;
	bad.bytes[0] ^= 1;
	for (size_t i = 0; i < n; i++) {
		durq_async a = {.group = g};
		assert_int_equal(durq_work_ack_async(f->db, it[i].id, i == 2 ? &bad : &it[i].token,
						     NULL, &a), DURQ_OK);
	}
	durq_committer_pause(f->db, 0);
	size_t failed;
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	assert_int_equal(failed, 1);
	durq_group_free(g);
	durq_work_items_free(it, n);
	durq_close(f->db);
	assert_int_equal(c.batches - before, 1);
	assert_int_equal(c.op_begins, 0); /* the provider did its own savepoints */
	assert_int_equal(c.applies, 0);
	assert_int_equal(c.outside, 0);
	durq_free(f->db);
	f->db = NULL;
	fx_teardown((void **)&f);
}

static void test_open_provider_frees_a_refused_provider(void **state)
{
	(void)state;
	fx *f = fx_new("refused.db");
	durq_provider *real;
	counting c;
	durq *db = (durq *)0x1;
	assert_int_equal(durq_sqlite_provider_new(&real, strchr(f->url, ':') + 1, NULL), DURQ_OK);
	wrap(&c, real);
	c.base.history_read = NULL;
	assert_int_equal(durq_open_provider(&db, &c.base, NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "history_read"));
	assert_int_equal(c.freed, 1);
	fx_teardown((void **)&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_refuses_null_and_bad_versions),
		cmocka_unit_test(test_check_names_the_missing_method),
		cmocka_unit_test(test_version_1_provider_gets_a_savepoint_per_op),
		cmocka_unit_test(test_version_2_provider_applies_the_whole_batch),
		cmocka_unit_test(test_open_provider_frees_a_refused_provider),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
