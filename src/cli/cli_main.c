/*
 * cli_main.c — the `durq` command: the verb table, `durq --help` (verbs and exit codes),
 * `--version`, and the run of one verb with its output kept in memory: a verb that fails
 * prints nothing on stdout, only its one-line error on stderr.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define URL_HELP                                                                            \
	"URL: sqlite:PATH (an existing file), sqlite::memory: (a private, empty database),\n"  \
	"     postgresql://user@host:port/db[?options=-csearch_path%3Dschema]\n"

const cli_verb cli_verbs[] = {
	{"stats", NULL, cli_stats,
	 "usage: durq stats URL [--processes] [--json]\n"
	 "The database as a whole: provider, schema version, sizes, queue depths, dead letters,\n"
	 "leased instances, and commits so far (all processes). --processes: also the counters\n"
	 "each process's handles published (ops, commits, ops per commit, p99 commit and ack\n"
	 "latency, pool waits since each handle opened; see stats_publish_ms).\n" URL_HELP},
	{"queues", NULL, cli_queues,
	 "usage: durq queues URL [--json]\n"
	 "Depth per queue: ready, delayed, leased, and how long the oldest ready entry waited.\n"
	 "The orchestration queue is listed first as '(orchestrations)'; the default work\n"
	 "queue shows as '(default)'.\n" URL_HELP},
	{"top", NULL, cli_top,
	 "usage: durq top URL [--interval MS] [--count N] [--json]\n"
	 "One line per interval (default 1000 ms; forever unless --count): commits/s of every\n"
	 "process (SQLite: the WAL's commit counter; PostgreSQL: pg_stat_database), rows\n"
	 "written/s and rows per commit (PostgreSQL), ready/leased/delayed work and messages,\n"
	 "dead letters, the longest wait, WAL size. Below it, while processes publish their\n"
	 "counters (stats_publish_ms, default every 1000 ms), their total and one line per\n"
	 "process (pid@host): ops/s, commits/s, ops per commit, p99 commit and ack latency,\n"
	 "pool waits/s. --json: one JSON object per line.\n" URL_HELP},
	{"dead", "list", cli_dead_list,
	 "usage: durq dead list URL [--after ID] [--limit N] [--json]\n"
	 "Dead letters in id order, a page at a time (default 100, at most 10000).\n" URL_HELP},
	{"dead", "show", cli_dead_show,
	 "usage: durq dead show URL ID [--json]\n"
	 "One dead letter with its whole payload. Exit 3 if there is none with that id.\n" URL_HELP},
	{"dead", "requeue", cli_dead_requeue,
	 "usage: durq dead requeue URL ID...\n"
	 "Put dead letters back on their queue with attempt 0. Exit 3 if one does not exist\n"
	 "(the ones before it were requeued).\n" URL_HELP},
	{"dead", "purge", cli_dead_purge,
	 "usage: durq dead purge URL (--all | --id ID | --older-than SEC | --queue Q)...\n"
	 "Delete dead letters, in one transaction. Filters combine (all must match); --all\n"
	 "alone deletes every one. Prints how many were deleted.\n" URL_HELP},
	{"work", "list", cli_work_list,
	 "usage: durq work list URL QUEUE [--after ID] [--limit N] [--json]\n"
	 "       durq work list URL --all-queues [--after ID] [--limit N] [--json]\n"
	 "Work items as stored (ready, delayed or leased), without leasing anything. QUEUE ''\n"
	 "is the default queue.\n" URL_HELP},
	{"instance", "list", cli_instance_list,
	 "usage: durq instance list URL [--status S] [--prefix P] [--after ID] [--limit N] [--json]\n"
	 "Instance ids in byte order, a page at a time (default 100). S: running, completed,\n"
	 "failed, continued-as-new, terminated. A full page ends with the --after value of\n"
	 "the next one.\n" URL_HELP},
	{"instance", "show", cli_instance_show,
	 "usage: durq instance show URL ID [--json]\n"
	 "An instance: name, version, status, parent, executions, output, custom status.\n" URL_HELP},
	{"instance", "history", cli_instance_history,
	 "usage: durq instance history URL ID [--execution N] [--json]\n"
	 "The history events of an execution (default: the current one).\n" URL_HELP},
	{"instance", "delete", cli_instance_delete,
	 "usage: durq instance delete URL ID...\n"
	 "Delete instances with their queues, lock and history.\n" URL_HELP},
	{"instance", "tree", cli_instance_tree,
	 "usage: durq instance tree URL [ID] [--json]\n"
	 "An instance and its sub-orchestrations (instances whose parent it is), recursively;\n"
	 "without ID every root instance. Reads every instance: meant for small databases.\n"
	 URL_HELP},
	{"checkpoint", NULL, cli_checkpoint,
	 "usage: durq checkpoint URL [--json]\n"
	 "SQLite: copy the WAL into the database and truncate it (waits up to busy_timeout for\n"
	 "readers). PostgreSQL: CHECKPOINT (superuser or pg_checkpoint).\n" URL_HELP},
	{"integrity", NULL, cli_integrity,
	 "usage: durq integrity URL\n"
	 "SQLite's integrity_check plus durq's own invariants (executions, history and\n"
	 "instances agree). Prints 'ok' or the problems; exit 4 if there are any.\n" URL_HELP},
	{"vacuum", NULL, cli_vacuum,
	 "usage: durq vacuum URL\n"
	 "Reclaim free space: SQLite VACUUM (rewrites the file; takes the write lock while it\n"
	 "runs), PostgreSQL VACUUM (ANALYZE) of durq's tables.\n" URL_HELP},
	{"config", NULL, cli_config,
	 "usage: durq config URL [--json]\n"
	 "The effective settings of a handle opened on URL with default options, and where\n"
	 "each came from: default, url (a URL parameter), environment (DURQ_*), or the durq\n"
	 "profile (SQLite PRAGMAs).\n" URL_HELP},
	{"export", NULL, cli_export,
	 "usage: durq export URL [-o FILE]\n"
	 "Every row of every durq table as JSON lines, from one snapshot: a header (format and\n"
	 "schema version), then per table its columns and rows, then an end line with the row\n"
	 "count. Leases are dropped, attempts kept. Writes stdout, or FILE (replaced only once\n"
	 "complete).\n" URL_HELP},
	{"import", NULL, cli_import,
	 "usage: durq import URL [-i FILE]\n"
	 "Load an export (stdin, or FILE) into a database whose durq tables are empty, in one\n"
	 "transaction: a malformed line, a truncated file, or another schema writes nothing\n"
	 "(exit 6). Works across providers (sqlite <-> postgresql). A sqlite file is created\n"
	 "if missing.\n" URL_HELP},
	{"bench", NULL, cli_bench,
	 "usage: durq bench [ARGS...]\n"
	 "Run the default bench: bash bench/run-default.sh ARGS of the source tree durq was\n"
	 "built from (the README's command: builds durq-bench in Release, runs the matrix in\n"
	 "about 4 minutes, writes bench-results/). DURQ_BENCH_SCRIPT=PATH runs another script.\n"
	 "Its output streams as it runs; exit code is the script's.\n"},
	{"serve-metrics", NULL, cli_serve_metrics,
	 "usage: durq serve-metrics URL [--listen HOST:PORT]\n"
	 "Serve Prometheus text on http://HOST:PORT/metrics (default 127.0.0.1:9464; port 0\n"
	 "picks a free one), 404 elsewhere, until SIGINT or SIGTERM (then exit 0). Prints\n"
	 "'listening on http://HOST:PORT/metrics' once ready. The text is durq_stats_prometheus\n"
	 "of this handle (queue depths, sizes) plus database-wide durq_db_commits_total and\n"
	 "durq_db_rows_written_total.\n" URL_HELP},
	{NULL, NULL, NULL, NULL},
};

static const char main_usage[] =
	"usage: durq VERB [SUBVERB] URL [OPTIONS]   (durq VERB --help for each)\n"
	"\n"
	"Look inside a durq database while other processes use it.\n"
	"\n"
	"verbs:\n"
	"  stats URL                      the database as a whole (--json)\n"
	"  queues URL                     depth per queue with the oldest wait (--json)\n"
	"  top URL                        refreshing view: commits/s, depths, WAL size,\n"
	"                                 ops/s, p99 and pool waits of every process\n"
	"  dead list|show|requeue|purge   dead letters\n"
	"  work list URL QUEUE            work items, without leasing them\n"
	"  instance list|show|history|delete|tree\n"
	"  checkpoint URL                 WAL checkpoint (TRUNCATE) / CHECKPOINT\n"
	"  integrity URL                  integrity and consistency check\n"
	"  vacuum URL                     reclaim free space\n"
	"  config URL                     effective settings and their source\n"
	"  export URL > file.jsonl        every row, one snapshot\n"
	"  import URL < file.jsonl        into an empty database, all or nothing\n"
	"  bench                          the default bench\n"
	"  serve-metrics URL --listen H:P Prometheus text on /metrics\n"
	"\n"
	"exit codes:\n"
	"  0  success\n"
	"  1  a durq call failed (busy, I/O, ...); the error names the DURQ_E code\n"
	"  2  usage: unknown verb or option, missing or bad argument\n"
	"  3  not found: no such instance, execution or dead letter\n"
	"  4  corrupt: integrity check failed, or the database is damaged or of a newer schema\n"
	"  5  cannot open the database: bad URL, missing file, server unreachable\n"
	"  6  bad import input: malformed line, truncated file, other format or schema\n"
	"\n"
	"Errors are one line on stderr: 'durq: VERB: DURQ_EXXX: message'. A verb that fails\n"
	"prints nothing on stdout.\n"
	"\n" URL_HELP;

static const cli_verb *current;

const char *cli_verb_usage(const cli *c)
{
	(void)c;
	return current ? current->usage : main_usage;
}

static int has_subverbs(const char *name)
{
	for (const cli_verb *v = cli_verbs; v->name; v++)
		if (!strcmp(v->name, name) && v->sub)
			return 1;
	return 0;
}

static void subverb_list(const char *name, char *buf, size_t n)
{
	buf[0] = '\0';
	for (const cli_verb *v = cli_verbs; v->name; v++)
		if (!strcmp(v->name, name) && v->sub)
			snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? "|" : "", v->sub);
}

/* Run v with its output in memory; stdout gets it only if the verb succeeded. */
static int run(const cli_verb *v, const char *label, int argc, char **argv)
{
	cli c = {.verb = label};
	current = v;
	if (!(c.out = open_memstream(&c.buf, &c.len))) {
		fprintf(stderr, "durq: %s: DURQ_ENOMEM: cannot buffer the output\n", label);
		return CLI_EFAIL;
	}
	int code = v->run(&c, argc, argv);
	if (code == CLI_DONE)
		code = CLI_OK;
	fclose(c.out);
	if (code == CLI_OK && c.len)
		if (fwrite(c.buf, 1, c.len, stdout) != c.len || fflush(stdout) != 0) {
			fprintf(stderr, "durq: %s: DURQ_EIO: cannot write the output\n", label);
			code = CLI_EFAIL;
		}
	free(c.buf);
	return code;
}

