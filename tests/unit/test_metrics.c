/*
 * test_metrics.c — durq_stats_prometheus against the Prometheus text format: the text is
 * parsed back (every family has HELP and TYPE before its samples, counters end in _total,
 * histogram buckets are cumulative with le="+Inf" equal to _count, no series twice) and the
 * values follow real work on a SQLite file: sync and async acks move the op counters, the
 * commit and ack latency histograms and the queue depths; a failed ack adds no latency.
 * Runs in group and per-op mode (the async path completes ops differently in each).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "durq_internal.h"
#include "unit_util.h"

/* ---- a small parser of the exposition text ----------------------------------------- */

#define MAX_FAMILIES 64
#define MAX_SAMPLES 512

typedef struct family {
	char name[128];
	char type[16];
	int has_help;
	int has_samples;
} family;

typedef struct sample {
	char name[128];
	char labels[256]; /* as written, without the braces ("" if none) */
	double value;
} sample;

typedef struct scrape {
	family fam[MAX_FAMILIES];
	size_t nfam;
	sample smp[MAX_SAMPLES];
	size_t nsmp;
} scrape;

static family *family_find(scrape *s, const char *name)
{
	for (size_t i = 0; i < s->nfam; i++)
		if (strcmp(s->fam[i].name, name) == 0)
			return &s->fam[i];
	return NULL;
}

static family *family_get(scrape *s, const char *name)
{
	family *f = family_find(s, name);
	if (f)
		return f;
	assert_true(s->nfam < MAX_FAMILIES);
	f = &s->fam[s->nfam++];
	memset(f, 0, sizeof(*f));
	assert_true(strlen(name) < sizeof(f->name));
	strcpy(f->name, name);
	return f;
}

static int valid_name(const char *n)
{
	if (strncmp(n, "durq_", 5) != 0)
		return 0;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

/* The family a sample belongs to: its own name, or a histogram's without the suffix. */
static family *family_of(scrape *s, const char *sample_name)
{
	family *f = family_find(s, sample_name);
	if (f)
		return f;
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(sample_name), k = strlen(sfx[i]);
		if (n > k && strcmp(sample_name + n - k, sfx[i]) == 0) {
			char base[128];
			snprintf(base, sizeof(base), "%.*s", (int)(n - k), sample_name);
			if ((f = family_find(s, base)) && strcmp(f->type, "histogram") == 0)
				return f;
		}
	}
	return NULL;
}

static void parse_line(scrape *s, char *line)
{
	char name[128];
	if (strncmp(line, "# HELP ", 7) == 0) {
		assert_int_equal(sscanf(line + 7, "%127s", name), 1);
		family *f = family_get(s, name);
		assert_false(f->has_help);        /* one HELP per family */
		assert_false(f->has_samples);     /* before its samples */
		assert_true(strlen(line + 7) > strlen(name) + 1); /* a text follows the name */
		f->has_help = 1;
		return;
	}
	if (strncmp(line, "# TYPE ", 7) == 0) {
		char type[16];
		assert_int_equal(sscanf(line + 7, "%127s %15s", name, type), 2);
		family *f = family_get(s, name);
		assert_true(f->has_help);         /* HELP first, as we write it */
		assert_string_equal(f->type, ""); /* one TYPE per family */
		assert_false(f->has_samples);
		assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
			    strcmp(type, "histogram") == 0);
		strcpy(f->type, type);
		return;
	}
	assert_true(line[0] != '#');
	assert_true(s->nsmp < MAX_SAMPLES);
	sample *m = &s->smp[s->nsmp++];
	memset(m, 0, sizeof(*m));
	size_t n = strcspn(line, "{ ");
	assert_true(n > 0 && n < sizeof(m->name));
	memcpy(m->name, line, n);
	char *p = line + n;
	if (*p == '{') {
		char *end = strchr(p, '}');
		assert_non_null(end);
		assert_true((size_t)(end - p - 1) < sizeof(m->labels));
		memcpy(m->labels, p + 1, (size_t)(end - p - 1));
		p = end + 1;
	}
	assert_true(*p == ' ');
	char *rest;
	m->value = strtod(p + 1, &rest);
	assert_true(rest != p + 1 && *rest == '\0'); /* one number, nothing after it */
	assert_true(valid_name(m->name));
	family *f = family_of(s, m->name);
	assert_non_null(f); /* every sample's family was declared before it */
	assert_true(f->has_help && f->type[0]);
	f->has_samples = 1;
}

