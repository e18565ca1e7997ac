/*
 * cli_dead.c — `durq dead list|show|requeue|purge` and `durq work list`: dead letters and
 * work items as stored, read without leasing anything; requeue and purge are the writes.
 */
#include <string.h>

#include "cli.h"

static const struct option page_opts[] = {{"after", required_argument, NULL, 'a'},
					  {"limit", required_argument, NULL, 'l'},
					  {"json", no_argument, NULL, 'j'},
					  {"all-queues", no_argument, NULL, 'A'},
					  {"help", no_argument, NULL, 'h'},
					  {NULL, 0, NULL, 0}};

typedef struct page_args {
	int64_t after, limit;
	int all_queues;
} page_args;

static int page_parse(cli *c, int argc, char **argv, page_args *p)
{
	int rc;
	p->after = 0;
	p->limit = 100;
	p->all_queues = 0;
	CLI_OPTS_BEGIN(c, argc, argv, "a:l:jA", page_opts)
	case 'a':
		if ((rc = cli_int64(c, "--after", optarg, 0, INT64_MAX, &p->after)) != 0)
			return rc;
		break;
	case 'l':
		if ((rc = cli_int64(c, "--limit", optarg, 1, 10000, &p->limit)) != 0)
			return rc;
		break;
	case 'j':
		c->json = 1;
		break;
	case 'A':
		p->all_queues = 1;
		break;
	CLI_OPTS_END
	return 0;
}

static const char *source_name(int s)
{
	return s == DURQ_DEAD_ORCH ? "orchestration" : s == DURQ_DEAD_WORK ? "work" : "?";
}

static json_t *dead_json(const durq_dead_letter *d)
{
	return json_pack("{s:I, s:s, s:o, s:o, s:I, s:I, s:i, s:i, s:I, s:I, s:o}", "id",
			 (json_int_t)d->id, "source", source_name(d->source), "queue",
			 d->queue ? json_string(d->queue) : json_null(), "instance_id",
			 d->instance_id ? json_string(d->instance_id) : json_null(), "execution_id",
			 (json_int_t)d->execution_id, "activity_id", (json_int_t)d->activity_id,
			 "kind", d->kind, "attempt", d->attempt, "dead_at_ms",
			 (json_int_t)d->dead_at_ms, "payload_len", (json_int_t)d->payload_len,
			 "payload", cli_json_payload(d->payload, d->payload_len));
}

static void dead_line(FILE *f, const durq_dead_letter *d)
{
	char t[32];
	cli_time(t, sizeof(t), d->dead_at_ms);
	fprintf(f, "%-8lld %-13s %-16s %-24s %7d  %s  ", (long long)d->id, source_name(d->source),
		d->queue ? (d->queue[0] ? d->queue : "(default)") : "-",
		d->instance_id ? d->instance_id : "-", d->attempt, t);
	cli_payload_print(f, d->payload, d->payload_len, 40);
	fputc('\n', f);
}

