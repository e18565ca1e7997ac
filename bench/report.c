/*
 * report.c — output of durq-bench: the aligned table, the target checks, the JSON file and
 * the PNG plot (a gnuplot script written next to the PNG, then run with gnuplot).
 *
 * Owns: formatting only. Does not own: measuring.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const char *bench_provider_name(int p)
{
	return p == PROV_PG ? "postgresql" : p == PROV_MEMORY ? "sqlite-memory" : "sqlite-file";
}

const char *bench_workload_name(int w)
{
	return w == WL_ORCH ? "orchestration" : w == WL_QUEUE_PRODUCE ? "queue-produce" : "queue";
}

const char *bench_mode_name(int m)
{
	static const char *const names[BENCH_NMODES] = {"group",    "per-op",     "ceiling",
							"pg-naive", "pg-batched", "sqlite-batched",
							"ack-fetch"};
	return m >= 0 && m < BENCH_NMODES ? names[m] : "?";
}

static void conc_str(const bench_row *r, char *buf, size_t len)
{
	if (r->cfg.workload == WL_ORCH)
		snprintf(buf, len, "%d/%d", r->cfg.dispatchers, r->cfg.workers);
	else
		snprintf(buf, len, "%d", r->cfg.workers);
}

void bench_print_header(void)
{
	printf("%-13s %-13s %-14s %5s %7s %10s %-6s %8s %8s %8s %8s %7s %5s %11s %7s %8s %8s %9s %7s %6s\n",
	       "provider", "workload", "mode", "conc", "done", "throughput", "unit", "act/s",
	       "p50_ms", "p99_ms", "ackp99ms", "ok%", "fail", "busy(h/s)", "ops/txn", "txn/item",
	       "cpu/1k_s", "commit_ms", "bound", "%bound");
}

void bench_print_row(const bench_row *r)
{
	char conc[32], busy[32], act[32], bound[32], pct[32];
	conc_str(r, conc, sizeof(conc));
	if (r->skipped) {
		printf("%-13s %-13s %-14s %5s  (skipped: %s)\n", bench_provider_name(r->cfg.provider),
		       bench_workload_name(r->cfg.workload), bench_mode_name(r->cfg.mode), conc,
		       r->note);
		return;
	}
	snprintf(busy, sizeof(busy), "%llu/%llu", (unsigned long long)r->busy_retries,
		 (unsigned long long)r->busy_surfaced);
	int orch = r->cfg.workload == WL_ORCH;
	snprintf(act, sizeof(act), orch ? "%.1f" : "-", r->act_throughput);
	snprintf(bound, sizeof(bound), orch ? "%.1f" : "-", r->bound);
	snprintf(pct, sizeof(pct), orch ? "%.1f" : "-", r->pct_of_bound);
	printf("%-13s %-13s %-14s %5s %7ld %10.1f %-6s %8s %8.3f %8.3f %8.3f %7.2f %5ld %11s %7.2f %8.3f %8.3f %9.3f %7s %6s\n",
	       bench_provider_name(r->cfg.provider), bench_workload_name(r->cfg.workload),
	       bench_mode_name(r->cfg.mode), conc, r->items_done, r->throughput,
	       orch ? "orch/s" : "cyc/s", act, r->p50_ms, r->p99_ms, r->ack_p99_ms,
	       100.0 * r->success_rate, r->failures, busy, r->ops_per_txn, r->txn_per_item,
	       r->cpu_s_per_1k, r->commit_ms_mean, bound, pct);
	if (r->first_error[0])
		printf("    first error: %s\n", r->first_error);
}

void bench_print_inflight_header(void)
{
	printf("%-13s %-13s %-14s %4s %6s %8s %10s %8s %8s %8s %7s %7s %7s %9s %7s %8s %7s %8s %5s %9s\n",
	       "provider", "workload", "mode", "W", "inflt", "done", "cycles/s", "p50_ms",
	       "p99_ms", "e2e_p99", "ops/txn", "xsyncs", "flushes", "ops/fsync", "commit", "cpu/1k_s",
	       "rss_MiB", "anon_MiB", "fail", "busy(h/s)");
}

void bench_print_inflight_row(const bench_row *r)
{
	char busy[32], e2e[32], inflt[32], rss[32], anon[32];
	int ceiling = r->cfg.mode == MODE_CEILING, base = bench_mode_is_baseline(r->cfg.mode);
	int pg = r->cfg.provider == PROV_PG;
	char xs[32], fl[32], opf[32];
	if (r->skipped) {
		printf("%-13s %-13s %-14s %4d %6d  (skipped: %s)\n", bench_provider_name(r->cfg.provider),
		       bench_workload_name(r->cfg.workload), bench_mode_name(r->cfg.mode),
		       r->cfg.workers, r->cfg.in_flight, r->note);
		return;
	}
	/* sqlite-batched: its threads' busy-handler waits / SQLITE_BUSY retried */
	snprintf(busy, sizeof(busy), base && r->cfg.mode != MODE_SQ_BATCHED ? "-" : "%llu/%llu",
		 (unsigned long long)r->busy_retries, (unsigned long long)r->busy_surfaced);
	snprintf(e2e, sizeof(e2e), r->cfg.workload == WL_QUEUE_PRODUCE ? "%.3f" : "-",
		 r->e2e_p99_ms);
	/* the ceiling has no in-flight level: 1,000 items per transaction, one thread */
	snprintf(inflt, sizeof(inflt), ceiling ? "(txn)" : "%d", r->cfg.in_flight);
	snprintf(rss, sizeof(rss), base ? "-" : "%.1f", r->rss_mib);
	snprintf(anon, sizeof(anon), base ? "-" : "%.1f", r->rss_anon_mib);
	/* xSync counts come from the bench's SQLite VFS: none on postgresql */
	snprintf(xs, sizeof(xs), pg ? "-" : "%llu", (unsigned long long)r->fsyncs);
	snprintf(fl, sizeof(fl), pg ? "-" : "%llu", (unsigned long long)r->flushed_commits);
	snprintf(opf, sizeof(opf), pg ? "-" : "%.1f", r->ops_per_fsync);
	printf("%-13s %-13s %-14s %4d %6s %8ld %10.1f %8.3f %8.3f %8s %7.2f %7s %7s %9s %7.3f %8.3f %7s %8s %5ld %9s\n",
	       bench_provider_name(r->cfg.provider), bench_workload_name(r->cfg.workload),
	       bench_mode_name(r->cfg.mode), r->cfg.workers, inflt, r->items_done, r->throughput,
	       r->p50_ms, r->p99_ms, e2e, r->ops_per_txn, xs, fl, opf, r->commit_ms_mean,
	       r->cpu_s_per_1k, rss, anon, r->failures, busy);
	if (r->note[0] && !ceiling)
		printf("    note: %s\n", r->note);
	if (r->first_error[0])
		printf("    first error: %s\n", r->first_error);
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *sync_name(int s)
{
	return s == DURQ_SYNC_OFF ? "OFF" : s == DURQ_SYNC_NORMAL ? "NORMAL" : s == DURQ_SYNC_FULL ? "FULL" : "DEFAULT";
}

