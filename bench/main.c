/*
 * main.c — durq-bench: parse the flags, run the matrix of rows (provider x workload x mode x
 * concurrency, plus the queue rows at fixed levels of work in flight), print the tables and
 * the target checks, write JSON and the plot.
 *
 * Owns: the command line and the row loop. Does not own: measuring (wl_*.c, ceiling.c,
 * sq_baseline.c, pg_baseline.c) or formatting (report.c).
 */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LIST 16

typedef struct opts {
	int providers[MAX_LIST], np;
	int workloads[MAX_LIST], nw;
	int modes[MAX_LIST], nm;
	int workers[MAX_LIST], nwk;
	int disp[MAX_LIST], acts[MAX_LIST], nc;
	int levels[MAX_LIST], nlv;        /* --in-flight: async queue rows (none by default) */
	int lv_workloads[MAX_LIST], nlvwl; /* their workloads (default: queue ones of --workload) */
	int lv_workers[MAX_LIST], nlvw;   /* their threads (default: the --workers list) */
	long items, orch_items, if_items;
	double duration, orch_duration, if_duration;
	size_t payload;
	int sync, activity_ms, orch_in_flight, orch_async, no_sync_rows, quiet;
	long sync_latency_us;
	const char *json, *plot, *tmpdir;
	const char *pg_url;               /* --pg-url: NULL = start a throwaway server */
	int pg_no_analyze;                /* --pg-no-analyze */
} opts;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: durq-bench [options]\n"
		"  --provider LIST      sqlite-file,sqlite-memory,postgresql (default: the two sqlite)\n"
		"  --pg-url URL         postgresql rows: the server (postgresql://...; its user may\n"
		"                       CREATE DATABASE: one per row); default: a throwaway server\n"
		"                       started with scripts/pg-server.sh (or $DURQ_PG_SERVER_SCRIPT)\n"
		"                       and stopped at exit\n"
		"  --pg-no-analyze      postgresql rows: no ANALYZE after the prefill (default: durq's\n"
		"                       rows and the baselines both ANALYZE their prefilled table)\n"
		"  --workload LIST      queue,queue-produce,orchestration (default queue,orchestration)\n"
		"  --mode LIST          group,per-op,ceiling (default all three); on sqlite with\n"
		"                       --in-flight, 'ceiling' adds sqlite-batched (sqlite3 by hand,\n"
		"                       2 threads x 128 items/txn: issue #8's bar); on postgresql\n"
		"                       'ceiling' = the libpq baselines pg-naive,pg-batched (each\n"
		"                       also selectable by name); 'ack-fetch' = group commit with\n"
		"                       workers that ack and fetch in one durq_work_ack_fetch call\n"
		"                       (--in-flight queue rows only)\n"
		"  --workers LIST       queue workers, e.g. 1,2,4,8 (default)\n"
		"  --concurrency LIST   orchestration dispatchers/activity workers, e.g. 1/1,2/2,4/4,8/8\n"
		"  --items N            queue: items per row (default 20000); orchestration: orchestrations\n"
		"  --duration S         cap per row in seconds (queue: stop early if not drained)\n"
		"  --orch-items N       orchestration override of --items\n"
		"  --orch-duration S    orchestration override of --duration (default 5 when neither is set)\n"
		"  --payload BYTES      payload per item/message/event (default 256)\n"
		"  --sync FULL|NORMAL|OFF  options.synchronous (default FULL)\n"
		"  --sync-latency-us N  add N us to every xSync through a wrapper VFS (file rows)\n"
		"  --activity-ms MS     simulated activity work (default 10)\n"
		"  --orch-in-flight N   orchestrations kept in flight (default 20)\n"
		"  --orch-async         orchestration rows ack turns and activities asynchronously\n"
		"                       (durq_orch_ack_async, durq_work_ack_async; activity workers\n"
		"                       fetch up to 64 items at a time)\n"
		"  --in-flight LIST     queue workloads: also run rows with asynchronous acks at these\n"
		"                       levels of items fetched and not yet acked (all workers), e.g.\n"
		"                       1,8,64,256,1024; per-op mode is the control\n"
		"  --in-flight-workers LIST  threads of those rows (default: the --workers list)\n"
		"  --in-flight-workload LIST  queue,queue-produce: workloads of those rows (default:\n"
		"                       the queue workloads of --workload, else queue)\n"
		"  --in-flight-items N  items prefilled per async queue row (default 200000)\n"
		"  --in-flight-duration S  window of an async row (default --duration, else 3)\n"
		"  --no-sync-rows       skip the synchronous queue rows (fetch(1) -> ack per worker)\n"
		"  --tmpdir DIR         where per-row databases go (default $TMPDIR or /tmp)\n"
		"  --json FILE          write the rows as a JSON array\n"
		"  --plot FILE          write a PNG (gnuplot) of throughput vs concurrency\n"
		"  --quiet              no progress on stderr\n"
		"Latency: queue = fetch start -> ack returned OK; queue-produce = enqueue start ->\n"
		"ack returned OK; orchestration = start enqueue -> completing turn acked;\n"
		"ackp99 = the durq_work_ack call alone. Orchestration bound = A * 1000/activity_ms / 5.\n"
		"Async rows: latency = ack submit -> its callback (durable); ops/fsync = ops other\n"
		"than claims / xSync calls (WAL FULL: one per flushed commit, plus checkpoints).\n");
}