int cli_dead_list(cli *c, int argc, char **argv)
{
	page_args p;
	const char *url;
	durq *db;
	durq_dead_letter *d;
	size_t n;
	int rc = page_parse(c, argc, argv, &p), i = optind;
	if (rc != 0 || (rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	if ((rc = durq_dead_page(db, &d, &n, p.after, (size_t)p.limit)) < 0) {
		rc = cli_durq_fail(c, rc);
		durq_free(db);
		return rc;
	}
	if (c->json) {
		json_t *arr = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append_new(arr, dead_json(&d[k]));
		cli_json_print(c, json_pack("{s:o, s:o}", "dead_letters", arr, "next_after",
					    n == (size_t)p.limit ? json_integer(d[n - 1].id)
								 : json_null()));
	} else {
		fprintf(c->out, "%-8s %-13s %-16s %-24s %7s  %-24s  %s\n", "ID", "SOURCE", "QUEUE",
			"INSTANCE", "ATTEMPT", "DEAD AT", "PAYLOAD");
		for (size_t k = 0; k < n; k++)
			dead_line(c->out, &d[k]);
		if (n == (size_t)p.limit)
			fprintf(c->out, "more: --after %lld\n", (long long)d[n - 1].id);
	}
	durq_dead_letters_free(d, n);
	durq_free(db);
	return CLI_OK;
}

int cli_dead_show(cli *c, int argc, char **argv)
{
	page_args p;
	const char *url, *ids;
	int64_t id;
	durq *db;
	durq_dead_letter *d = NULL;
	size_t n = 0;
	int rc = page_parse(c, argc, argv, &p), i = optind;
	if (rc != 0 || (rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_arg(c, argc, argv, &i, "ID", &ids)) != 0 ||
	    (rc = cli_int64(c, "ID", ids, 1, INT64_MAX, &id)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	if ((rc = durq_dead_page(db, &d, &n, id - 1, 1)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else if (n == 0 || d[0].id != id) {
		rc = cli_fail(c, CLI_ENOTFOUND, "DURQ_ENOTFOUND: no dead letter %lld", (long long)id);
	} else {
		const durq_dead_letter *x = &d[0];
		if (c->json) {
			cli_json_print(c, dead_json(x));
		} else {
			char t[32];
			cli_time(t, sizeof(t), x->dead_at_ms);
			fprintf(c->out, "id            %lld\nsource        %s\n", (long long)x->id,
				source_name(x->source));
			if (x->source == DURQ_DEAD_WORK)
				fprintf(c->out, "queue         %s\n",
					x->queue && x->queue[0] ? x->queue : "(default)");
			fprintf(c->out, "instance      %s\n", x->instance_id ? x->instance_id : "-");
			if (x->source == DURQ_DEAD_WORK)
				fprintf(c->out, "execution     %llu\nactivity      %llu\n",
					(unsigned long long)x->execution_id,
					(unsigned long long)x->activity_id);
			else
				fprintf(c->out, "kind          %d\n", x->kind);
			fprintf(c->out, "attempts      %d\ndead at       %s\npayload       ",
				x->attempt, t);
			cli_payload_print(c->out, x->payload, x->payload_len, (size_t)-1);
			fputc('\n', c->out);
		}
		rc = CLI_OK;
	}
	durq_dead_letters_free(d, n);
	durq_free(db);
	return rc;
}

int cli_dead_requeue(cli *c, int argc, char **argv)
{
	page_args p;
	const char *url;
	durq *db;
	int rc = page_parse(c, argc, argv, &p), i = optind;
	if (rc != 0 || (rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0)
		return rc;
	if (i >= argc)
		return cli_usage(c, "missing ID");
	int64_t ids[argc];
	int nids = 0;
	for (; i < argc; i++)
		if ((rc = cli_int64(c, "ID", argv[i], 1, INT64_MAX, &ids[nids++])) != 0)
			return rc;
	if ((rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	for (int k = 0; k < nids; k++) {
		if ((rc = durq_dead_requeue(db, ids[k])) < 0) {
			rc = cli_durq_fail(c, rc);
			durq_free(db);
			return rc;
		}
		fprintf(c->out, "requeued %lld\n", (long long)ids[k]);
	}
	durq_free(db);
	return CLI_OK;
}

int cli_dead_purge(cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"all", no_argument, NULL, 'A'},
					     {"id", required_argument, NULL, 'i'},
					     {"older-than", required_argument, NULL, 'o'},
					     {"queue", required_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	durq_dead_filter f = DURQ_DEAD_FILTER_INIT;
	int64_t older = -1;
	int all = 0, rc;
	const char *url;
	durq *db;
	size_t purged;
	CLI_OPTS_BEGIN(c, argc, argv, "Ai:o:q:", opts)
	case 'A':
		all = 1;
		break;
	case 'i':
		if ((rc = cli_int64(c, "--id", optarg, 1, INT64_MAX, &f.id)) != 0)
			return rc;
		break;
	case 'o':
		if ((rc = cli_int64(c, "--older-than", optarg, 0, INT64_MAX / 1000, &older)) != 0)
			return rc;
		break;
	case 'q':
		f.queue = optarg;
		break;
	CLI_OPTS_END
	int i = optind;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0)
		return rc;
	if (!all && !f.id && older < 0 && !f.queue)
		return cli_usage(c, "say what to purge: --all, or --id, --older-than, --queue");
	if (all && (f.id || older >= 0 || f.queue))
		return cli_usage(c, "--all takes no filter");
	if ((rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	if (older >= 0)
		f.dead_before_ms = durq_now(db) - older * 1000;
	if ((rc = durq_dead_purge(db, &purged, &f)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		fprintf(c->out, "purged %zu\n", purged);
		rc = CLI_OK;
	}
	durq_free(db);
	return rc;
}

/* ---- work list ---------------------------------------------------------------------- */

static json_t *work_json(const durq_work_info *w)
{
	return json_pack("{s:I, s:s, s:o, s:I, s:I, s:i, s:i, s:I, s:o, s:I, s:I, s:o}", "id",
			 (json_int_t)w->id, "queue", w->queue ? w->queue : "", "instance_id",
			 w->instance_id ? json_string(w->instance_id) : json_null(), "execution_id",
			 (json_int_t)w->execution_id, "activity_id", (json_int_t)w->activity_id,
			 "priority", w->priority, "attempt", w->attempt, "visible_at_ms",
			 (json_int_t)w->visible_at_ms, "locked_until_ms",
			 w->locked_until_ms ? json_integer(w->locked_until_ms) : json_null(),
			 "created_ms", (json_int_t)w->created_ms, "payload_len",
			 (json_int_t)w->payload_len, "payload",
			 cli_json_payload(w->payload, w->payload_len));
}

static const char *work_state(const durq_work_info *w, int64_t now)
{
	if (w->locked_until_ms > now)
		return "leased";
	if (w->locked_until_ms)
		return "expired";
	return w->visible_at_ms > now ? "delayed" : "ready";
}

static void work_print(cli *c, const durq_work_info *w, size_t n, size_t limit, int64_t now)
{
	if (c->json) {
		json_t *arr = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append_new(arr, work_json(&w[k]));
		cli_json_print(c, json_pack("{s:o, s:o}", "items", arr, "next_after",
					    n == limit ? json_integer(w[n - 1].id) : json_null()));
		return;
	}
	fprintf(c->out, "%-8s %-16s %-8s %4s %7s %-24s %s\n", "ID", "QUEUE", "STATE", "PRIO",
		"ATTEMPT", "INSTANCE", "PAYLOAD");
	for (size_t k = 0; k < n; k++) {
		fprintf(c->out, "%-8lld %-16s %-8s %4d %7d %-24s ", (long long)w[k].id,
			w[k].queue && w[k].queue[0] ? w[k].queue : "(default)",
			work_state(&w[k], now), w[k].priority, w[k].attempt,
			w[k].instance_id ? w[k].instance_id : "-");
		cli_payload_print(c->out, w[k].payload, w[k].payload_len, 40);
		fputc('\n', c->out);
	}
	if (n == limit)
		fprintf(c->out, "more: --after %lld\n", (long long)w[n - 1].id);
}

int cli_work_list(cli *c, int argc, char **argv)
{
	page_args p;
	const char *url, *queue = NULL;
	durq *db;
	durq_work_info *w;
	size_t n;
	int rc = page_parse(c, argc, argv, &p), i = optind;
	if (rc != 0 || (rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0)
		return rc;
	if (!p.all_queues && (rc = cli_arg(c, argc, argv, &i, "QUEUE (or --all-queues)",
					   &queue)) != 0)
		return rc;
	if ((rc = cli_no_more(c, argc, argv, i)) != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	if ((rc = durq_work_peek(db, &w, &n, queue, p.after, (size_t)p.limit)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		work_print(c, w, n, (size_t)p.limit, durq_now(db));
		durq_work_infos_free(w, n);
		rc = CLI_OK;
	}
	durq_free(db);
	return rc;
}
