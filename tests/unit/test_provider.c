/*
 * test_provider.c — the provider interface: durq_provider_check refuses bad versions and
 * missing methods with a message naming them; durq_open_provider takes ownership (frees a
 * refused provider); a wrapping provider that counts calls sees every op the core sends,
 * each between txn_begin and txn_commit, one savepoint per op in group mode; the scheme
 * registry and URL parameters; change_wait wakes fetchers for other writers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <unistd.h>

#include "counting_provider.h"
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
	p.version = 2; /* connections without a provider: refused, with the reason */
	assert_int_equal(durq_provider_check(&p), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "rebuild against durq/provider.h"));
	p.version = 3; /* a struct that ends before admin and query */
	assert_int_equal(durq_provider_check(&p), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "version 3 ends before admin and query"));
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
	copy.version = 4; /* ends before flush and flush_recover: still spoken */
	assert_int_equal(durq_provider_check(&copy), DURQ_OK);
	copy = *real;
	copy.conn_check = NULL; /* optional */
	copy.pragma_get = NULL; /* optional */
	copy.data_version = NULL; /* optional */
	assert_int_equal(durq_provider_check(&copy), DURQ_OK);
	real->free(real);
	fx_teardown((void **)&f);
}

/* ---- the counting provider of examples/ (public headers only) wraps the SQLite one ---- */

static counting_provider *wrap_file(fx *f)
{
	durq_provider *real;
	counting_provider *c;
	assert_int_equal(durq_provider_new(&real, f->url, NULL), DURQ_OK);
	assert_int_equal(counting_provider_wrap(&c, real), DURQ_OK);
	return c;
}

/* A provider without the batch method: the core wraps each op in its own savepoint. */
static void test_provider_without_batch_method_gets_a_savepoint_per_op(void **state)
{
	(void)state;
	fx *f = fx_new("wrap.db");
	counting_provider *cp = wrap_file(f);
	atomic_int freed = 0;
	cp->freed = &freed;
	cp->base.op_apply_batch = NULL;
	counting_provider *volatile c = cp; /* read after close, freed by durq_free */
	assert_int_equal(durq_open_provider(&f->db, &cp->base, NULL), DURQ_OK);
	durq_work w = {.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 60000, 0), DURQ_OK);
	assert_int_equal(durq_work_ack(f->db, it[0].id, &it[0].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	durq_close(f->db); /* the committer is joined: the counters are ours to read */
	assert_int_equal(c->applies, 3);
	assert_int_equal(c->op_begins, 3); /* one savepoint per op */
	assert_int_equal(c->batches, 0);
	assert_int_equal(c->outside_txn, 0);
	assert_true(c->begins >= 3 && c->commits == c->begins);
	assert_true(c->conns_opened >= 2); /* the committer's and the pool's */
	durq_free(f->db);
	f->db = NULL;
	assert_int_equal(freed, 1);
	fx_teardown((void **)&f);
}

/* A provider with the batch method gets the whole batch in one call: 8 acks held in the
 * ring, one transaction, one op_apply_batch with 8 ops; a stale token fails alone. */
static void test_batch_provider_applies_the_whole_batch(void **state)
{
	(void)state;
	fx *f = fx_new("batch.db");
	counting_provider *c = wrap_file(f);
	assert_int_equal(durq_open_provider(&f->db, &c->base, NULL), DURQ_OK);
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
	int before = c->batches;
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
	assert_int_equal(c->batches - before, 1);
	assert_int_equal(c->op_begins, 0); /* the provider did its own savepoints */
	assert_int_equal(c->applies, 0);
	assert_int_equal(c->outside_txn, 0);
	durq_free(f->db);
	f->db = NULL;
	fx_teardown((void **)&f);
}

static void test_open_provider_frees_a_refused_provider(void **state)
{
	(void)state;
	fx *f = fx_new("refused.db");
	counting_provider *c = wrap_file(f);
	atomic_int freed = 0;
	c->freed = &freed;
	durq *db = (durq *)0x1;
	c->base.history_read = NULL;
	assert_int_equal(durq_open_provider(&db, &c->base, NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "history_read"));
	assert_int_equal(freed, 1);
	fx_teardown((void **)&f);
}

/* ---- the scheme registry and URL parameters -------------------------------------------- */

/* A registered scheme opens through its factory; the connections it hands the core carry
 * it; unregistered, the scheme is unknown again. */
static void test_registered_scheme_opens_through_its_factory(void **state)
{
	(void)state;
	fx *f = fx_new("reg.db");
	char url[4200];
	snprintf(url, sizeof(url), "counting:%s", f->url);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "unknown URL scheme 'counting'"));
	assert_int_equal(counting_provider_register(), DURQ_OK);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_OK);
	counting_provider *c = (counting_provider *)f->db->provider;
	assert_string_equal(c->base.name, "counting");
	assert_ptr_equal(f->db->committer.conn->provider, &c->base);
	durq_work w = {.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, 1);
	assert_true(c->reads >= 1);
	durq_free(f->db);
	f->db = NULL;
	assert_int_equal(durq_provider_unregister("counting"), DURQ_OK);
	assert_int_equal(durq_provider_unregister("counting"), DURQ_ENOTFOUND);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_EINVAL);
	fx_teardown((void **)&f);
}

static void test_register_refuses_bad_schemes(void **state)
{
	(void)state;
	assert_int_equal(durq_provider_register("", NULL, NULL), DURQ_EINVAL);
	assert_int_equal(durq_provider_register("1abc", (durq_provider_factory)1, NULL),
			 DURQ_EINVAL);
	assert_int_equal(durq_provider_register("a b", (durq_provider_factory)1, NULL),
			 DURQ_EINVAL);
	assert_int_equal(durq_provider_register("ok", NULL, NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "factory is NULL"));
}