static int parse_list(const char *arg, int *out, int max, int (*one)(const char *, int *))
{
	char buf[512];
	int n = 0;
	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n >= max || one(tok, &out[n]) < 0) {
			fprintf(stderr, "durq-bench: bad list item '%s' in '%s'\n", tok, arg);
			return -1;
		}
		n++;
	}
	return n;
}

static int one_provider(const char *s, int *v)
{
	if (!strcmp(s, "sqlite-file") || !strcmp(s, "file"))
		*v = PROV_FILE;
	else if (!strcmp(s, "sqlite-memory") || !strcmp(s, "memory"))
		*v = PROV_MEMORY;
	else if (!strcmp(s, "postgresql") || !strcmp(s, "postgres") || !strcmp(s, "pg"))
		*v = PROV_PG;
	else
		return -1;
	return 0;
}

static int one_workload(const char *s, int *v)
{
	if (!strcmp(s, "queue"))
		*v = WL_QUEUE;
	else if (!strcmp(s, "queue-produce"))
		*v = WL_QUEUE_PRODUCE;
	else if (!strcmp(s, "orchestration") || !strcmp(s, "orch"))
		*v = WL_ORCH;
	else
		return -1;
	return 0;
}

static int one_mode(const char *s, int *v)
{
	if (!strcmp(s, "group"))
		*v = MODE_GROUP;
	else if (!strcmp(s, "per-op"))
		*v = MODE_PER_OP;
	else if (!strcmp(s, "ceiling"))
		*v = MODE_CEILING;
	else if (!strcmp(s, "pg-naive"))
		*v = MODE_PG_NAIVE;
	else if (!strcmp(s, "pg-batched"))
		*v = MODE_PG_BATCHED;
	else if (!strcmp(s, "sqlite-batched"))
		*v = MODE_SQ_BATCHED;
	else if (!strcmp(s, "ack-fetch"))
		*v = MODE_ACK_FETCH;
	else
		return -1;
	return 0;
}

static int one_int(const char *s, int *v)
{
	char *end;
	long x = strtol(s, &end, 10);
	if (*end || x < 1 || x > 1024)
		return -1;
	*v = (int)x;
	return 0;
}

static int one_level(const char *s, int *v)
{
	char *end;
	long x = strtol(s, &end, 10);
	if (*end || x < 1 || x > 1048576)
		return -1;
	*v = (int)x;
	return 0;
}