/* Scrape db and parse the text; the text's own checks are asserted while parsing. */
static void scrape_db(durq *db, scrape *s)
{
	size_t need = 0;
	assert_int_equal(durq_stats_prometheus(db, NULL, 0, &need), DURQ_OK); /* sizing call */
	assert_true(need > 0);
	size_t len = need + 4096; /* counters may grow between the two calls */
	char *buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(durq_stats_prometheus(db, buf, len, &need), DURQ_OK);
	assert_int_equal(strlen(buf), need);
	assert_true(need > 0 && buf[need - 1] == '\n');
	memset(s, 0, sizeof(*s));
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		parse_line(s, line);
	free(buf);
}

/* The value of a sample (labels exactly as written); fails the test if it is missing. */
static double value(const scrape *s, const char *name, const char *labels)
{
	for (size_t i = 0; i < s->nsmp; i++)
		if (strcmp(s->smp[i].name, name) == 0 && strcmp(s->smp[i].labels, labels) == 0)
			return s->smp[i].value;
	fail_msg("no sample %s{%s}", name, labels);
	return NAN;
}

/* labels without the le="..." pair; *le = its value (NULL if none). */
static void split_le(const char *labels, char *rest, size_t len, const char **le, char *lebuf)
{
	const char *p = strstr(labels, "le=\"");
	*le = NULL;
	snprintf(rest, len, "%s", labels);
	if (!p)
		return;
	const char *q = strchr(p + 4, '"');
	assert_non_null(q);
	snprintf(lebuf, 64, "%.*s", (int)(q - p - 4), p + 4);
	*le = lebuf;
	assert_null(strchr(q, ',')); /* le is the last label, as we write it */
	size_t pre = (size_t)(p - labels);
	if (pre > 0 && labels[pre - 1] == ',')
		pre--;
	snprintf(rest, len, "%.*s", (int)pre, labels);
}

/* Every series of every histogram: le increasing, counts cumulative, le="+Inf" last and
 * equal to _count, a _sum. Returns how many series it checked. */
static size_t check_histograms(const scrape *s)
{
	size_t series = 0;
	for (size_t i = 0; i < s->nsmp; i++) {
		const sample *m = &s->smp[i];
		size_t n = strlen(m->name);
		if (n < 7 || strcmp(m->name + n - 7, "_bucket") != 0)
			continue;
		char base[128], rest[256], lebuf[64];
		const char *le;
		snprintf(base, sizeof(base), "%.*s", (int)(n - 7), m->name);
		split_le(m->labels, rest, sizeof(rest), &le, lebuf);
		assert_non_null(le);
		/* start of a series: the first bucket with these labels */
		int first = 1;
		for (size_t j = 0; j < i && first; j++) {
			char r2[256], lb2[64];
			const char *le2;
			if (strcmp(s->smp[j].name, m->name) != 0)
				continue;
			split_le(s->smp[j].labels, r2, sizeof(r2), &le2, lb2);
			first = strcmp(r2, rest) != 0;
		}
		if (!first)
			continue;
		double prev_le = -INFINITY, prev = 0;
		size_t j = i;
		int inf = 0;
		for (; j < s->nsmp && strcmp(s->smp[j].name, m->name) == 0; j++) {
			char r2[256], lb2[64];
			const char *le2;
			split_le(s->smp[j].labels, r2, sizeof(r2), &le2, lb2);
			assert_string_equal(r2, rest); /* a series' buckets are contiguous */
			assert_false(inf);              /* nothing after +Inf */
			double l = strcmp(le2, "+Inf") == 0 ? INFINITY : strtod(le2, NULL);
			inf = isinf(l);
			assert_true(l > prev_le);
			assert_true(s->smp[j].value >= prev);
			prev_le = l;
			prev = s->smp[j].value;
		}
		assert_true(inf);
		char sum[160], count[160];
		snprintf(sum, sizeof(sum), "%s_sum", base);
		snprintf(count, sizeof(count), "%s_count", base);
		assert_true(value(s, count, rest) == prev);
		assert_true(value(s, sum, rest) >= 0);
		series++;
	}
	return series;
}

