/*
 * test_stress.c — 8 threads x 10,000 enqueue -> fetch -> ack cycles on a file database and
 * on the in-memory one: every item acked exactly once, 0 errors, 0 BUSY surfaced.
 * Run under TSan by .ci/run. DURQ_STRESS_CYCLES overrides the count (never in CI).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "unit_util.h"

enum { THREADS = 8 };

typedef struct worker {
	durq *db;
	int id;
	int cycles;
	int errors;
	int busy;
	int *seen; /* seen[thread * cycles + i] counts acks of that item (owned by this worker) */
	int last_rc;
	char last_msg[256];
} worker;

static int parse_payload(const durq_work_item *it, int *thread, int *i)
{
	char buf[32];
	size_t n = it->payload_len < sizeof(buf) - 1 ? it->payload_len : sizeof(buf) - 1;
	memcpy(buf, it->payload, n);
	buf[n] = '\0';
	return sscanf(buf, "%d:%d", thread, i) == 2 ? 0 : -1;
}

static void note_error(worker *w, int rc)
{
	w->errors++;
	w->busy += rc == DURQ_EBUSY;
	w->last_rc = rc;
	snprintf(w->last_msg, sizeof(w->last_msg), "%s", durq_error_last());
}

static void *run_worker(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < w->cycles; i++) {
		char p[32];
		int rc, t, k;
		snprintf(p, sizeof(p), "%d:%d", w->id, i);
		durq_work item = {.queue = "stress", .payload = p, .payload_len = strlen(p)};
		if ((rc = durq_work_enqueue(w->db, &item, 1)) != DURQ_OK) {
			note_error(w, rc);
			continue;
		}
		durq_work_item *it;
		size_t n;
		if ((rc = durq_work_fetch(w->db, &it, &n, "stress", 1, 600000, 5000)) != DURQ_OK) {
			note_error(w, rc);
			continue;
		}
		if ((rc = durq_work_ack(w->db, it[0].id, &it[0].token, NULL)) != DURQ_OK)
			note_error(w, rc);
		else if (parse_payload(&it[0], &t, &k) == 0 && t >= 0 && t < THREADS && k >= 0 &&
			 k < w->cycles)
			w->seen[t * w->cycles + k]++;
		else
			w->errors++;
		durq_work_items_free(it, n);
	}
	return NULL;
}

static int cycles(void)
{
	const char *e = getenv("DURQ_STRESS_CYCLES");
	return e ? atoi(e) : 10000;
}

static void hammer(const char *url)
{
	durq *db;
	int n = cycles();
	assert_int_equal(durq_open(&db, url, NULL), DURQ_OK);
	pthread_t th[THREADS];
	worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){.db = db, .id = i, .cycles = n};
		w[i].seen = calloc((size_t)THREADS * (size_t)n, sizeof(int));
		pthread_create(&th[i], NULL, run_worker, &w[i]);
	}
	int errors = 0, busy = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
		busy += w[i].busy;
		if (w[i].errors)
			fprintf(stderr, "worker %d: %d errors, last %s: %s\n", i, w[i].errors,
				durq_error_name(w[i].last_rc), w[i].last_msg);
	}
	assert_int_equal(errors, 0);
	assert_int_equal(busy, 0);
	/* every item acked exactly once, across all workers */
	for (size_t k = 0; k < (size_t)THREADS * (size_t)n; k++) {
		int total = 0;
		for (int i = 0; i < THREADS; i++)
			total += w[i].seen[k];
		if (total != 1)
			fail_msg("item %zu acked %d times", k, total);
	}
	durq_stats s;
	durq_queue_depths d;
	assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_leased + d.work_delayed, 0);
	assert_int_equal(s.busy_surfaced, 0);
	assert_int_equal(s.ops[DURQ_OP_WORK_ACK], (uint64_t)THREADS * (uint64_t)n);
	fprintf(stderr, "%s: %llu txns, mean %.2f ops/txn, max %llu\n", url,
		(unsigned long long)s.transactions, s.mean_ops_per_txn,
		(unsigned long long)s.max_ops_per_txn);
	for (int i = 0; i < THREADS; i++)
		free(w[i].seen);
	durq_free(db);
}

static void test_8x10000_cycles_file_each_item_acked_once(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *url = test_url(dir, "stress.db");
	hammer(url);
	free(url);
	test_rmdir(dir);
}

static void test_8x10000_cycles_memory_each_item_acked_once(void **state)
{
	(void)state;
	hammer("sqlite::memory:");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_8x10000_cycles_file_each_item_acked_once),
		cmocka_unit_test(test_8x10000_cycles_memory_each_item_acked_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
