/*
 * test_flush.c — which transactions flush (fsync) the WAL, observed through a counting
 * wrapper VFS: enqueues and acks flush under synchronous=FULL; claims-only transactions do
 * not (DURQ_TXN_NO_FLUSH: a lost claim only makes an item deliverable again), and the next
 * flushed commit carries them. Also: synchronous=OFF never flushes on commit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../bench/slowvfs.h"
#include "unit_util.h"

static int open_with(void **state, int mode, int sync)
{
	fx *f = fx_new("flush.db");
	durq_options o = DURQ_OPTIONS_INIT;
	o.sqlite_vfs = bench_slowvfs_register(0);
	o.commit_mode = mode;
	o.synchronous = sync;
	assert_non_null(o.sqlite_vfs);
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	*state = f;
	return 0;
}

static int setup_group(void **state) { return open_with(state, DURQ_COMMIT_GROUP, DURQ_SYNC_FULL); }
static int setup_per_op(void **state) { return open_with(state, DURQ_COMMIT_PER_OP, DURQ_SYNC_FULL); }
static int setup_off(void **state) { return open_with(state, DURQ_COMMIT_GROUP, DURQ_SYNC_OFF); }

static void test_enqueue_and_ack_flush_claims_do_not(void **state)
{
	fx *f = *state;
	durq_work w = {.payload = "x", .payload_len = 1};
	long s0 = bench_slowvfs_syncs();
	assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	long s1 = bench_slowvfs_syncs();
	assert_true(s1 > s0); /* an OK'd enqueue is on disk */

	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 1, 60000, 0), DURQ_OK);
	long s2 = bench_slowvfs_syncs();
	assert_int_equal(s2, s1); /* the claim committed without a flush */

	assert_int_equal(durq_work_ack(f->db, it[0].id, &it[0].token, NULL), DURQ_OK);
	assert_true(bench_slowvfs_syncs() > s2); /* the ack flushes, the claim's frames too */
	durq_work_items_free(it, n);

	durq_message m = {.instance_id = "i", .payload = "s", .payload_len = 1};
	assert_int_equal(durq_orch_enqueue(f->db, &m, 1), DURQ_OK);
	long s3 = bench_slowvfs_syncs();
	durq_turn *t;
	assert_int_equal(durq_orch_fetch(f->db, &t, 60000, 0), DURQ_OK);
	assert_int_equal(bench_slowvfs_syncs(), s3); /* orchestration claims too */
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	assert_int_equal(durq_orch_ack(f->db, t->instance_id, &t->token, &r), DURQ_OK);
	assert_true(bench_slowvfs_syncs() > s3);
	durq_turn_free(t);
}

static void test_synchronous_off_never_flushes_on_commit(void **state)
{
	fx *f = *state;
	durq_work w = {.payload = "x", .payload_len = 1};
	long s0 = bench_slowvfs_syncs();
	for (int i = 0; i < 10; i++)
		assert_int_equal(durq_work_enqueue(f->db, &w, 1), DURQ_OK);
	assert_int_equal(bench_slowvfs_syncs(), s0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enqueue_and_ack_flush_claims_do_not, setup_group, fx_teardown),
		cmocka_unit_test_setup_teardown(test_enqueue_and_ack_flush_claims_do_not, setup_per_op, fx_teardown),
		cmocka_unit_test_setup_teardown(test_synchronous_off_never_flushes_on_commit, setup_off, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