static void check_format(const scrape *s)
{
	for (size_t i = 0; i < s->nfam; i++) {
		const family *f = &s->fam[i];
		assert_true(valid_name(f->name));
		assert_true(f->has_help && f->type[0] && f->has_samples);
		size_t n = strlen(f->name);
		int total = n > 6 && strcmp(f->name + n - 6, "_total") == 0;
		if (strcmp(f->type, "counter") == 0)
			assert_true(total);
		else
			assert_false(total); /* only counters end in _total */
	}
	for (size_t i = 0; i < s->nsmp; i++) /* no series twice */
		for (size_t j = i + 1; j < s->nsmp; j++)
			assert_false(strcmp(s->smp[i].name, s->smp[j].name) == 0 &&
				     strcmp(s->smp[i].labels, s->smp[j].labels) == 0);
	/* commit, ack (work, orch) and ops-per-transaction */
	assert_int_equal(check_histograms(s), 4);
}

/* ---- the scenario ------------------------------------------------------------------ */

static int setup(void **state)
{
	*state = fx_new("metrics.db");
	return 0;
}

static void open_db(fx *f, int mode)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = mode;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
}

#define N_ITEMS 20

static void acked(void *ctx, const durq_completion *c)
{
	assert_int_equal(c->rc, DURQ_OK);
	ck_pr_inc_int((int *)ctx);
}

/* Enqueue N_ITEMS, ack 5 synchronously, 5 asynchronously, 2 with ack_many, fail one ack,
 * leave 8 leased; one orchestration turn. */
static void work(durq *db)
{
	durq_work w[N_ITEMS];
	for (int i = 0; i < N_ITEMS; i++)
		w[i] = (durq_work){.queue = "m", .payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(db, w, N_ITEMS), DURQ_OK);
	durq_work_item *items;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &items, &n, "m", N_ITEMS, 60000, 0), DURQ_OK);
	assert_int_equal(n, N_ITEMS);
	for (int i = 0; i < 5; i++)
		assert_int_equal(durq_work_ack(db, items[i].id, &items[i].token, NULL), DURQ_OK);
	durq_group *g;
	int done = 0;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	for (int i = 5; i < 10; i++) {
		durq_async a = {.done = acked, .ctx = &done, .group = g};
		assert_int_equal(durq_work_ack_async(db, items[i].id, &items[i].token, NULL, &a),
				 DURQ_OK);
	}
	assert_int_equal(durq_group_wait(g, -1, NULL), DURQ_OK);
	durq_group_free(g);
	assert_int_equal(ck_pr_load_int(&done), 5);
	durq_work_ack_req reqs[2] = {{items[10].id, &items[10].token, NULL},
				     {items[11].id, &items[11].token, NULL}};
	assert_int_equal(durq_work_ack_many(db, reqs, 2, NULL), DURQ_OK);
	/* a failed ack: counted as an op and a failure, not as a latency */
	assert_int_equal(durq_work_ack(db, items[0].id, &items[0].token, NULL), DURQ_ELOCKLOST);
	durq_work_items_free(items, n);

	durq_message start = {.instance_id = "metrics-1", .kind = 1, .payload = "{}", .payload_len = 2};
	assert_int_equal(durq_orch_enqueue(db, &start, 1), DURQ_OK);
	durq_turn *turn;
	assert_int_equal(durq_orch_fetch(db, &turn, 60000, 0), DURQ_OK);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "metrics";
	assert_int_equal(durq_orch_ack(db, turn->instance_id, &turn->token, &r), DURQ_OK);
	durq_turn_free(turn);
}