int bench_write_json(const char *path, const bench_row *rows, size_t n, const char *cmdline)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "[\n");
	for (size_t i = 0; i < n; i++) {
		const bench_row *r = &rows[i];
		char conc[32];
		conc_str(r, conc, sizeof(conc));
		fprintf(f, "  {\"provider\": \"%s\", \"workload\": \"%s\", \"mode\": \"%s\", ",
			bench_provider_name(r->cfg.provider), bench_workload_name(r->cfg.workload),
			bench_mode_name(r->cfg.mode));
		fprintf(f, "\"workers\": %d, \"dispatchers\": %d, \"concurrency\": \"%s\", ",
			r->cfg.workers, r->cfg.dispatchers, conc);
		fprintf(f, "\"items\": %ld, \"activities\": %ld, \"items_target\": %ld, "
			   "\"duration_target_s\": %.3f, \"elapsed_s\": %.6f, ",
			r->items_done, r->activities_done, r->cfg.items, r->cfg.duration_s,
			r->elapsed_s);
		fprintf(f, "\"throughput\": %.3f, \"throughput_unit\": \"%s\", \"act_throughput\": %.3f, ",
			r->throughput, r->cfg.workload == WL_ORCH ? "orch/s" : "cycles/s",
			r->act_throughput);
		fprintf(f, "\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"ack_p50_ms\": %.4f, \"ack_p99_ms\": %.4f, "
			   "\"fetch_p50_ms\": %.4f, \"fetch_p99_ms\": %.4f, ",
			r->p50_ms, r->p99_ms, r->ack_p50_ms, r->ack_p99_ms, r->fetch_p50_ms,
			r->fetch_p99_ms);
		fprintf(f, "\"success_rate\": %.6f, \"failures\": %ld, \"busy_retries\": %llu, "
			   "\"busy_surfaced\": %llu, ",
			r->success_rate, r->failures, (unsigned long long)r->busy_retries,
			(unsigned long long)r->busy_surfaced);
		fprintf(f, "\"transactions\": %llu, \"ops_per_txn\": %.3f, \"txn_per_item\": %.4f, "
			   "\"cpu_s_per_1k\": %.4f, \"machine_us_per_item\": %.2f, "
			   "\"commit_ms_mean\": %.4f, ",
			(unsigned long long)r->transactions, r->ops_per_txn, r->txn_per_item,
			r->cpu_s_per_1k, r->machine_us_per_item, r->commit_ms_mean);
		fprintf(f, "\"commit_ms\": %.4f, \"fsyncs\": %llu, \"db_fsyncs\": %llu, "
			   "\"flushed_commits\": %llu, \"flushed_ops\": %llu, \"ops_per_fsync\": %.3f, ",
			r->commit_ms_mean, (unsigned long long)r->fsyncs, (unsigned long long)r->db_fsyncs,
			(unsigned long long)r->flushed_commits,
			(unsigned long long)r->flushed_ops, r->ops_per_fsync);
		fprintf(f, "\"async\": %s, \"workers_run\": %d, \"e2e_p50_ms\": %.4f, "
			   "\"e2e_p99_ms\": %.4f, \"rss_mib\": %.2f, \"rss_anon_mib\": %.2f, ",
			r->cfg.async ? "true" : "false", r->cfg.async ? r->workers_run : r->cfg.workers,
			r->e2e_p50_ms, r->e2e_p99_ms, r->rss_mib, r->rss_anon_mib);
		fprintf(f, "\"bound\": %.3f, \"pct_of_bound\": %.2f, ", r->bound, r->pct_of_bound);
		fprintf(f, "\"sync\": \"%s\", \"payload\": %zu, \"activity_ms\": %d, \"in_flight\": %d, "
			   "\"vfs\": ",
			sync_name(r->cfg.sync), r->cfg.payload, r->cfg.activity_ms, r->cfg.in_flight);
		const char *vfs = r->cfg.provider == PROV_FILE	  ? r->cfg.vfs
				  : r->cfg.provider == PROV_MEMORY ? r->cfg.mem_vfs
								   : NULL;
		json_str(f, vfs ? vfs : "");
		fprintf(f, ", \"skipped\": %s, \"note\": ", r->skipped ? "true" : "false");
		json_str(f, r->note);
		fprintf(f, ", \"error\": ");
		json_str(f, r->first_error);
		fprintf(f, ", \"command\": ");
		json_str(f, cmdline);
		fprintf(f, "}%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, "]\n");
	if (fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* ---- plot ---- */

/* One panel per (workload, async): x = workers (sync queue rows), dispatchers (= activity
 * workers in the default matrix; orchestration) or items in flight (async rows). */
typedef struct panel {
	int workload, async, maxlevel;
} panel;

static int level_of(const bench_row *r)
{
	if (r->cfg.async)
		return r->cfg.in_flight;
	return r->cfg.workload == WL_ORCH ? r->cfg.dispatchers : r->cfg.workers;
}

static int in_panel(const bench_row *r, const panel *pn)
{
	return !r->skipped && r->cfg.workload == pn->workload && r->cfg.async == pn->async &&
	       !bench_mode_is_baseline(r->cfg.mode);
}

/* Panels that have rows, in a fixed order; returns how many. */
static int find_panels(const bench_row *rows, size_t n, panel out[6])
{
	static const int order[][2] = {{WL_QUEUE, 0},	      {WL_QUEUE_PRODUCE, 0}, {WL_ORCH, 0},
				       {WL_QUEUE, 1},	      {WL_QUEUE_PRODUCE, 1}};
	int np = 0;
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		panel pn = {order[k][0], order[k][1], 0};
		for (size_t i = 0; i < n; i++)
			if (in_panel(&rows[i], &pn) && level_of(&rows[i]) > pn.maxlevel)
				pn.maxlevel = level_of(&rows[i]);
		if (pn.maxlevel > 0)
			out[np++] = pn;
	}
	return np;
}

/* Writes the data blocks of one panel and its plot command; returns the next block index. */
static int plot_panel(FILE *d, FILE *g, const char *dat, const bench_row *rows, size_t n,
		      const panel *pn, int block)
{
	/* colour = mode, line and point style = provider (file solid/filled circles, memory
	 * dashed/open circles, postgresql dash-dot/filled squares) */
	static const char *const colors[BENCH_NMODES] = {"#1f77b4", "#d62728", "#2ca02c",
							 "#9467bd", "#ff7f0e", "#8c564b",
							 "#17becf"};
	static const int dash[3] = {1, 2, 4}, point[3] = {7, 6, 5};
	char plots[8192] = "";
	size_t pl = 0;
	for (int p = 0; p < 3; p++) {
		for (int m = 0; m < BENCH_NMODES; m++) {
			int any = 0;
			for (size_t i = 0; i < n; i++) {
				const bench_row *r = &rows[i];
				if (r->skipped || r->cfg.provider != p || r->cfg.mode != m)
					continue;
				if (bench_mode_is_baseline(m) && r->cfg.workload == WL_QUEUE &&
				    pn->workload == WL_QUEUE) {
					/* one fixed setup: a horizontal line across the levels */
					fprintf(d, "1 %.3f\n%d %.3f\n", r->throughput, pn->maxlevel,
						r->throughput);
					any = 1;
				} else if (!bench_mode_is_baseline(m) && in_panel(r, pn)) {
					fprintf(d, "%d %.3f\n", level_of(r), r->throughput);
					any = 1;
				}
			}
			if (!any)
				continue;
			fprintf(d, "\n\n");
			pl += (size_t)snprintf(plots + pl, sizeof(plots) - pl,
					       "%s'%s' index %d using 1:2 with linespoints lw 2 lc rgb '%s' dt %d pt %d title '%s %s'",
					       pl ? ", " : "", dat, block, colors[m],
					       dash[p], point[p],
					       bench_provider_name(p), bench_mode_name(m));
			block++;
		}
	}
	if (pn->workload == WL_ORCH) {
		/* the theoretical bound, from the first orchestration rows */
		int any = 0;
		for (size_t i = 0; i < n; i++) {
			const bench_row *r = &rows[i];
			if (r->skipped || r->cfg.workload != WL_ORCH ||
			    r->cfg.provider != rows[0].cfg.provider || r->cfg.mode != MODE_GROUP)
				continue;
			fprintf(d, "%d %.3f\n", level_of(r), r->bound);
			any = 1;
		}
		if (any) {
			fprintf(d, "\n\n");
			pl += (size_t)snprintf(plots + pl, sizeof(plots) - pl,
					       "%s'%s' index %d using 1:2 with lines lw 1 lc rgb 'black' dt 3 title 'bound (A x 1000/act_ms / 5)'",
					       pl ? ", " : "", dat, block);
			block++;
		}
	}
	fprintf(g, "set xrange [0.8:%d]\n", pn->maxlevel * 5 / 4 + 1);
	fprintf(g, "set title '%s%s'\n", bench_workload_name(pn->workload),
		pn->async ? ", asynchronous acks at fixed work in flight" : "");
	fprintf(g, "set xlabel '%s'\n",
		pn->async ? "items in flight (fetched, not yet acked; all workers)"
		: pn->workload == WL_ORCH ? "dispatchers = activity workers" : "workers");
	fprintf(g, "set ylabel '%s'\n",
		pn->workload == WL_ORCH		   ? "orchestrations/s"
		: pn->workload == WL_QUEUE_PRODUCE ? "cycles/s (enqueue+fetch+ack)"
						   : "cycles/s (fetch+ack)");
	if (pl)
		fprintf(g, "plot %s\n", plots);
	return block;
}

int bench_write_plot(const char *path, const bench_row *rows, size_t n)
{
	char dat[4200], gp[4200], cmd[8600];
	panel panels[6];
	int np = find_panels(rows, n, panels);
	int cols = np < 2 ? 1 : np <= 4 ? 2 : 3, lines = np ? (np + cols - 1) / cols : 1;
	snprintf(dat, sizeof(dat), "%s.dat", path);
	snprintf(gp, sizeof(gp), "%s.gp", path);
	FILE *d = fopen(dat, "w"), *g = fopen(gp, "w");
	if (!d || !g) {
		perror(!d ? dat : gp);
		if (d)
			fclose(d);
		if (g)
			fclose(g);
		return -1;
	}
	/* One data block per (panel, provider, mode) series, separated by two blank lines. */
	fprintf(g, "set terminal pngcairo size %d,%d font ',10' noenhanced\n", 560 * cols,
		560 * lines);
	fprintf(g, "set output '%s'\n", path);
	fprintf(g, "set multiplot layout %d,%d title 'durq-bench: throughput vs concurrency'\n",
		lines, cols);
	fprintf(g, "set logscale y\nset logscale x 2\nset grid\nset key outside below horizontal maxcols 3 font ',8'\n");
	for (int i = 0, block = 0; i < np; i++)
		block = plot_panel(d, g, dat, rows, n, &panels[i], block);
	fprintf(g, "unset multiplot\n");
	fclose(d);
	fclose(g);
	snprintf(cmd, sizeof(cmd), "gnuplot '%s'", gp);
	int rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "durq-bench: '%s' failed (exit %d); is gnuplot installed?\n", cmd,
			WIFEXITED(rc) ? WEXITSTATUS(rc) : rc);
		return -1;
	}
	return 0;
}
