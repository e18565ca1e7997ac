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

const char *bench_provider_name(int p) { return p == PROV_MEMORY ? "sqlite-memory" : "sqlite-file"; }

const char *bench_workload_name(int w)
{
	return w == WL_ORCH ? "orchestration" : w == WL_QUEUE_PRODUCE ? "queue-produce" : "queue";
}

const char *bench_mode_name(int m)
{
	return m == MODE_PER_OP ? "per-op" : m == MODE_CEILING ? "ceiling" : "group";
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
	printf("%-13s %-13s %-7s %5s %7s %10s %-6s %8s %8s %8s %8s %7s %5s %11s %7s %8s %8s %9s %7s %6s\n",
	       "provider", "workload", "mode", "conc", "done", "throughput", "unit", "act/s",
	       "p50_ms", "p99_ms", "ackp99ms", "ok%", "fail", "busy(h/s)", "ops/txn", "txn/item",
	       "cpu/1k_s", "commit_ms", "bound", "%bound");
}

void bench_print_row(const bench_row *r)
{
	char conc[32], busy[32], act[32], bound[32], pct[32];
	conc_str(r, conc, sizeof(conc));
	if (r->skipped) {
		printf("%-13s %-13s %-7s %5s  (skipped: %s)\n", bench_provider_name(r->cfg.provider),
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
	printf("%-13s %-13s %-7s %5s %7ld %10.1f %-6s %8s %8.3f %8.3f %8.3f %7.2f %5ld %11s %7.2f %8.3f %8.3f %9.3f %7s %6s\n",
	       bench_provider_name(r->cfg.provider), bench_workload_name(r->cfg.workload),
	       bench_mode_name(r->cfg.mode), conc, r->items_done, r->throughput,
	       orch ? "orch/s" : "cyc/s", act, r->p50_ms, r->p99_ms, r->ack_p99_ms,
	       100.0 * r->success_rate, r->failures, busy, r->ops_per_txn, r->txn_per_item,
	       r->cpu_s_per_1k, r->commit_ms_mean, bound, pct);
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
			   "\"cpu_s_per_1k\": %.4f, \"commit_ms_mean\": %.4f, ",
			(unsigned long long)r->transactions, r->ops_per_txn, r->txn_per_item,
			r->cpu_s_per_1k, r->commit_ms_mean);
		fprintf(f, "\"bound\": %.3f, \"pct_of_bound\": %.2f, ", r->bound, r->pct_of_bound);
		fprintf(f, "\"sync\": \"%s\", \"payload\": %zu, \"activity_ms\": %d, \"in_flight\": %d, "
			   "\"vfs\": ",
			sync_name(r->cfg.sync), r->cfg.payload, r->cfg.activity_ms, r->cfg.in_flight);
		json_str(f, r->cfg.vfs ? r->cfg.vfs : "");
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

/* x of the plot: W for queues, D (= A in the default matrix) for orchestration */
static int level_of(const bench_row *r) { return r->cfg.workload == WL_ORCH ? r->cfg.dispatchers : r->cfg.workers; }

int bench_write_plot(const char *path, const bench_row *rows, size_t n)
{
	char dat[4200], gp[4200], cmd[8600];
	int workloads[3] = {0}, nw = 0, maxlevel = 1;
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
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].skipped && !workloads[rows[i].cfg.workload]) {
			workloads[rows[i].cfg.workload] = 1;
			nw++;
		}
		if (level_of(&rows[i]) > maxlevel)
			maxlevel = level_of(&rows[i]);
	}
	if (nw == 0)
		nw = 1;
	/* One data block per (workload, provider, mode) series, separated by two blank lines. */
	fprintf(g, "set terminal pngcairo size %d,640 font ',10' noenhanced\n", 560 * nw);
	fprintf(g, "set output '%s'\n", path);
	fprintf(g, "set multiplot layout 1,%d title 'durq-bench: throughput vs concurrency'\n", nw);
	fprintf(g, "set logscale y\nset logscale x 2\nset grid\nset key outside below horizontal maxcols 3 font ',8'\n");
	fprintf(g, "set xrange [0.8:%d]\n", maxlevel * 5 / 4 + 1);
	/* colour = mode, line and point style = provider (file solid/filled, memory dashed/open) */
	static const char *const colors[3] = {"#1f77b4", "#d62728", "#2ca02c"};
	int block = 0;
	for (int w = 0; w < 3; w++) {
		if (!workloads[w])
			continue;
		char plots[8192] = "";
		size_t pl = 0;
		for (int p = 0; p < 2; p++) {
			for (int m = 0; m < 3; m++) {
				int any = 0;
				for (size_t i = 0; i < n; i++) {
					const bench_row *r = &rows[i];
					if (r->skipped || r->cfg.workload != w || r->cfg.provider != p ||
					    r->cfg.mode != m)
						continue;
					if (m == MODE_CEILING) {
						/* one thread: a horizontal line across the levels */
						fprintf(d, "1 %.3f\n%d %.3f\n", r->throughput, maxlevel,
							r->throughput);
					} else {
						fprintf(d, "%d %.3f\n", level_of(r), r->throughput);
					}
					any = 1;
				}
				if (!any)
					continue;
				fprintf(d, "\n\n");
				pl += (size_t)snprintf(plots + pl, sizeof(plots) - pl,
						       "%s'%s' index %d using 1:2 with linespoints lw 2 lc rgb '%s' dt %d pt %d title '%s %s'",
						       pl ? ", " : "", dat, block, colors[m],
						       p == PROV_FILE ? 1 : 2, p == PROV_FILE ? 7 : 6,
						       bench_provider_name(p), bench_mode_name(m));
				block++;
			}
		}
		if (w == WL_ORCH) {
			/* the theoretical bound, from the first orchestration rows */
			int any = 0;
			for (size_t i = 0; i < n; i++) {
				const bench_row *r = &rows[i];
				if (r->skipped || r->cfg.workload != WL_ORCH || r->cfg.provider != rows[0].cfg.provider || r->cfg.mode != MODE_GROUP)
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
		fprintf(g, "set title '%s'\n", bench_workload_name(w));
		fprintf(g, "set xlabel '%s'\n",
			w == WL_ORCH ? "dispatchers = activity workers" : "workers");
		fprintf(g, "set ylabel '%s'\n", w == WL_ORCH ? "orchestrations/s" : "cycles/s (fetch+ack)");
		if (pl)
			fprintf(g, "plot %s\n", plots);
	}
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