/* sqlite:PATH?synchronous=off&busy_timeout_ms=250 reaches the provider; an unknown or bad
 * parameter is refused with its name, and no file is created. */
static void test_sqlite_url_parameters(void **state)
{
	(void)state;
	fx *f = fx_new("params.db");
	char url[4200], buf[64];
	snprintf(url, sizeof(url), "%s?synchronous=off&busy_timeout_ms=250", f->url);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_OK);
	assert_int_equal(durq_pragma_get(f->db, buf, sizeof(buf), "synchronous"), DURQ_OK);
	assert_string_equal(buf, "0");
	assert_int_equal(durq_pragma_get(f->db, buf, sizeof(buf), "busy_timeout"), DURQ_OK);
	assert_string_equal(buf, "250");
	durq_options eff; /* the effective options say what the URL set */
	assert_int_equal(durq_options_get(f->db, &eff), DURQ_OK);
	assert_int_equal(eff.synchronous, DURQ_SYNC_OFF);
	assert_int_equal(eff.busy_timeout_ms, 250);
	durq_free(f->db);
	f->db = NULL;
	snprintf(url, sizeof(url), "%s-2?cache=shared", f->url);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "unknown parameter 'cache'"));
	snprintf(url, sizeof(url), "%s-2?synchronous=sometimes", f->url);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "synchronous='sometimes'"));
	snprintf(url, sizeof(url), "%s-2?vfs=%%zz", f->url);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "malformed URL parameter"));
	snprintf(url, sizeof(url), "%s-2", strchr(f->url, ':') + 1);
	assert_int_equal(access(url, F_OK), -1); /* nothing was created */
	fx_teardown((void **)&f);
}

/* ---- change_wait: a provider that is told about other connections' commits ------------- */

typedef struct fake_notify {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending;   /* changes to report */
	int cancelled; /* change_cancel was called */
	int waits;     /* change_wait calls */
} fake_notify;

static fake_notify the_notify = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

/* Blocks until told (no timeout of its own beyond the core's: poll interval is 10 min). */
static int fake_change_wait(durq_conn *c, int64_t timeout_ms)
{
	(void)c;
	(void)timeout_ms;
	fake_notify *n = &the_notify;
	pthread_mutex_lock(&n->mu);
	n->waits++;
	while (!n->pending && !n->cancelled)
		pthread_cond_wait(&n->cv, &n->mu);
	int rc = n->pending ? DURQ_OK : DURQ_ETIMEDOUT;
	n->pending = 0;
	n->cancelled = 0;
	pthread_mutex_unlock(&n->mu);
	return rc;
}

static void fake_change_cancel(durq_conn *c)
{
	(void)c;
	pthread_mutex_lock(&the_notify.mu);
	the_notify.cancelled = 1;
	pthread_cond_broadcast(&the_notify.cv);
	pthread_mutex_unlock(&the_notify.mu);
}

typedef struct fetcher {
	durq *db;
	int rc;
	size_t n;
} fetcher;

static void *fetch_forever(void *arg)
{
	fetcher *ft = arg;
	durq_work_item *it = NULL;
	ft->rc = durq_work_fetch(ft->db, &it, &ft->n, NULL, 1, 60000, 600000);
	durq_work_items_free(it, ft->n);
	return NULL;
}

/* A fetcher long-polling on handle A finds an item handle B (another "process") enqueued
 * as soon as A's provider reports a change: not at a poll interval (10 minutes here), and
 * data_version is not consulted. Closing A cancels the wait. */
static void test_change_wait_wakes_fetchers_for_other_writers(void **state)
{
	(void)state;
	fx *f = fx_new("notify.db");
	counting_provider *c = wrap_file(f);
	c->base.change_wait = fake_change_wait;
	c->base.change_cancel = fake_change_cancel;
	c->base.data_version = NULL;
	durq_options o = DURQ_OPTIONS_INIT;
	o.poll_interval_ms = 600000;
	assert_int_equal(durq_open_provider(&f->db, &c->base, &o), DURQ_OK);
	durq *b;
	assert_int_equal(durq_open(&b, f->url, NULL), DURQ_OK);
	fetcher ft = {.db = f->db};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fetch_forever, &ft), 0);
	durq_work w = {.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(b, &w, 1), DURQ_OK);
	pthread_mutex_lock(&the_notify.mu);
	the_notify.pending = 1; /* "another connection committed" */
	pthread_cond_broadcast(&the_notify.cv);
	pthread_mutex_unlock(&the_notify.mu);
	pthread_join(t, NULL);
	assert_int_equal(ft.rc, DURQ_OK);
	assert_int_equal(ft.n, 1);
	durq_free(b);
	assert_int_equal(durq_close(f->db), DURQ_OK); /* returns: the wait was cancelled */
	assert_true(the_notify.waits >= 1);
	fx_teardown((void **)&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_refuses_null_and_bad_versions),
		cmocka_unit_test(test_check_names_the_missing_method),
		cmocka_unit_test(test_provider_without_batch_method_gets_a_savepoint_per_op),
		cmocka_unit_test(test_batch_provider_applies_the_whole_batch),
		cmocka_unit_test(test_open_provider_frees_a_refused_provider),
		cmocka_unit_test(test_registered_scheme_opens_through_its_factory),
		cmocka_unit_test(test_register_refuses_bad_schemes),
		cmocka_unit_test(test_sqlite_url_parameters),
		cmocka_unit_test(test_change_wait_wakes_fetchers_for_other_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
