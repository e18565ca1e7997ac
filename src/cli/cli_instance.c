/*
 * cli_instance.c — `durq instance list|show|history|delete|tree`: instance ids by keyset
 * page with status and prefix filters, one instance with its executions, an execution's
 * history, deletes, and the parent/child tree.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct inst_args {
	int status;          /* < 0 = any */
	const char *prefix;
	const char *after;
	int64_t limit;
	int64_t execution;
} inst_args;

static int inst_parse(cli *c, int argc, char **argv, inst_args *a)
{
	static const struct option opts[] = {{"status", required_argument, NULL, 's'},
					     {"prefix", required_argument, NULL, 'p'},
					     {"after", required_argument, NULL, 'a'},
					     {"limit", required_argument, NULL, 'l'},
					     {"execution", required_argument, NULL, 'e'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int rc;
	*a = (inst_args){.status = -1, .limit = 100};
	CLI_OPTS_BEGIN(c, argc, argv, "s:p:a:l:e:j", opts)
	case 's':
		if ((a->status = cli_status_parse(optarg)) <= 0)
			return cli_usage(c, "--status '%s': expected running, completed, failed, "
					 "continued-as-new or terminated", optarg);
		break;
	case 'p':
		a->prefix = optarg;
		break;
	case 'a':
		a->after = optarg;
		break;
	case 'l':
		if ((rc = cli_int64(c, "--limit", optarg, 1, 100000, &a->limit)) != 0)
			return rc;
		break;
	case 'e':
		if ((rc = cli_int64(c, "--execution", optarg, 1, INT64_MAX, &a->execution)) != 0)
			return rc;
		break;
	case 'j':
		c->json = 1;
		break;
	CLI_OPTS_END
	return 0;
}

static int starts_with(const char *s, const char *p)
{
	return !p || !strncmp(s, p, strlen(p));
}

/*
 * Up to limit ids matching status and prefix, after `after`. Ids with the prefix are the
 * prefix itself or greater: paging starts at max(after, prefix) (the prefix itself is
 * looked up once) and stops at the first id without it.
 */
static int list_ids(durq *db, const inst_args *a, char ***out, size_t *n)
{
	char **ids = NULL;
	size_t cap = (size_t)a->limit, m = 0;
	const char *after = a->after;
	int rc = DURQ_OK;
	if (!(ids = calloc(cap, sizeof(*ids))))
		return DURQ_ENOMEM;
	if (a->prefix && *a->prefix && (!after || strcmp(after, a->prefix) < 0)) {
		durq_instance_info *info;
		if ((rc = durq_instance_get(db, &info, a->prefix)) == DURQ_OK) {
			if (a->status < 0 || info->status == a->status)
				ids[m++] = strdup(a->prefix);
			durq_instance_info_free(info);
		} else if (rc != DURQ_ENOTFOUND) {
			free(ids);
			return rc;
		}
		after = a->prefix;
		rc = DURQ_OK;
	}
	char *last = after ? strdup(after) : NULL;
	int done = 0;
	while (!done && m < cap) {
		char **page;
		size_t k, want = cap - m;
		if ((rc = durq_instance_list_page(db, &page, &k, a->status, last, want)) < 0)
			break;
		for (size_t i = 0; i < k && !done; i++) {
			if (!starts_with(page[i], a->prefix))
				done = 1;
			else
				ids[m++] = strdup(page[i]);
		}
		done = done || k < want;
		free(last);
		last = k ? strdup(page[k - 1]) : NULL;
		durq_strings_free(page, k);
	}
	free(last);
	if (rc < 0) {
		for (size_t i = 0; i < m; i++)
			free(ids[i]);
		free(ids);
		return rc;
	}
	*out = ids;
	*n = m;
	return DURQ_OK;
}

static void ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static int open_url(cli *c, int argc, char **argv, int *i, durq **db)
{
	const char *url;
	int rc = cli_arg(c, argc, argv, i, "URL", &url);
	return rc ? rc : cli_open(c, db, url, 0);
}

int cli_instance_list(cli *c, int argc, char **argv)
{
	inst_args a;
	durq *db;
	char **ids = NULL;
	size_t n = 0;
	int rc = inst_parse(c, argc, argv, &a), i = optind;
	if (rc != 0)
		return rc;
	if (i < argc && i + 1 < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[i + 1]);
	if ((rc = open_url(c, argc, argv, &i, &db)) != 0)
		return rc;
	if ((rc = list_ids(db, &a, &ids, &n)) < 0) {
		rc = cli_durq_fail(c, rc);
		durq_free(db);
		return rc;
	}
	int full = n == (size_t)a.limit;
	if (c->json) {
		json_t *arr = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append_new(arr, json_string(ids[k]));
		cli_json_print(c, json_pack("{s:o, s:o}", "instances", arr, "next_after",
					    full ? json_string(ids[n - 1]) : json_null()));
	} else {
		for (size_t k = 0; k < n; k++)
			fprintf(c->out, "%s\n", ids[k]);
		if (full)
			fprintf(c->out, "more: --after %s\n", ids[n - 1]);
	}
	ids_free(ids, n);
	durq_free(db);
	return CLI_OK;
}

static json_t *info_json(const durq_instance_info *x, const durq_execution_info *e, size_t ne)
{
	json_t *ex = json_array();
	for (size_t k = 0; k < ne; k++)
		json_array_append_new(ex, json_pack("{s:I, s:s, s:I, s:I, s:I}", "execution_id",
						    (json_int_t)e[k].execution_id, "status",
						    cli_status_name(e[k].status), "events",
						    (json_int_t)e[k].n_events, "created_ms",
						    (json_int_t)e[k].created_ms, "updated_ms",
						    (json_int_t)e[k].updated_ms));
	return json_pack("{s:s, s:o, s:o, s:s, s:o, s:I, s:o, s:o, s:I, s:I, s:I, s:o}", "id",
			 x->id, "name", x->name ? json_string(x->name) : json_null(), "version",
			 x->version ? json_string(x->version) : json_null(), "status",
			 cli_status_name(x->status), "parent_id",
			 x->parent_id ? json_string(x->parent_id) : json_null(), "execution_id",
			 (json_int_t)x->execution_id, "output",
			 cli_json_payload(x->output, x->output_len), "custom_status",
			 cli_json_payload(x->custom_status, x->custom_status_len),
			 "custom_status_version", (json_int_t)x->custom_status_version,
			 "created_ms", (json_int_t)x->created_ms, "updated_ms",
			 (json_int_t)x->updated_ms, "executions", ex);
}

static void info_text(FILE *f, const durq_instance_info *x, const durq_execution_info *e,
		      size_t ne)
{
	char t1[32], t2[32];
	cli_time(t1, sizeof(t1), x->created_ms);
	cli_time(t2, sizeof(t2), x->updated_ms);
	fprintf(f, "id              %s\nname            %s\nversion         %s\n", x->id,
		x->name ? x->name : "-", x->version ? x->version : "-");
	fprintf(f, "status          %s\nparent          %s\nexecution       %llu\n",
		cli_status_name(x->status), x->parent_id ? x->parent_id : "-",
		(unsigned long long)x->execution_id);
	fprintf(f, "created         %s\nupdated         %s\noutput          ", t1, t2);
	if (x->output)
		cli_payload_print(f, x->output, x->output_len, 200);
	else
		fputs("-", f);
	fprintf(f, "\ncustom status   ");
	if (x->custom_status)
		cli_payload_print(f, x->custom_status, x->custom_status_len, 200);
	else
		fputs("-", f);
	fprintf(f, " (version %llu)\n\n%-10s %-18s %8s  %s\n",
		(unsigned long long)x->custom_status_version, "EXECUTION", "STATUS", "EVENTS",
		"UPDATED");
	for (size_t k = 0; k < ne; k++) {
		cli_time(t2, sizeof(t2), e[k].updated_ms);
		fprintf(f, "%-10llu %-18s %8zu  %s\n", (unsigned long long)e[k].execution_id,
			cli_status_name(e[k].status), e[k].n_events, t2);
	}
}

int cli_instance_show(cli *c, int argc, char **argv)
{
	inst_args a;
	durq *db;
	const char *id;
	durq_instance_info *x = NULL;
	durq_execution_info *e = NULL;
	size_t ne = 0;
	int rc = inst_parse(c, argc, argv, &a), i = optind;
	if (rc != 0 || (i + 1 < argc && (rc = cli_no_more(c, argc, argv, i + 2)) != 0))
		return rc;
	if (i + 1 >= argc)
		return cli_usage(c, i >= argc ? "missing URL" : "missing ID");
	id = argv[i + 1];
	if ((rc = open_url(c, argc, argv, &i, &db)) != 0)
		return rc;
	if ((rc = durq_instance_get(db, &x, id)) < 0 ||
	    (rc = durq_execution_list(db, &e, &ne, id)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		if (c->json)
			cli_json_print(c, info_json(x, e, ne));
		else
			info_text(c->out, x, e, ne);
		rc = CLI_OK;
	}
	durq_instance_info_free(x);
	durq_execution_list_free(e);
	durq_free(db);
	return rc;
}

int cli_instance_history(cli *c, int argc, char **argv)
{
	inst_args a;
	durq *db;
	durq_event *ev;
	size_t n;
	int rc = inst_parse(c, argc, argv, &a), i = optind;
	if (rc != 0)
		return rc;
	if (i + 1 >= argc)
		return cli_usage(c, i >= argc ? "missing URL" : "missing ID");
	if ((rc = cli_no_more(c, argc, argv, i + 2)) != 0)
		return rc;
	const char *id = argv[i + 1];
	if ((rc = open_url(c, argc, argv, &i, &db)) != 0)
		return rc;
	if ((rc = durq_history_read(db, &ev, &n, id, (uint64_t)a.execution)) < 0) {
		rc = cli_durq_fail(c, rc);
		durq_free(db);
		return rc;
	}
	if (c->json) {
		json_t *arr = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append_new(arr, json_pack("{s:I, s:I, s:o}", "event_id",
							     (json_int_t)ev[k].event_id, "payload_len",
							     (json_int_t)ev[k].payload_len, "payload",
							     cli_json_payload(ev[k].payload,
									      ev[k].payload_len)));
		cli_json_print(c, json_pack("{s:s, s:o}", "instance_id", id, "events", arr));
	} else {
		fprintf(c->out, "%-10s %s\n", "EVENT", "PAYLOAD");
		for (size_t k = 0; k < n; k++) {
			fprintf(c->out, "%-10llu ", (unsigned long long)ev[k].event_id);
			cli_payload_print(c->out, ev[k].payload, ev[k].payload_len, 200);
			fputc('\n', c->out);
		}
	}
	durq_events_free(ev, n);
	durq_free(db);
	return CLI_OK;
}

int cli_instance_delete(cli *c, int argc, char **argv)
{
	inst_args a;
	durq *db;
	int rc = inst_parse(c, argc, argv, &a), i = optind;
	if (rc != 0)
		return rc;
	if (i + 1 >= argc)
		return cli_usage(c, i >= argc ? "missing URL" : "missing ID");
	int first = i + 1;
	if ((rc = open_url(c, argc, argv, &i, &db)) != 0)
		return rc;
	for (int k = first; k < argc; k++) {
		durq_instance_info *x;
		/* delete of a missing id is a no-op in the library: say so here */
		if ((rc = durq_instance_get(db, &x, argv[k])) < 0 ||
		    (durq_instance_info_free(x), rc = durq_instance_delete(db, argv[k])) < 0) {
			rc = cli_durq_fail(c, rc);
			durq_free(db);
			return rc;
		}
		fprintf(c->out, "deleted %s\n", argv[k]);
	}
	durq_free(db);
	return CLI_OK;
}

/* ---- tree ------------------------------------------------------------------------- */

typedef struct node {
	char *id, *parent, *name;
	int status;
} node;

static int load_all(durq *db, node **out, size_t *n)
{
	char *after = NULL;
	size_t cap = 0, m = 0;
	node *v = NULL;
	int rc;
	for (;;) {
		char **page;
		size_t k;
		if ((rc = durq_instance_list_page(db, &page, &k, -1, after, 1000)) < 0)
			break;
		for (size_t i = 0; i < k && rc == DURQ_OK; i++) {
			durq_instance_info *x;
			if ((rc = durq_instance_get(db, &x, page[i])) == DURQ_ENOTFOUND) {
				rc = DURQ_OK; /* deleted meanwhile */
				continue;
			}
			if (rc < 0)
				break;
			if (m == cap) {
				cap = cap ? 2 * cap : 64;
				v = realloc(v, cap * sizeof(*v));
			}
			v[m++] = (node){strdup(x->id), x->parent_id ? strdup(x->parent_id) : NULL,
					x->name ? strdup(x->name) : NULL, x->status};
			durq_instance_info_free(x);
		}
		free(after);
		after = k ? strdup(page[k - 1]) : NULL;
		durq_strings_free(page, k);
		if (rc < 0 || k < 1000)
			break;
	}
	free(after);
	*out = v;
	*n = m;
	return rc;
}

static json_t *tree_node(cli *c, const node *v, size_t n, size_t at, int depth)
{
	json_t *kids = c->json ? json_array() : NULL;
	if (!c->json)
		fprintf(c->out, "%*s%s  [%s]%s%s\n", 2 * depth, "", v[at].id,
			cli_status_name(v[at].status), v[at].name ? "  " : "",
			v[at].name ? v[at].name : "");
	for (size_t k = 0; k < n && depth < 64; k++)
		if (v[k].parent && !strcmp(v[k].parent, v[at].id)) {
			json_t *j = tree_node(c, v, n, k, depth + 1);
			if (kids)
				json_array_append_new(kids, j);
		}
	if (!c->json)
		return NULL;
	return json_pack("{s:s, s:s, s:o, s:o}", "id", v[at].id, "status",
			 cli_status_name(v[at].status), "name",
			 v[at].name ? json_string(v[at].name) : json_null(), "children", kids);
}

/* A root: no parent, or a parent that is not (or no longer) there. */
static int is_root(const node *v, size_t n, size_t at)
{
	if (!v[at].parent)
		return 1;
	for (size_t k = 0; k < n; k++)
		if (!strcmp(v[k].id, v[at].parent))
			return 0;
	return 1;
}

int cli_instance_tree(cli *c, int argc, char **argv)
{
	inst_args a;
	durq *db;
	node *v = NULL;
	size_t n = 0;
	int rc = inst_parse(c, argc, argv, &a), i = optind;
	if (rc != 0)
		return rc;
	const char *root = i + 1 < argc ? argv[i + 1] : NULL;
	if ((rc = cli_no_more(c, argc, argv, i + 2)) != 0 ||
	    (rc = open_url(c, argc, argv, &i, &db)) != 0)
		return rc;
	if ((rc = load_all(db, &v, &n)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		json_t *arr = c->json ? json_array() : NULL;
		int found = 0;
		for (size_t k = 0; k < n; k++)
			if (root ? !strcmp(v[k].id, root) : is_root(v, n, k)) {
				json_t *j = tree_node(c, v, n, k, 0);
				found = 1;
				if (arr)
					json_array_append_new(arr, j);
			}
		if (root && !found) {
			json_decref(arr);
			rc = cli_fail(c, CLI_ENOTFOUND, "DURQ_ENOTFOUND: no instance '%s'", root);
		} else {
			if (arr)
				cli_json_print(c, json_pack("{s:o}", "trees", arr));
			rc = CLI_OK;
		}
	}
	for (size_t k = 0; k < n; k++) {
		free(v[k].id);
		free(v[k].parent);
		free(v[k].name);
	}
	free(v);
	durq_free(db);
	return rc;
}
