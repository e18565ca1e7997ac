/*
 * cli_stats.c — `durq stats`, `durq queues`, `durq top`: the database as a whole, depth
 * per queue, and a line per interval of database-wide activity (commits of every process,
 * not this command's own handle, whose counters would only show the command itself).
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "durq/provider.h"

static const struct option json_opts[] = {{"json", no_argument, NULL, 'j'},
					  {"help", no_argument, NULL, 'h'},
					  {NULL, 0, NULL, 0}};

/* The URL of a verb that takes only URL and --json. */
static int url_and_json(cli *c, int argc, char **argv, const char **url)
{
	CLI_OPTS_BEGIN(c, argc, argv, "j", json_opts)
	case 'j':
		c->json = 1;
		break;
	CLI_OPTS_END
	int i = optind, rc;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", url)) != 0)
		return rc;
	return cli_no_more(c, argc, argv, i);
}

typedef struct snapshot {
	durq_stats st;
	durq_db_activity act;
	int schema;
	int64_t now;
} snapshot;

static int take(durq *db, snapshot *s)
{
	int rc;
	memset(s, 0, sizeof(*s));
	s->act.version = DURQ_DB_ACTIVITY_VERSION;
	if ((rc = durq_stats_get(db, &s->st)) < 0 || (rc = durq_db_activity_get(db, &s->act)) < 0 ||
	    (rc = durq_db_schema_version(db, &s->schema)) < 0)
		return rc;
	s->now = durq_now(db);
	return DURQ_OK;
}

static json_t *u64_or_null(uint64_t v)
{
	return v == DURQ_ACTIVITY_UNKNOWN ? json_null() : json_integer((json_int_t)v);
}

static void stats_json(cli *c, durq *db, const snapshot *s)
{
	const durq_queue_depths *d = &s->st.depths;
	json_t *j = json_pack(
		"{s:s, s:i, s:I, s:I, s:o, s:o, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:I, s:I}",
		"provider", durq_provider_of(db)->name, "schema_version", s->schema, "db_bytes",
		(json_int_t)s->st.db_bytes, "wal_bytes", (json_int_t)s->st.wal_bytes, "commits",
		u64_or_null(s->act.commits), "rows_written", u64_or_null(s->act.rows_written),
		"orchestrations", "ready", (json_int_t)d->orch_ready, "delayed",
		(json_int_t)d->orch_delayed, "leased", (json_int_t)d->orch_leased, "work", "ready",
		(json_int_t)d->work_ready, "delayed", (json_int_t)d->work_delayed, "leased",
		(json_int_t)d->work_leased, "dead_letters", (json_int_t)d->dead_letters,
		"instances_locked", (json_int_t)d->instances_locked);
	cli_json_print(c, j);
}

static void count_or_dash(FILE *f, const char *label, uint64_t v)
{
	if (v == DURQ_ACTIVITY_UNKNOWN)
		fprintf(f, "%-22s -\n", label);
	else
		fprintf(f, "%-22s %" PRIu64 "\n", label, v);
}

static void stats_text(cli *c, durq *db, const snapshot *s)
{
	const durq_queue_depths *d = &s->st.depths;
	char db_b[32], wal_b[32];
	cli_bytes(db_b, sizeof(db_b), s->st.db_bytes);
	cli_bytes(wal_b, sizeof(wal_b), s->st.wal_bytes);
	FILE *f = c->out;
	fprintf(f, "%-22s %s\n", "provider", durq_provider_of(db)->name);
	fprintf(f, "%-22s %d\n", "schema version", s->schema);
	fprintf(f, "%-22s %s\n", "database size", db_b);
	fprintf(f, "%-22s %s\n", "WAL size", wal_b);
	count_or_dash(f, "commits (shared)", s->act.commits);
	count_or_dash(f, "rows written", s->act.rows_written);
	fprintf(f, "\n%-16s %10s %10s %10s\n", "queue", "ready", "delayed", "leased");
	fprintf(f, "%-16s %10lld %10lld %10lld\n", "orchestrations", (long long)d->orch_ready,
		(long long)d->orch_delayed, (long long)d->orch_leased);
	fprintf(f, "%-16s %10lld %10lld %10lld\n", "work", (long long)d->work_ready,
		(long long)d->work_delayed, (long long)d->work_leased);
	fprintf(f, "\n%-22s %lld\n", "dead letters", (long long)d->dead_letters);
	fprintf(f, "%-22s %lld\n", "instances leased", (long long)d->instances_locked);
}

