/*
 * cli_stats.c — `durq stats`, `durq queues`, `durq top`: the database as a whole, depth
 * per queue, and a line per interval of database-wide activity (commits of every process,
 * not this command's own handle, whose counters would only show the command itself), with
 * the counters every process's handles published (durq_handle_stats_list: ops/s,
 * commits/s, ops per commit, p99 commit and ack latency, pool waits), per process and in
 * total. Rates of a process come from its own two latest publications and their times.
 */
#include <inttypes.h>
#include <stdlib.h>
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

static void stats_json(cli *c, durq *db, const snapshot *s, json_t *processes)
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
	if (processes)
		json_object_set_new(j, "processes", processes);
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

/* ---- what the processes published ------------------------------------------------- */

static double ms_of(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* "12.5 ms", or "-" without samples. */
static void p99_text(char *buf, size_t n, const durq_latency *l)
{
	uint64_t ns = durq_latency_quantile_ns(l, 0.99);
	if (!ns)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.1f ms", ms_of(ns));
}

static json_t *p99_json(const durq_latency *l)
{
	uint64_t ns = durq_latency_quantile_ns(l, 0.99);
	return ns ? json_real(ms_of(ns)) : json_null();
}

static void proc_label(char *buf, size_t n, const durq_handle_stats *h)
{
	snprintf(buf, n, "%lld@%s", (long long)h->pid, h->host);
}

/* b - a, bucket by bucket (counters only grow: a restarted handle has a new key) */
static void latency_diff(durq_latency *out, const durq_latency *a, const durq_latency *b)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < DURQ_LATENCY_BUCKETS; i++) {
		out->buckets[i] = b->buckets[i] >= a->buckets[i] ? b->buckets[i] - a->buckets[i] : 0;
		out->count += out->buckets[i];
	}
}

static void latency_add_to(durq_latency *sum, const durq_latency *l)
{
	for (int i = 0; i < DURQ_LATENCY_BUCKETS; i++)
		sum->buckets[i] += l->buckets[i];
	sum->count += l->count;
}

static uint64_t grew(uint64_t a, uint64_t b)
{
	return b >= a ? b - a : 0;
}

static int processes_json(json_t *arr, const durq_handle_stats *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const durq_handle_stats *h = &v[i];
		json_t *j = json_pack(
			"{s:s, s:I, s:s, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I, "
			"s:f, s:I}", "key", h->key, "pid", (json_int_t)h->pid, "host", h->host,
			"started_ms", (json_int_t)h->started_ms, "updated_ms",
			(json_int_t)h->updated_ms, "interval_ms", (json_int_t)h->interval_ms, "fresh",
			h->fresh, "ops", (json_int_t)h->ops, "op_failures", (json_int_t)h->op_failures,
			"transactions", (json_int_t)h->transactions, "txn_ops", (json_int_t)h->txn_ops,
			"ops_per_commit", h->transactions ? json_real((double)h->txn_ops /
								     (double)h->transactions)
							  : json_null(),
			"p99_commit_ms", p99_json(&h->commit_latency), "p99_ack_ms",
			p99_json(&h->ack_latency), "pool_waits", (json_int_t)h->pool_waits,
			"pool_wait_ms", ms_of(h->pool_wait_ns), "busy_retries",
			(json_int_t)h->busy_retries);
		if (!j || json_array_append_new(arr, j) < 0)
			return -1;
	}
	return 0;
}

/* `stats --processes`: each fresh handle's counters since it opened. */
static void processes_text(cli *c, const durq_handle_stats *v, size_t n)
{
	size_t stale = 0;
	FILE *f = c->out;
	fprintf(f, "\n%-28s %-24s %10s %10s %8s %11s %10s %10s\n", "PROCESS", "STARTED", "OPS",
		"COMMITS", "OPS/C", "P99 COMMIT", "P99 ACK", "POOL WAITS");
	for (size_t i = 0; i < n; i++) {
		const durq_handle_stats *h = &v[i];
		if (!h->fresh) {
			stale++;
			continue;
		}
		char who[300], started[32], opc[32] = "-", pc[32], pa[32];
		proc_label(who, sizeof(who), h);
		cli_time(started, sizeof(started), h->started_ms);
		if (h->transactions)
			snprintf(opc, sizeof(opc), "%.1f", (double)h->txn_ops / (double)h->transactions);
		p99_text(pc, sizeof(pc), &h->commit_latency);
		p99_text(pa, sizeof(pa), &h->ack_latency);
		fprintf(f, "%-28.28s %-24s %10llu %10llu %8s %11s %10s %10llu\n", who, started,
			(unsigned long long)h->ops, (unsigned long long)h->transactions, opc, pc, pa,
			(unsigned long long)h->pool_waits);
	}
	if (stale)
		fprintf(f, "(%zu more not updated for 3 of their intervals, at least 3 s: stopped "
			"writing, or gone)\n", stale);
}