/* "D/A" packed as D * 10000 + A. */
static int one_conc(const char *s, int *v)
{
	int d, a;
	char tail;
	if (sscanf(s, "%d/%d%c", &d, &a, &tail) != 2 || d < 1 || a < 1 || d > 1024 || a > 1024)
		return -1;
	*v = d * 10000 + a;
	return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
	enum { O_PROVIDER = 256, O_WORKLOAD, O_MODE, O_WORKERS, O_CONC, O_ITEMS, O_DURATION,
	       O_OITEMS, O_ODURATION, O_PAYLOAD, O_SYNC, O_SYNCLAT, O_ACTMS, O_INFLIGHT,
	       O_OINFLIGHT, O_OASYNC, O_IFWORKERS, O_IFWORKLOAD, O_IFITEMS, O_IFDURATION, O_NOSYNC, O_TMPDIR, O_JSON,
	       O_PLOT, O_QUIET, O_HELP, O_PGURL, O_PGNOANALYZE };
	static const struct option lo[] = {
		{"provider", required_argument, 0, O_PROVIDER},
		{"workload", required_argument, 0, O_WORKLOAD},
		{"mode", required_argument, 0, O_MODE},
		{"workers", required_argument, 0, O_WORKERS},
		{"concurrency", required_argument, 0, O_CONC},
		{"items", required_argument, 0, O_ITEMS},
		{"duration", required_argument, 0, O_DURATION},
		{"orch-items", required_argument, 0, O_OITEMS},
		{"orch-duration", required_argument, 0, O_ODURATION},
		{"payload", required_argument, 0, O_PAYLOAD},
		{"sync", required_argument, 0, O_SYNC},
		{"sync-latency-us", required_argument, 0, O_SYNCLAT},
		{"activity-ms", required_argument, 0, O_ACTMS},
		{"in-flight", required_argument, 0, O_INFLIGHT},
		{"orch-in-flight", required_argument, 0, O_OINFLIGHT},
		{"orch-async", no_argument, 0, O_OASYNC},
		{"in-flight-workers", required_argument, 0, O_IFWORKERS},
		{"in-flight-workload", required_argument, 0, O_IFWORKLOAD},
		{"in-flight-items", required_argument, 0, O_IFITEMS},
		{"pg-url", required_argument, 0, O_PGURL},
		{"pg-no-analyze", no_argument, 0, O_PGNOANALYZE},
		{"in-flight-duration", required_argument, 0, O_IFDURATION},
		{"no-sync-rows", no_argument, 0, O_NOSYNC},
		{"tmpdir", required_argument, 0, O_TMPDIR},
		{"json", required_argument, 0, O_JSON},
		{"plot", required_argument, 0, O_PLOT},
		{"quiet", no_argument, 0, O_QUIET},
		{"help", no_argument, 0, O_HELP},
		{0, 0, 0, 0}};
	int c, conc[MAX_LIST];
	const char *t = getenv("TMPDIR");

	memset(o, 0, sizeof(*o));
	o->providers[0] = PROV_FILE, o->providers[1] = PROV_MEMORY, o->np = 2;
	o->workloads[0] = WL_QUEUE, o->workloads[1] = WL_ORCH, o->nw = 2;
	o->modes[0] = MODE_GROUP, o->modes[1] = MODE_PER_OP, o->modes[2] = MODE_CEILING, o->nm = 3;
	for (int i = 0; i < 4; i++)
		o->workers[i] = o->disp[i] = o->acts[i] = 1 << i;
	o->nwk = o->nc = 4;
	o->items = o->orch_items = -1;
	o->duration = o->orch_duration = -1;
	o->payload = 256;
	o->sync = DURQ_SYNC_FULL;
	o->activity_ms = 10;
	o->orch_in_flight = 20;
	o->if_items = 200000;
	o->if_duration = -1;
	o->tmpdir = t && *t ? t : "/tmp";

	while ((c = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		switch (c) {
		case O_PROVIDER:
			if ((o->np = parse_list(optarg, o->providers, MAX_LIST, one_provider)) <= 0)
				return -1;
			break;
		case O_WORKLOAD:
			if ((o->nw = parse_list(optarg, o->workloads, MAX_LIST, one_workload)) <= 0)
				return -1;
			break;
		case O_MODE:
			if ((o->nm = parse_list(optarg, o->modes, MAX_LIST, one_mode)) <= 0)
				return -1;
			break;
		case O_WORKERS:
			if ((o->nwk = parse_list(optarg, o->workers, MAX_LIST, one_int)) <= 0)
				return -1;
			break;
		case O_CONC:
			if ((o->nc = parse_list(optarg, conc, MAX_LIST, one_conc)) <= 0)
				return -1;
			for (int i = 0; i < o->nc; i++)
				o->disp[i] = conc[i] / 10000, o->acts[i] = conc[i] % 10000;
			break;
		case O_ITEMS:
			o->items = atol(optarg);
			break;
		case O_DURATION:
			o->duration = atof(optarg);
			break;
		case O_OITEMS:
			o->orch_items = atol(optarg);
			break;
		case O_ODURATION:
			o->orch_duration = atof(optarg);
			break;
		case O_PAYLOAD:
			o->payload = (size_t)atol(optarg);
			break;
		case O_SYNC:
			if (!strcasecmp(optarg, "FULL"))
				o->sync = DURQ_SYNC_FULL;
			else if (!strcasecmp(optarg, "NORMAL"))
				o->sync = DURQ_SYNC_NORMAL;
			else if (!strcasecmp(optarg, "OFF"))
				o->sync = DURQ_SYNC_OFF;
			else {
				fprintf(stderr, "durq-bench: --sync FULL|NORMAL|OFF\n");
				return -1;
			}
			break;
		case O_SYNCLAT:
			o->sync_latency_us = atol(optarg);
			break;
		case O_ACTMS:
			o->activity_ms = atoi(optarg);
			break;
		case O_INFLIGHT:
			if ((o->nlv = parse_list(optarg, o->levels, MAX_LIST, one_level)) <= 0)
				return -1;
			break;
		case O_OINFLIGHT:
			o->orch_in_flight = atoi(optarg);
			break;
		case O_OASYNC:
			o->orch_async = 1;
			break;
		case O_IFWORKERS:
			if ((o->nlvw = parse_list(optarg, o->lv_workers, MAX_LIST, one_int)) <= 0)
				return -1;
			break;
		case O_IFWORKLOAD:
			if ((o->nlvwl = parse_list(optarg, o->lv_workloads, MAX_LIST, one_workload)) <= 0)
				return -1;
			for (int i = 0; i < o->nlvwl; i++)
				if (o->lv_workloads[i] == WL_ORCH) {
					fprintf(stderr, "durq-bench: --in-flight-workload: queue or queue-produce\n");
					return -1;
				}
			break;
		case O_IFITEMS:
			o->if_items = atol(optarg);
			break;
		case O_IFDURATION:
			o->if_duration = atof(optarg);
			break;
		case O_NOSYNC:
			o->no_sync_rows = 1;
			break;
		case O_TMPDIR:
			o->tmpdir = optarg;
			break;
		case O_PGURL:
			o->pg_url = optarg;
			break;
		case O_PGNOANALYZE:
			o->pg_no_analyze = 1;
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case O_PLOT:
			o->plot = optarg;
			break;
		case 'q':
		case O_QUIET:
			o->quiet = 1;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "durq-bench: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->orch_in_flight < 1 || o->activity_ms < 0 || o->sync_latency_us < 0 ||
	    o->if_items < 1) {
		fprintf(stderr, "durq-bench: --orch-in-flight >= 1, --activity-ms >= 0, "
				"--sync-latency-us >= 0, --in-flight-items >= 1\n");
		return -1;
	}
	if (!o->nlvwl) { /* default: the queue workloads of --workload, else queue */
		for (int k = 0; k < o->nw; k++)
			if (o->workloads[k] != WL_ORCH)
				o->lv_workloads[o->nlvwl++] = o->workloads[k];
		if (!o->nlvwl)
			o->lv_workloads[o->nlvwl++] = WL_QUEUE;
	}
	if (!o->nlvw) {
		memcpy(o->lv_workers, o->workers, sizeof(o->workers));
		o->nlvw = o->nwk;
	}
	if (o->if_duration <= 0)
		o->if_duration = o->duration > 0 ? o->duration : 3;
	for (int i = 0; i < o->np; i++)
		if (o->providers[i] == PROV_PG && !bench_pg_available()) {
			fprintf(stderr, "durq-bench: --provider postgresql: this durq-bench was built "
					"without PostgreSQL support (DURQ_WITH_POSTGRES=OFF); reconfigure "
					"with -DDURQ_WITH_POSTGRES=ON (needs libpq-dev)\n");
			return -1;
		}
	return 0;
}

/* ---- the matrix --------------------------------------------------------------------- */

/* What every row shares. */
static void row_common(bench_row_cfg *c, const opts *o, int p, int w, int m, const char *vfs,
		       const char *mem_vfs, bench_pg *pg)
{
	c->provider = p;
	c->workload = w;
	c->mode = m;
	c->payload = o->payload;
	c->sync = o->sync;
	c->activity_ms = o->activity_ms;
	c->vfs = vfs;
	c->mem_vfs = mem_vfs;
	c->tmpdir = o->tmpdir;
	c->pg = p == PROV_PG ? pg : NULL;
	c->pg_analyze = p == PROV_PG && !o->pg_no_analyze;
	c->quiet = o->quiet;
}

/* The libpq baselines (postgresql, queue): fixed connections and work in flight; sized like
 * the async rows when there are some (they compare with those), else like the ceiling. */
static size_t add_pg_baseline(bench_row *rows, const opts *o, int m, bench_pg *pg)
{
	bench_row_cfg *c = &rows[0].cfg;
	row_common(c, o, PROV_PG, WL_QUEUE, m, NULL, NULL, pg);
	c->workers = BENCH_PG_BASE_WORKERS;
	c->in_flight = m == MODE_PG_BATCHED ? BENCH_PG_BASE_WORKERS * BENCH_PG_BATCH
					    : BENCH_PG_BASE_WORKERS;
	c->items = o->nlv ? o->if_items : o->items > 0 ? o->items : 20000;
	c->duration_s = o->nlv ? o->if_duration : o->duration > 0 ? o->duration : 0;
	return 1;
}

/* sqlite-batched (sqlite-file, sqlite-memory; queue): 2 threads x 128 items per transaction,
 * sized like the pg baselines (the async rows' items and window when there are some). */
static size_t add_sq_baseline(bench_row *rows, const opts *o, int p, const char *vfs,
			      const char *mem_vfs)
{
	bench_row_cfg *c = &rows[0].cfg;
	row_common(c, o, p, WL_QUEUE, MODE_SQ_BATCHED, vfs, mem_vfs, NULL);
	c->workers = BENCH_SQ_BASE_WORKERS;
	c->in_flight = BENCH_SQ_BASE_WORKERS * BENCH_SQ_BATCH;
	c->items = o->nlv ? o->if_items : o->items > 0 ? o->items : 20000;
	c->duration_s = o->nlv ? o->if_duration : o->duration > 0 ? o->duration : 0;
	return 1;
}

static int has_mode(const opts *o, int m)
{
	for (int i = 0; i < o->nm; i++)
		if (o->modes[i] == m)
			return 1;
	return 0;
}

/* Rows of one provider x workload x mode. Ceiling is one thread: once per provider (queue);
 * on sqlite with async rows it brings sqlite-batched along (unless that is selected by
 * name); on postgresql it stands for the two libpq baselines. Queue workloads: the
 * synchronous rows at each --workers level. */
static size_t add_rows(bench_row *rows, const opts *o, int p, int w, int m, const char *vfs,
		       const char *mem_vfs, bench_pg *pg)
{
	size_t n = 0;
	if (m == MODE_ACK_FETCH)
		return 0; /* async rows only (add_async_rows) */
	if (m == MODE_PG_NAIVE || m == MODE_PG_BATCHED)
		return p == PROV_PG && w == WL_QUEUE ? add_pg_baseline(rows, o, m, pg) : 0;
	if (m == MODE_SQ_BATCHED)
		return p != PROV_PG && w == WL_QUEUE ? add_sq_baseline(rows, o, p, vfs, mem_vfs) : 0;
	if (m == MODE_CEILING && p == PROV_PG) {
		if (w != WL_QUEUE)
			return 0;
		n = add_pg_baseline(rows, o, MODE_PG_NAIVE, pg);
		return n + add_pg_baseline(rows + n, o, MODE_PG_BATCHED, pg);
	}
	if (m == MODE_CEILING) {
		if (w != WL_QUEUE)
			return 0;
		row_common(&rows[n].cfg, o, p, w, m, vfs, mem_vfs, pg);
		rows[n].cfg.workers = rows[n].cfg.in_flight = 1;
		rows[n].cfg.items = o->items > 0 ? o->items : 20000;
		rows[n].cfg.duration_s = o->duration > 0 ? o->duration : 0;
		n++;
		if (o->nlv && !has_mode(o, MODE_SQ_BATCHED))
			n += add_sq_baseline(rows + n, o, p, vfs, mem_vfs);
		return n;
	}
	if (w == WL_ORCH) {
		int own = o->orch_items >= 0 || o->orch_duration >= 0;
		long it = own ? o->orch_items : o->items;
		double du = own ? o->orch_duration : o->duration;
		for (int li = 0; li < o->nc; li++, n++) {
			bench_row_cfg *c = &rows[n].cfg;
			row_common(c, o, p, w, m, vfs, mem_vfs, pg);
			c->dispatchers = o->disp[li];
			c->workers = o->acts[li];
			c->in_flight = o->orch_in_flight;
			c->orch_async = o->orch_async;
			c->items = it > 0 ? it : 0;
			c->duration_s = du > 0 ? du : 0;
			if (c->items <= 0 && c->duration_s <= 0)
				c->duration_s = 5;
		}
		return n;
	}
	for (int li = 0; !o->no_sync_rows && li < o->nwk; li++, n++) {
		bench_row_cfg *c = &rows[n].cfg;
		row_common(c, o, p, w, m, vfs, mem_vfs, pg);
		c->workers = c->in_flight = o->workers[li]; /* one item per worker */
		c->items = o->items > 0 ? o->items : 20000;
		c->duration_s = o->duration > 0 ? o->duration : 0;
	}
	return n;
}

/* The async rows of one provider x workload x mode: each --in-flight-workers x level. */
static size_t add_async_rows(bench_row *rows, const opts *o, int p, int w, int m,
			     const char *vfs, const char *mem_vfs, bench_pg *pg)
{
	size_t n = 0;
	if (m == MODE_ACK_FETCH && w != WL_QUEUE)
		return 0; /* its workers fetch what they ack: no producer, no orchestrations */
	for (int wi = 0; !bench_mode_is_baseline(m) && wi < o->nlvw; wi++)
		for (int li = 0; li < o->nlv; li++, n++) {
			bench_row_cfg *c = &rows[n].cfg;
			row_common(c, o, p, w, m, vfs, mem_vfs, pg);
			c->async = 1;
			c->workers = o->lv_workers[wi];
			c->in_flight = o->levels[li];
			c->items = o->if_items;
			c->duration_s = o->if_duration;
		}
	return n;
}

/* ---- target checks: printed under the table, measured figures only ---- */

static const bench_row *find(const bench_row *rows, size_t n, int p, int w, int m, int level)
{
	for (size_t i = 0; i < n; i++)
		if (!rows[i].skipped && !rows[i].cfg.async && rows[i].cfg.provider == p &&
		    rows[i].cfg.workload == w && rows[i].cfg.mode == m &&
		    (level < 0 || rows[i].cfg.workers == level))
			return &rows[i];
	return NULL;
}

/* An async row: workers = the threads of the checked rows. */
static const bench_row *find_async(const bench_row *rows, size_t n, int p, int w, int m,
				   int workers, int level)
{
	for (size_t i = 0; i < n; i++)
		if (!rows[i].skipped && rows[i].cfg.async && rows[i].cfg.provider == p &&
		    rows[i].cfg.workload == w && rows[i].cfg.mode == m &&
		    rows[i].cfg.workers == workers && rows[i].cfg.in_flight == level)
			return &rows[i];
	return NULL;
}

static double ratio(const bench_row *a, const bench_row *b)
{
	return a && b && b->throughput > 0 ? a->throughput / b->throughput : 0;
}

/* The targets at fixed work in flight: level hi (256 if run, else the highest), lo
 * (1 if run, else the lowest), for the file provider, queue workload. */
static void print_inflight_checks(const bench_row *rows, size_t n, const opts *o)
{
	int hi = 0, lo = 0, wk = o->lv_workers[0];
	for (int i = 0; i < o->nlv; i++) {
		if (o->levels[i] == 256 || (hi != 256 && o->levels[i] > hi))
			hi = o->levels[i];
		if (o->levels[i] == 1 || (lo != 1 && (!lo || o->levels[i] < lo)))
			lo = o->levels[i];
	}
	for (int i = 0; i < o->nlvw; i++)
		if (o->lv_workers[i] == 2)
			wk = 2;
	const bench_row *g = find_async(rows, n, PROV_FILE, WL_QUEUE, MODE_GROUP, wk, hi);
	const bench_row *p = find_async(rows, n, PROV_FILE, WL_QUEUE, MODE_PER_OP, wk, hi);
	const bench_row *c = find(rows, n, PROV_FILE, WL_QUEUE, MODE_CEILING, -1);
	const bench_row *sb = find(rows, n, PROV_FILE, WL_QUEUE, MODE_SQ_BATCHED, -1);
	if (g || p || c)
		printf("  async acks, queue sqlite-file, %d workers:\n", wk);
	if (g && p)
		printf("    in flight %d: group/per-op = %.1fx (target >= 20x; >= 50x with "
		       "--sync-latency-us 1000)\n", hi, ratio(g, p));
	if (g && c)
		printf("    in flight %d: group/ceiling = %.2fx (target >= 0.5x, stretch 0.8x)\n", hi,
		       ratio(g, c));
	if (g && sb)
		printf("    in flight %d: group/sqlite-batched = %.2fx (target >= 1x: the hand-batched "
		       "bar), %.1f vs %.1f cycles/s\n", hi, ratio(g, sb), g->throughput,
		       sb->throughput);
	if (g)
		printf("    in flight %d group: ops per fsync = %.1f (target >= 100); ack p99 %.3f ms "
		       "= %.2fx the mean commit %.3f ms (target <= 3x)\n", hi, g->ops_per_fsync,
		       g->p99_ms, g->commit_ms_mean > 0 ? g->p99_ms / g->commit_ms_mean : 0,
		       g->commit_ms_mean);
	for (int pv = 0; pv < 2; pv++) {
		const bench_row *g1 = find_async(rows, n, pv, WL_QUEUE, MODE_GROUP, wk, lo);
		const bench_row *p1 = find_async(rows, n, pv, WL_QUEUE, MODE_PER_OP, wk, lo);
		if (g1 && p1)
			printf("    %s in flight %d: group/per-op = %.2fx (target >= 0.9x)\n",
			       bench_provider_name(pv), lo, ratio(g1, p1));
	}
	for (int i = 0; i < o->nlv; i++) {
		if (o->levels[i] < 1024)
			continue;
		for (int pv = 0; pv < 2; pv++) {
			const bench_row *r = find_async(rows, n, pv, WL_QUEUE, MODE_GROUP, wk,
							o->levels[i]);
			if (r)
				printf("    %s group in flight %d: resident %.1f MiB (anonymous %.1f MiB; "
				       "target < 64 MiB plus payloads)\n", bench_provider_name(pv),
				       o->levels[i], r->rss_mib, r->rss_anon_mib);
		}
	}
	/* memory >= file at every level, per workload and mode */
	for (int w = 0; w < 2; w++)
		for (int m = 0; m < 2; m++) {
			int any = 0, ok = 1;
			char worst[128] = "";
			for (int i = 0; i < o->nlv; i++) {
				const bench_row *f = find_async(rows, n, PROV_FILE, w, m, wk, o->levels[i]);
				const bench_row *mem = find_async(rows, n, PROV_MEMORY, w, m, wk,
								  o->levels[i]);
				if (!f || !mem)
					continue;
				any = 1;
				if (mem->throughput < f->throughput) {
					ok = 0;
					snprintf(worst, sizeof(worst), " (at %d: memory %.1f < file %.1f)",
						 o->levels[i], mem->throughput, f->throughput);
				}
			}
			if (any)
				printf("    %s %s: sqlite-memory >= sqlite-file at every level: %s%s\n",
				       bench_workload_name(w), bench_mode_name(m), ok ? "yes" : "NO", worst);
		}
}

/* One ratio line if both rows ran. */
static void print_ratio(const char *what, const bench_row *a, const bench_row *b)
{
	if (a && b && b->throughput > 0)
		printf("    %s = %.2fx (%.1f vs %.1f cycles/s)\n", what, ratio(a, b), a->throughput,
		       b->throughput);
}

/* postgresql: durq group and per-op against each other and against the libpq baselines,
 * synchronous rows at the highest --workers, async rows at 256 in flight (else the highest
 * level) over 2 workers (else the first --in-flight-workers). */
static void print_pg_checks(const bench_row *rows, size_t n, const opts *o)
{
	const bench_row *naive = find(rows, n, PROV_PG, WL_QUEUE, MODE_PG_NAIVE, -1);
	const bench_row *batched = find(rows, n, PROV_PG, WL_QUEUE, MODE_PG_BATCHED, -1);
	int wmax = 0, hi = 0, wk = o->lv_workers[0];
	char what[160];
	for (int i = 0; i < o->nwk; i++)
		if (o->workers[i] > wmax)
			wmax = o->workers[i];
	for (int i = 0; i < o->nlv; i++)
		if (o->levels[i] == 256 || (hi != 256 && o->levels[i] > hi))
			hi = o->levels[i];
	for (int i = 0; i < o->nlvw; i++)
		if (o->lv_workers[i] == 2)
			wk = 2;
	const bench_row *g = find(rows, n, PROV_PG, WL_QUEUE, MODE_GROUP, wmax);
	const bench_row *p = find(rows, n, PROV_PG, WL_QUEUE, MODE_PER_OP, wmax);
	const bench_row *ag = find_async(rows, n, PROV_PG, WL_QUEUE, MODE_GROUP, wk, hi);
	const bench_row *ap = find_async(rows, n, PROV_PG, WL_QUEUE, MODE_PER_OP, wk, hi);
	const bench_row *af = find_async(rows, n, PROV_PG, WL_QUEUE, MODE_ACK_FETCH, wk, hi);
	if (!g && !p && !ag && !ap && !af && !naive && !batched)
		return;
	printf("  queue postgresql (baselines: pg-naive %d connections x 1 item/txn, pg-batched "
	       "%d x %d items/txn):\n", BENCH_PG_BASE_WORKERS, BENCH_PG_BASE_WORKERS, BENCH_PG_BATCH);
	snprintf(what, sizeof(what), "W=%d synchronous: group/per-op", wmax);
	print_ratio(what, g, p);
	snprintf(what, sizeof(what), "W=%d synchronous: group/pg-naive", wmax);
	print_ratio(what, g, naive);
	snprintf(what, sizeof(what), "in flight %d async, %d workers: group/per-op", hi, wk);
	print_ratio(what, ag, ap);
	snprintf(what, sizeof(what), "in flight %d async, %d workers: group/pg-naive", hi, wk);
	print_ratio(what, ag, naive);
	snprintf(what, sizeof(what), "in flight %d async, %d workers: group/pg-batched", hi, wk);
	print_ratio(what, ag, batched);
	snprintf(what, sizeof(what), "in flight %d, %d workers: ack-fetch/pg-batched", hi, wk);
	print_ratio(what, af, batched);
	snprintf(what, sizeof(what), "in flight %d, %d workers: ack-fetch/group", hi, wk);
	print_ratio(what, af, ag);
	if (batched && batched->machine_us_per_item > 0 &&
	    ((ag && ag->machine_us_per_item > 0) || (af && af->machine_us_per_item > 0)))
		printf("    in flight %d: CPU per item, whole machine (server included): group %.1f us, "
		       "ack-fetch %.1f us, pg-batched %.1f us (0 = no row)\n", hi,
		       ag ? ag->machine_us_per_item : 0, af ? af->machine_us_per_item : 0,
		       batched->machine_us_per_item);
	snprintf(what, sizeof(what), "in flight %d async, %d workers: per-op/pg-naive", hi, wk);
	print_ratio(what, ap, naive);
	print_ratio("pg-batched/pg-naive", batched, naive);
}

static void print_checks(const bench_row *rows, size_t n, const opts *o)
{
	int wmax = 0;
	for (int i = 0; i < o->nwk; i++)
		if (o->workers[i] > wmax)
			wmax = o->workers[i];
	printf("\nchecks (measured in this run):\n");
	const bench_row *g = find(rows, n, PROV_FILE, WL_QUEUE, MODE_GROUP, wmax);
	const bench_row *p = find(rows, n, PROV_FILE, WL_QUEUE, MODE_PER_OP, wmax);
	const bench_row *c = find(rows, n, PROV_FILE, WL_QUEUE, MODE_CEILING, -1);
	if (g && p && p->throughput > 0)
		printf("  queue sqlite-file W=%d: group/per-op = %.1fx (synchronous acks: at most W "
		       "ops per commit)\n", wmax, g->throughput / p->throughput);
	if (g && c && c->throughput > 0)
		printf("  queue sqlite-file W=%d: group/ceiling = %.2fx\n", wmax,
		       g->throughput / c->throughput);
	if (g && g->commit_ms_mean > 0)
		printf("  queue sqlite-file W=%d group: ack p99 %.3f ms vs mean commit %.3f ms = %.2fx; "
		       "cycle p99 %.3f ms\n",
		       wmax, g->ack_p99_ms, g->commit_ms_mean, g->ack_p99_ms / g->commit_ms_mean,
		       g->p99_ms);
	for (int w = 0; w < 3; w++) {
		for (int m = 0; m < 2; m++) {
			int ok = 1, any = 0;
			char worst[128] = "";
			for (size_t i = 0; i < n; i++) {
				const bench_row *f = &rows[i];
				if (f->skipped || f->cfg.async || f->cfg.provider != PROV_FILE ||
				    f->cfg.workload != w || f->cfg.mode != m)
					continue;
				const bench_row *mem = find(rows, n, PROV_MEMORY, w, m, f->cfg.workers);
				if (!mem)
					continue;
				any = 1;
				if (mem->throughput < f->throughput) {
					ok = 0;
					snprintf(worst, sizeof(worst), " (at %d: memory %.1f < file %.1f)",
						 f->cfg.workers, mem->throughput, f->throughput);
				}
			}
			if (any)
				printf("  %s %s: sqlite-memory >= sqlite-file at every level: %s%s\n",
				       bench_workload_name(w), bench_mode_name(m), ok ? "yes" : "NO", worst);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const bench_row *r = &rows[i];
		if (r->skipped || r->cfg.workload != WL_ORCH)
			continue;
		printf("  orchestration %s %s %d/%d: %.1f orch/s = %.1f%% of bound %.1f (target >= 95%%), "
		       "success %.2f%%\n",
		       bench_provider_name(r->cfg.provider), bench_mode_name(r->cfg.mode),
		       r->cfg.dispatchers, r->cfg.workers, r->throughput, r->pct_of_bound, r->bound,
		       100.0 * r->success_rate);
	}
	if (o->nlv)
		print_inflight_checks(rows, n, o);
	print_pg_checks(rows, n, o);
}

static void run_row(bench_row *r, size_t i, size_t n, int quiet)
{
	if (!quiet) {
		char conc[48];
		if (r->cfg.workload == WL_ORCH)
			snprintf(conc, sizeof(conc), "D/A=%d/%d", r->cfg.dispatchers, r->cfg.workers);
		else if (r->cfg.async)
			snprintf(conc, sizeof(conc), "W=%d in-flight=%d async", r->cfg.workers,
				 r->cfg.in_flight);
		else if (r->cfg.mode == MODE_PG_NAIVE || r->cfg.mode == MODE_PG_BATCHED ||
			 r->cfg.mode == MODE_SQ_BATCHED)
			snprintf(conc, sizeof(conc), "W=%d in-flight=%d", r->cfg.workers,
				 r->cfg.in_flight);
		else
			snprintf(conc, sizeof(conc), "W=%d", r->cfg.workers);
		fprintf(stderr, "[%zu/%zu] %s %s %s %s ...\n", i + 1, n,
			bench_provider_name(r->cfg.provider), bench_workload_name(r->cfg.workload),
			bench_mode_name(r->cfg.mode), conc);
	}
	if (r->cfg.mode == MODE_PG_NAIVE || r->cfg.mode == MODE_PG_BATCHED)
		bench_run_pg_baseline(r);
	else if (r->cfg.mode == MODE_SQ_BATCHED)
		bench_run_sq_baseline(r);
	else if (r->cfg.mode == MODE_CEILING)
		bench_run_ceiling(r);
	else if (r->cfg.workload == WL_ORCH)
		bench_run_orch(r);
	else if (r->cfg.async)
		bench_run_inflight(r);
	else
		bench_run_queue(r);
	if (!quiet)
		fprintf(stderr, "    -> %.1f %s, p99 %.3f ms, %ld failures%s%s\n", r->throughput,
			r->cfg.workload == WL_ORCH ? "orch/s" : "cycles/s", r->p99_ms, r->failures,
			r->first_error[0] ? ", first error: " : "", r->first_error);
}

int main(int argc, char **argv)
{
	opts o;
	char cmdline[2048] = "";
	size_t cl = 0;
	for (int i = 0; i < argc && cl < sizeof(cmdline) - 1; i++)
		cl += (size_t)snprintf(cmdline + cl, sizeof(cmdline) - cl, "%s%s", i ? " " : "", argv[i]);
	if (parse_args(argc, argv, &o) < 0)
		return 2;

	/* Every durq and ceiling database goes through a wrapper VFS that counts xSync: file
	 * rows through the slow one (delay --sync-latency-us, 0 = none), memory rows through
	 * the counting one (never delayed). */
	const char *vfs = bench_slowvfs_register(o.sync_latency_us);
	const char *mem_vfs = bench_countvfs_register();
	if (!vfs || !mem_vfs) {
		fprintf(stderr, "durq-bench: cannot register the bench's VFS wrappers\n");
		return 1;
	}

	size_t per = (size_t)(o.nwk > o.nc ? o.nwk : o.nc) + 1, n = 0;
	size_t cap = (size_t)o.np * o.nm * (o.nw * per + (size_t)o.nlvwl * o.nlv * o.nlvw);
	bench_row *rows = calloc(cap, sizeof(*rows));
	if (!rows)
		return 1;

	/* postgresql rows: one server for the run (ours is stopped at exit, whatever happens) */
	bench_pg *pg = NULL;
	for (int pi = 0; pi < o.np; pi++)
		if (o.providers[pi] == PROV_PG && !pg && bench_pg_start(&pg, o.pg_url, o.quiet) < 0) {
			free(rows);
			return 1;
		}
	for (int pi = 0; pi < o.np; pi++) {
		for (int wi = 0; wi < o.nw; wi++)
			for (int mi = 0; mi < o.nm; mi++) {
				if (o.modes[mi] == MODE_CEILING && o.workloads[wi] != WL_QUEUE &&
				    pi == 0 && !o.quiet)
					fprintf(stderr, "durq-bench: ceiling mode is defined for the queue "
						"workload only; skipping %s\n",
						bench_workload_name(o.workloads[wi]));
				n += add_rows(rows + n, &o, o.providers[pi], o.workloads[wi], o.modes[mi],
					      vfs, mem_vfs, pg);
			}
		for (int wi = 0; o.nlv && wi < o.nlvwl; wi++)
			for (int mi = 0; mi < o.nm; mi++)
				n += add_async_rows(rows + n, &o, o.providers[pi], o.lv_workloads[wi],
						    o.modes[mi], vfs, mem_vfs, pg);
	}

	for (size_t i = 0; i < n; i++)
		run_row(&rows[i], i, n, o.quiet);

	printf("durq-bench %s  sync=%s payload=%zu activity_ms=%d orch_in_flight=%d sync_latency_us=%ld\n",
	       DURQ_VERSION_STRING,
	       o.sync == DURQ_SYNC_FULL ? "FULL" : o.sync == DURQ_SYNC_NORMAL ? "NORMAL" : "OFF",
	       o.payload, o.activity_ms, o.orch_in_flight, o.sync_latency_us);
	if (pg) {
		char desc[256];
		bench_pg_describe(pg, desc, sizeof(desc));
		printf("postgresql: %s; a fresh database per row\n", desc);
	}
	bench_print_header();
	for (size_t i = 0; i < n; i++)
		if (!rows[i].cfg.async)
			bench_print_row(&rows[i]);
	if (o.nlv) {
		printf("\nasynchronous acks at fixed work in flight (latency = ack submit -> durable; "
		       "baselines repeated for reference: ceiling, sqlite-batched, pg)\n");
		bench_print_inflight_header();
		for (size_t i = 0; i < n; i++)
			if (rows[i].cfg.async ||
			    (bench_mode_is_baseline(rows[i].cfg.mode) && !rows[i].skipped))
				bench_print_inflight_row(&rows[i]);
	}
	print_checks(rows, n, &o);
	fflush(stdout);

	int rc = 0;
	if (o.json && bench_write_json(o.json, rows, n, cmdline) < 0)
		rc = 1;
	if (o.plot && bench_write_plot(o.plot, rows, n) < 0)
		rc = 1;
	free(rows);
	bench_pg_stop(pg);
	return rc;
}