int cli_stats(cli *c, int argc, char **argv)
{
	const char *url;
	durq *db;
	snapshot s;
	int rc = url_and_json(c, argc, argv, &url);
	if (rc != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	if ((rc = take(db, &s)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		if (c->json)
			stats_json(c, db, &s);
		else
			stats_text(c, db, &s);
		rc = CLI_OK;
	}
	durq_free(db);
	return rc;
}

/* ---- queues ------------------------------------------------------------------------- */

static const char *queue_label(const durq_queue_info *q)
{
	if (q->kind == DURQ_QUEUE_ORCH)
		return "(orchestrations)";
	return q->name && q->name[0] ? q->name : "(default)";
}

static void queues_print(cli *c, const durq_queue_info *q, size_t n, int64_t now)
{
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack(
				"{s:s, s:o, s:I, s:I, s:I, s:o}", "kind",
				q[i].kind == DURQ_QUEUE_ORCH ? "orchestration" : "work", "name",
				q[i].name ? json_string(q[i].name) : json_null(), "ready",
				(json_int_t)q[i].ready, "delayed", (json_int_t)q[i].delayed, "leased",
				(json_int_t)q[i].leased, "oldest_wait_ms",
				q[i].oldest_ms ? json_integer(now - q[i].oldest_ms) : json_null()));
		cli_json_print(c, json_pack("{s:o}", "queues", arr));
		return;
	}
	fprintf(c->out, "%-24s %10s %10s %10s  %s\n", "QUEUE", "READY", "DELAYED", "LEASED",
		"OLDEST WAIT");
	for (size_t i = 0; i < n; i++) {
		char age[32] = "-";
		if (q[i].oldest_ms)
			cli_age(age, sizeof(age), now - q[i].oldest_ms);
		fprintf(c->out, "%-24s %10lld %10lld %10lld  %s\n", queue_label(&q[i]),
			(long long)q[i].ready, (long long)q[i].delayed, (long long)q[i].leased, age);
	}
}