static void run_scenario(fx *f, int mode)
{
	open_db(f, mode);
	scrape *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	assert_non_null(a);
	assert_non_null(b);
	scrape_db(f->db, a);
	check_format(a);
	assert_true(value(a, "durq_ack_latency_seconds_count", "op=\"work_ack\"") == 0);
	assert_true(value(a, "durq_ops_total", "op=\"work_ack\"") == 0);

	work(f->db);

	scrape_db(f->db, b);
	check_format(b);
	/* 13 work acks (12 OK, 1 failed), 12 latencies: 5 sync, 5 async, 2 ack_many */
	assert_true(value(b, "durq_ops_total", "op=\"work_ack\"") == 13);
	assert_true(value(b, "durq_ops_total", "op=\"work_enqueue\"") == 1);
	assert_true(value(b, "durq_ops_total", "op=\"orch_ack\"") == 1);
	assert_true(value(b, "durq_op_failures_total", "") -
			    value(a, "durq_op_failures_total", "") == 1);
	assert_true(value(b, "durq_ack_latency_seconds_count", "op=\"work_ack\"") == 12);
	assert_true(value(b, "durq_ack_latency_seconds_sum", "op=\"work_ack\"") > 0);
	assert_true(value(b, "durq_ack_latency_seconds_bucket", "op=\"work_ack\",le=\"+Inf\"") == 12);
	assert_true(value(b, "durq_ack_latency_seconds_count", "op=\"orch_ack\"") == 1);
	double txns = value(b, "durq_transactions_total", "");
	assert_true(txns > value(a, "durq_transactions_total", ""));
	assert_true(value(b, "durq_commit_duration_seconds_count", "") == txns);
	assert_true(value(b, "durq_transaction_ops_count", "") == txns);
	assert_true(value(b, "durq_commit_duration_seconds_sum", "") >
		    value(a, "durq_commit_duration_seconds_sum", ""));
	assert_true(value(b, "durq_commit_duration_max_seconds", "") > 0);
	assert_true(value(b, "durq_queue_depth", "queue_kind=\"work\",state=\"leased\"") == 8);
	assert_true(value(b, "durq_queue_depth", "queue_kind=\"work\",state=\"ready\"") == 0);
	assert_true(value(b, "durq_queue_depth", "queue_kind=\"orch\",state=\"ready\"") == 0);
	assert_true(value(b, "durq_wal_bytes", "") > 0);
	assert_true(value(b, "durq_db_bytes", "") > 0);

	/* the text and the struct agree */
	durq_stats s;
	assert_int_equal(durq_stats_get(f->db, &s), DURQ_OK);
	assert_int_equal(s.work_ack_latency.count, 12);
	assert_int_equal(s.orch_ack_latency.count, 1);
	uint64_t sum = 0;
	for (int i = 0; i < DURQ_LATENCY_BUCKETS; i++)
		sum += s.commit_latency.buckets[i];
	assert_int_equal(sum, s.commit_latency.count);
	assert_true(s.commit_latency.count >= (uint64_t)txns);
	free(a);
	free(b);
}

static void test_group_mode(void **state)
{
	run_scenario(*state, DURQ_COMMIT_GROUP);
}

static void test_per_op_mode(void **state)
{
	run_scenario(*state, DURQ_COMMIT_PER_OP);
}

/* Too small a buffer: DURQ_ETOOBIG, *needed says how much, the text is cut and terminated. */
static void test_small_buffer(void **state)
{
	fx *f = *state;
	open_db(f, DURQ_COMMIT_GROUP);
	char small[64];
	size_t need = 0;
	assert_int_equal(durq_stats_prometheus(f->db, small, sizeof(small), &need), DURQ_ETOOBIG);
	assert_true(need >= sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_non_null(strstr(durq_error_last(), "too small"));
	assert_int_equal(durq_stats_prometheus(NULL, small, sizeof(small), &need), DURQ_EINVAL);
}

/* Bucket bounds: a duration on a bound counts in that bucket (le is inclusive). */
static void test_latency_buckets(void **state)
{
	(void)state;
	durq_counters c;
	memset(&c, 0, sizeof(c));
	static const uint64_t b[] = DURQ_LATENCY_BOUNDS_US;
	assert_int_equal(sizeof(b) / sizeof(b[0]), DURQ_LATENCY_BUCKETS - 1);
	durq_stats_ack(&c, DURQ_OP_WORK_ACK, 100000);          /* 100 us: bucket 0 */
	durq_stats_ack(&c, DURQ_OP_WORK_ACK, 100001);          /* just past: bucket 1 */
	durq_stats_ack(&c, DURQ_OP_WORK_ACK, 20000000000ull);  /* 20 s: +Inf */
	durq_stats_ack(&c, DURQ_OP_WORK_RENEW, 1000);          /* not an ack: ignored */
	durq_stats s;
	durq_stats_snapshot(&c, &s);
	assert_int_equal(s.work_ack_latency.count, 3);
	assert_int_equal(s.work_ack_latency.buckets[0], 1);
	assert_int_equal(s.work_ack_latency.buckets[1], 1);
	assert_int_equal(s.work_ack_latency.buckets[DURQ_LATENCY_BUCKETS - 1], 1);
	assert_int_equal(s.work_ack_latency.sum_ns, 100000 + 100001 + 20000000000ull);
	assert_int_equal(s.orch_ack_latency.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_mode, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_per_op_mode, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_small_buffer, setup, fx_teardown),
		cmocka_unit_test(test_latency_buckets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