int cli_stats(cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"processes", no_argument, NULL, 'p'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *url;
	durq *db;
	snapshot s;
	int procs = 0, rc;
	CLI_OPTS_BEGIN(c, argc, argv, "pj", opts)
	case 'p':
		procs = 1;
		break;
	case 'j':
		c->json = 1;
		break;
	CLI_OPTS_END
	int i = optind;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	durq_handle_stats *hs = NULL;
	size_t nhs = 0;
	if ((rc = take(db, &s)) < 0 || (procs && (rc = durq_handle_stats_list(db, &hs, &nhs)) < 0)) {
		rc = cli_durq_fail(c, rc);
	} else if (c->json) {
		json_t *arr = procs ? json_array() : NULL;
		if (arr && processes_json(arr, hs, nhs) < 0) {
			json_decref(arr);
			rc = cli_fail(c, CLI_EFAIL, "DURQ_ENOMEM: out of memory");
		} else {
			stats_json(c, db, &s, arr);
			rc = CLI_OK;
		}
	} else {
		stats_text(c, db, &s);
		if (procs)
			processes_text(c, hs, nhs);
		rc = CLI_OK;
	}
	durq_handle_stats_free(hs);
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

/* One process in top: its latest publication, the one before it, and the rates between
 * them (kept while no newer one comes: a process publishes once per its interval). */
typedef struct proc {
	durq_handle_stats last, base;
	int have;                   /* rates below are set */
	int seen;
	double ops_s, commits_s, waits_s;
	uint64_t d_txns, d_txn_ops;
	durq_latency d_commit, d_ack;
} proc;

typedef struct procs {
	proc *v;
	size_t n, cap;
} procs;

static void proc_rates(proc *p)
{
	const durq_handle_stats *a = &p->base, *b = &p->last;
	double secs = (double)(b->updated_ms - a->updated_ms) / 1000.0;
	if (secs <= 0)
		return;
	p->have = 1;
	p->ops_s = (double)grew(a->ops, b->ops) / secs;
	p->d_txns = grew(a->transactions, b->transactions);
	p->d_txn_ops = grew(a->txn_ops, b->txn_ops);
	p->commits_s = (double)p->d_txns / secs;
	p->waits_s = (double)grew(a->pool_waits, b->pool_waits) / secs;
	latency_diff(&p->d_commit, &a->commit_latency, &b->commit_latency);
	latency_diff(&p->d_ack, &a->ack_latency, &b->ack_latency);
}

/* Fold a new read of the table in: fresh rows only; processes gone or stale drop out.
 * A provider without the table (DURQ_EINVAL) shows no processes. */
static int procs_sample(durq *db, procs *ps)
{
	durq_handle_stats *v;
	size_t n;
	int rc = durq_handle_stats_list(db, &v, &n);
	if (rc == DURQ_EINVAL)
		return DURQ_OK;
	if (rc < 0)
		return rc;
	for (size_t k = 0; k < ps->n; k++)
		ps->v[k].seen = 0;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].fresh)
			continue;
		size_t k = 0;
		while (k < ps->n && strcmp(ps->v[k].last.key, v[i].key))
			k++;
		if (k == ps->n) {
			if (ps->n == ps->cap) {
				size_t cap = ps->cap ? 2 * ps->cap : 8;
				proc *nv = realloc(ps->v, cap * sizeof(*nv));
				if (!nv) {
					durq_handle_stats_free(v);
					return durq_error_set(DURQ_ENOMEM, "out of memory");
				}
				ps->v = nv;
				ps->cap = cap;
			}
			ps->v[ps->n++] = (proc){.last = v[i]};
		} else if (v[i].updated_ms != ps->v[k].last.updated_ms) {
			ps->v[k].base = ps->v[k].last;
			ps->v[k].last = v[i];
			proc_rates(&ps->v[k]);
		}
		ps->v[k].seen = 1;
	}
	size_t keep = 0;
	for (size_t k = 0; k < ps->n; k++)
		if (ps->v[k].seen)
			ps->v[keep++] = ps->v[k];
	ps->n = keep;
	durq_handle_stats_free(v);
	return DURQ_OK;
}

/* What a line shows for one process or the total. */
typedef struct proc_view {
	int have;
	double ops_s, commits_s, waits_s, opc; /* opc < 0: no commit */
	durq_latency d_commit, d_ack;
} proc_view;

static proc_view view_of(const proc *p)
{
	proc_view w = {.have = p->have, .ops_s = p->ops_s, .commits_s = p->commits_s,
		       .waits_s = p->waits_s, .d_commit = p->d_commit, .d_ack = p->d_ack};
	w.opc = p->d_txns ? (double)p->d_txn_ops / (double)p->d_txns : -1;
	return w;
}