int cli_queues(cli *c, int argc, char **argv)
{
	const char *url;
	durq *db;
	durq_queue_info *q;
	size_t n;
	int rc = url_and_json(c, argc, argv, &url);
	if (rc != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	if ((rc = durq_queue_list(db, &q, &n)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		queues_print(c, q, n, durq_now(db));
		durq_queue_infos_free(q, n);
		rc = CLI_OK;
	}
	durq_free(db);
	return rc;
}

/* ---- top ---------------------------------------------------------------------------- */

static int64_t oldest_wait(durq *db, int64_t now)
{
	durq_queue_info *q;
	size_t n;
	int64_t oldest = 0;
	if (durq_queue_list(db, &q, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (q[i].oldest_ms && (!oldest || q[i].oldest_ms < oldest))
			oldest = q[i].oldest_ms;
	durq_queue_infos_free(q, n);
	return oldest ? now - oldest : 0;
}

/* Per-second rate of a counter between two samples; -1 if unknown. SQLite's counter is 32
 * bits: a difference modulo 2^32 is still right across one wrap. */
static double rate(uint64_t a, uint64_t b, double secs, int wraps32)
{
	if (a == DURQ_ACTIVITY_UNKNOWN || b == DURQ_ACTIVITY_UNKNOWN || secs <= 0)
		return -1;
	uint64_t d = wraps32 ? (uint32_t)(b - a) : b - a;
	return (double)d / secs;
}

static void top_line(cli *c, durq *db, const snapshot *a, const snapshot *b, int64_t wait)
{
	double secs = (double)(b->now - a->now) / 1000.0;
	int is_sqlite = !strncmp(durq_provider_of(db)->name, "sqlite", 6);
	double cps = rate(a->act.commits, b->act.commits, secs, is_sqlite);
	double rps = rate(a->act.rows_written, b->act.rows_written, secs, 0);
	const durq_queue_depths *d = &b->st.depths;
	char t[32], wal[32], cs[32] = "-", rs[32] = "-", rpc[32] = "-", w[32] = "-";
	cli_time(t, sizeof(t), b->now);
	cli_bytes(wal, sizeof(wal), b->st.wal_bytes);
	if (cps >= 0)
		snprintf(cs, sizeof(cs), "%.1f", cps);
	if (rps >= 0)
		snprintf(rs, sizeof(rs), "%.1f", rps);
	if (rps >= 0 && cps > 0)
		snprintf(rpc, sizeof(rpc), "%.1f", rps / cps);
	if (wait >= 0)
		cli_age(w, sizeof(w), wait);
	if (c->json) {
		json_t *j = json_pack("{s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				      "time_ms", (json_int_t)b->now, "commits_per_s",
				      cps >= 0 ? json_real(cps) : json_null(), "rows_per_s",
				      rps >= 0 ? json_real(rps) : json_null(), "work_ready",
				      (json_int_t)d->work_ready, "work_leased", (json_int_t)d->work_leased,
				      "work_delayed", (json_int_t)d->work_delayed, "orch_ready",
				      (json_int_t)d->orch_ready, "orch_leased", (json_int_t)d->orch_leased,
				      "dead_letters", (json_int_t)d->dead_letters, "oldest_wait_ms",
				      (json_int_t)wait, "wal_bytes", (json_int_t)b->st.wal_bytes,
				      "db_bytes", (json_int_t)b->st.db_bytes);
		json_dumpf(j, c->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', c->out);
		json_decref(j);
		return;
	}
	fprintf(c->out, "%-24s %10s %10s %8s %8lld %8lld %8lld %8lld %8lld %6lld %9s %10s\n", t,
		cs, rs, rpc, (long long)d->work_ready, (long long)d->work_leased,
		(long long)d->work_delayed, (long long)d->orch_ready, (long long)d->orch_leased,
		(long long)d->dead_letters, w, wal);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* top streams: each line is printed (and flushed) when its interval ends. */
static void flush_lines(cli *c)
{
	fflush(c->out);
	if (c->len) {
		fwrite(c->buf, 1, c->len, stdout);
		fflush(stdout);
		rewind(c->out);
		c->len = 0;
	}
}

int cli_top(cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"interval", required_argument, NULL, 'i'},
					     {"count", required_argument, NULL, 'n'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int64_t interval = 1000, count = -1;
	const char *url;
	durq *db;
	int rc;
	CLI_OPTS_BEGIN(c, argc, argv, "i:n:j", opts)
	case 'i':
		if ((rc = cli_int64(c, "--interval", optarg, 10, 3600000, &interval)) != 0)
			return rc;
		break;
	case 'n':
		if ((rc = cli_int64(c, "--count", optarg, 1, INT64_MAX, &count)) != 0)
			return rc;
		break;
	case 'j':
		c->json = 1;
		break;
	CLI_OPTS_END
	int i = optind;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	snapshot prev, cur;
	if ((rc = take(db, &prev)) < 0) {
		rc = cli_durq_fail(c, rc);
		durq_free(db);
		return rc;
	}
	if (!c->json)
		fprintf(c->out, "%-24s %10s %10s %8s %8s %8s %8s %8s %8s %6s %9s %10s\n", "TIME",
			"COMMITS/S", "ROWS/S", "ROWS/C", "W.READY", "W.LEASED", "W.DELAY",
			"O.READY", "O.LEASED", "DEAD", "MAX WAIT", "WAL");
	for (int64_t k = 0; count < 0 || k < count; k++) {
		flush_lines(c);
		sleep_ms(interval);
		if ((rc = take(db, &cur)) < 0)
			break;
		top_line(c, db, &prev, &cur, oldest_wait(db, cur.now));
		prev = cur;
	}
	durq_free(db);
	return rc < 0 ? cli_durq_fail(c, rc) : CLI_OK;
}