int main(int argc, char **argv)
{
	cli top = {.verb = "durq"};
	if (argc < 2) {
		fprintf(stderr, "durq: usage: missing verb (durq --help lists them)\n");
		return CLI_EUSAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(main_usage, stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("durq %s\n", DURQ_VERSION_STRING);
		return CLI_OK;
	}
	const char *name = argv[1];
	if (has_subverbs(name)) {
		char subs[128], label[160];
		subverb_list(name, subs, sizeof(subs));
		if (argc < 3 || argv[2][0] == '-') {
			if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
				printf("usage: durq %s %s ...   (durq %s SUBVERB --help)\n", name, subs,
				       name);
				return CLI_OK;
			}
			top.verb = name;
			return cli_usage(&top, "missing subverb (%s)", subs);
		}
		for (const cli_verb *v = cli_verbs; v->name; v++)
			if (!strcmp(v->name, name) && v->sub && !strcmp(v->sub, argv[2])) {
				snprintf(label, sizeof(label), "%s %s", name, argv[2]);
				return run(v, label, argc - 2, argv + 2);
			}
		top.verb = name;
		return cli_usage(&top, "unknown subverb '%s' (%s)", argv[2], subs);
	}
	for (const cli_verb *v = cli_verbs; v->name; v++)
		if (!strcmp(v->name, name))
			return run(v, name, argc - 1, argv + 1);
	fprintf(stderr, "durq: usage: unknown verb '%s' (durq --help lists them)\n", name);
	return CLI_EUSAGE;
}