static proc_view total_of(const procs *ps)
{
	proc_view w = {0};
	uint64_t txns = 0, txn_ops = 0;
	for (size_t k = 0; k < ps->n; k++) {
		const proc *p = &ps->v[k];
		if (!p->have)
			continue;
		w.have = 1;
		w.ops_s += p->ops_s;
		w.commits_s += p->commits_s;
		w.waits_s += p->waits_s;
		txns += p->d_txns;
		txn_ops += p->d_txn_ops;
		latency_add_to(&w.d_commit, &p->d_commit);
		latency_add_to(&w.d_ack, &p->d_ack);
	}
	w.opc = txns ? (double)txn_ops / (double)txns : -1;
	return w;
}

static json_t *view_json(const proc_view *w, json_t *j)
{
	json_object_set_new(j, "ops_per_s", w->have ? json_real(w->ops_s) : json_null());
	json_object_set_new(j, "commits_per_s", w->have ? json_real(w->commits_s) : json_null());
	json_object_set_new(j, "ops_per_commit", w->have && w->opc >= 0 ? json_real(w->opc)
									 : json_null());
	json_object_set_new(j, "p99_commit_ms", w->have ? p99_json(&w->d_commit) : json_null());
	json_object_set_new(j, "p99_ack_ms", w->have ? p99_json(&w->d_ack) : json_null());
	json_object_set_new(j, "pool_waits_per_s", w->have ? json_real(w->waits_s) : json_null());
	return j;
}

static void view_text(FILE *f, const char *label, const proc_view *w)
{
	char ops[32] = "-", cps[32] = "-", opc[32] = "-", pc[32] = "-", pa[32] = "-", pw[32] = "-";
	if (w->have) {
		snprintf(ops, sizeof(ops), "%.1f", w->ops_s);
		snprintf(cps, sizeof(cps), "%.1f", w->commits_s);
		if (w->opc >= 0)
			snprintf(opc, sizeof(opc), "%.1f", w->opc);
		p99_text(pc, sizeof(pc), &w->d_commit);
		p99_text(pa, sizeof(pa), &w->d_ack);
		snprintf(pw, sizeof(pw), "%.1f", w->waits_s);
	}
	fprintf(f, "  %-28.28s %10s %10s %8s %11s %10s %13s\n", label, ops, cps, opc, pc, pa, pw);
}

/* The processes' block under a top line (text), or their JSON members. */
static void procs_text(cli *c, const procs *ps)
{
	if (!ps->n)
		return;
	char all[32], who[300];
	fprintf(c->out, "  %-28s %10s %10s %8s %11s %10s %13s\n", "PROCESS", "OPS/S",
		"COMMITS/S", "OPS/C", "P99 COMMIT", "P99 ACK", "POOL WAITS/S");
	proc_view t = total_of(ps);
	snprintf(all, sizeof(all), "all (%zu)", ps->n);
	view_text(c->out, all, &t);
	for (size_t k = 0; k < ps->n; k++) {
		proc_view w = view_of(&ps->v[k]);
		proc_label(who, sizeof(who), &ps->v[k].last);
		view_text(c->out, who, &w);
	}
}

static void procs_json(json_t *j, const procs *ps)
{
	json_t *arr = json_array();
	for (size_t k = 0; k < ps->n; k++) {
		const durq_handle_stats *h = &ps->v[k].last;
		proc_view w = view_of(&ps->v[k]);
		json_t *o = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I}", "key", h->key, "pid",
				      (json_int_t)h->pid, "host", h->host, "started_ms",
				      (json_int_t)h->started_ms, "updated_ms",
				      (json_int_t)h->updated_ms, "ops", (json_int_t)h->ops,
				      "transactions", (json_int_t)h->transactions);
		json_array_append_new(arr, view_json(&w, o));
	}
	proc_view t = total_of(ps);
	json_t *tot = json_pack("{s:I}", "processes", (json_int_t)ps->n);
	json_object_set_new(j, "totals", view_json(&t, tot));
	json_object_set_new(j, "processes", arr);
}

static void top_line(cli *c, durq *db, const snapshot *a, const snapshot *b, int64_t wait,
		     const procs *ps)
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
		procs_json(j, ps);
		json_dumpf(j, c->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', c->out);
		json_decref(j);
		return;
	}
	fprintf(c->out, "%-24s %10s %10s %8s %8lld %8lld %8lld %8lld %8lld %6lld %9s %10s\n", t,
		cs, rs, rpc, (long long)d->work_ready, (long long)d->work_leased,
		(long long)d->work_delayed, (long long)d->orch_ready, (long long)d->orch_leased,
		(long long)d->dead_letters, w, wal);
	procs_text(c, ps);
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
	procs ps = {0};
	if ((rc = take(db, &prev)) < 0 || (rc = procs_sample(db, &ps)) < 0) {
		rc = cli_durq_fail(c, rc);
		free(ps.v);
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
		if ((rc = take(db, &cur)) < 0 || (rc = procs_sample(db, &ps)) < 0)
			break;
		top_line(c, db, &prev, &cur, oldest_wait(db, cur.now), &ps);
		prev = cur;
	}
	free(ps.v);
	durq_free(db);
	return rc < 0 ? cli_durq_fail(c, rc) : CLI_OK;
}
