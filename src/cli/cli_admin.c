/*
 * cli_admin.c — `durq checkpoint`, `durq integrity`, `durq vacuum`, `durq config`: the
 * maintenance verbs, and the effective settings with where each came from.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "durq/provider.h"

static const struct option url_opts[] = {{"json", no_argument, NULL, 'j'},
					 {"help", no_argument, NULL, 'h'},
					 {NULL, 0, NULL, 0}};

static int open_url_only(cli *c, int argc, char **argv, durq **db, const char **urlp)
{
	const char *url;
	int rc;
	CLI_OPTS_BEGIN(c, argc, argv, "j", url_opts)
	case 'j':
		c->json = 1;
		break;
	CLI_OPTS_END
	int i = optind;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0)
		return rc;
	if (urlp)
		*urlp = url;
	return cli_open(c, db, url, 0);
}

static int open_only(cli *c, int argc, char **argv, durq **db)
{
	return open_url_only(c, argc, argv, db, NULL);
}

int cli_checkpoint(cli *c, int argc, char **argv)
{
	durq *db;
	durq_checkpoint_result r = {.version = DURQ_CHECKPOINT_RESULT_VERSION};
	int rc = open_only(c, argc, argv, &db);
	if (rc != 0)
		return rc;
	if ((rc = durq_db_checkpoint(db, &r)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else if (c->json) {
		cli_json_print(c, json_pack("{s:I, s:I, s:I, s:I}", "log_frames",
					    (json_int_t)r.log_frames, "checkpointed",
					    (json_int_t)r.checkpointed, "wal_bytes_before",
					    (json_int_t)r.wal_bytes_before, "wal_bytes_after",
					    (json_int_t)r.wal_bytes_after));
		rc = CLI_OK;
	} else {
		char a[32], b[32];
		cli_bytes(a, sizeof(a), r.wal_bytes_before);
		cli_bytes(b, sizeof(b), r.wal_bytes_after);
		if (r.log_frames >= 0)
			fprintf(c->out, "checkpointed %lld of %lld WAL frames; WAL %s -> %s\n",
				(long long)r.checkpointed, (long long)r.log_frames, a, b);
		else
			fprintf(c->out, "checkpoint done\n");
		rc = CLI_OK;
	}
	durq_free(db);
	return rc;
}

int cli_integrity(cli *c, int argc, char **argv)
{
	durq *db;
	char *report = NULL;
	int rc = open_only(c, argc, argv, &db);
	if (rc != 0)
		return rc;
	rc = durq_db_integrity(db, &report);
	if (rc == DURQ_ECORRUPT && report) {
		/* the problems are the output; the exit code and one line say it failed */
		fputs(report, c->out);
		fflush(c->out);
		fwrite(c->buf, 1, c->len, stdout);
		rewind(c->out);
		rc = cli_durq_fail(c, rc);
	} else if (rc < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		fputs(report ? report : "ok\n", c->out);
		rc = CLI_OK;
	}
	durq_mem_free(report);
	durq_free(db);
	return rc;
}

int cli_vacuum(cli *c, int argc, char **argv)
{
	durq *db;
	durq_stats before, after;
	int rc = open_only(c, argc, argv, &db);
	if (rc != 0)
		return rc;
	if ((rc = durq_stats_get(db, &before)) < 0 || (rc = durq_db_vacuum(db)) < 0 ||
	    (rc = durq_stats_get(db, &after)) < 0) {
		rc = cli_durq_fail(c, rc);
	} else {
		char a[32], b[32];
		cli_bytes(a, sizeof(a), before.db_bytes);
		cli_bytes(b, sizeof(b), after.db_bytes);
		fprintf(c->out, "vacuumed; database %s -> %s\n", a, b);
		rc = CLI_OK;
	}
	durq_free(db);
	return rc;
}

/* ---- config ------------------------------------------------------------------------- */

/* A URL query parameter's value, or NULL. */
static const char *url_param(const char *url, const char *key, char *buf, size_t n)
{
	const char *q = strchr(url, '?');
	size_t klen = strlen(key);
	while (q && *q) {
		q++;
		if (!strncmp(q, key, klen) && (q[klen] == '=' || q[klen] == '&' || !q[klen])) {
			const char *v = q[klen] == '=' ? q + klen + 1 : "";
			snprintf(buf, n, "%.*s", (int)strcspn(v, "&"), v);
			return buf;
		}
		q = strchr(q, '&');
	}
	return NULL;
}

typedef struct setting {
	const char *name;
	char value[64];
	const char *env;   /* the DURQ_* variable, or NULL */
	const char *param; /* the URL parameter (sqlite), or NULL */
} setting;

static const char *source_of(const setting *s, const char *url, int is_sqlite)
{
	char buf[64];
	if (is_sqlite && s->param && url_param(url, s->param, buf, sizeof(buf)))
		return "url";
	if (s->env && secure_getenv(s->env))
		return "environment";
	if (!strcmp(s->name, "pool_size"))
		return "option"; /* the command opens with the smallest pool (cli_open) */
	return "default";
}

static const char *sync_name(int s)
{
	return s == DURQ_SYNC_OFF ? "off" : s == DURQ_SYNC_NORMAL ? "normal" : "full";
}

static int fill_settings(durq *db, setting *s, size_t *n)
{
	durq_options o;
	int rc = durq_options_get(db, &o);
	if (rc < 0)
		return rc;
	size_t k = 0;
#define SET(nm, env_, param_, fmt, v)                                                       \
	do {                                                                                \
		s[k] = (setting){.name = nm, .env = env_, .param = param_};                  \
		snprintf(s[k].value, sizeof(s[k].value), fmt, v);                            \
		k++;                                                                        \
	} while (0)
	SET("commit_mode", "DURQ_GROUP_COMMIT", NULL, "%s",
	    o.commit_mode == DURQ_COMMIT_GROUP ? "group" : "per-op");
	SET("synchronous", "DURQ_SYNCHRONOUS", "synchronous", "%s", sync_name(o.synchronous));
	SET("busy_timeout_ms", "DURQ_BUSY_TIMEOUT_MS", "busy_timeout_ms", "%d", o.busy_timeout_ms);
	SET("pool_size", "DURQ_POOL_SIZE", NULL, "%d", o.pool_size);
	SET("pool_timeout_ms", NULL, NULL, "%d", o.pool_timeout_ms);
	SET("max_batch", "DURQ_MAX_BATCH", NULL, "%d", o.max_batch);
	SET("backlog", NULL, NULL, "%d", o.backlog);
	SET("max_payload", NULL, NULL, "%zu", o.max_payload);
	SET("max_attempts", "DURQ_MAX_ATTEMPTS", NULL, "%d", o.max_attempts);
	SET("max_turn_entries", "DURQ_MAX_TURN_ENTRIES", NULL, "%zu", o.max_turn_entries);
	SET("poll_interval_ms", NULL, NULL, "%d", o.poll_interval_ms);
	SET("sqlite_vfs", NULL, "vfs", "%s", o.sqlite_vfs ? o.sqlite_vfs : "(default)");
	if (o.stats_publish_ms == DURQ_STATS_PUBLISH_OFF)
		SET("stats_publish_ms", "DURQ_STATS_PUBLISH_MS", NULL, "%s", "off");
	else
		SET("stats_publish_ms", "DURQ_STATS_PUBLISH_MS", NULL, "%d", o.stats_publish_ms);
#undef SET
	*n = k;
	return DURQ_OK;
}

static const char *const pragmas[] = {"journal_mode", "synchronous", "busy_timeout",
				      "foreign_keys", "temp_store", "cache_size", "mmap_size",
				      "wal_autocheckpoint", "journal_size_limit", "trusted_schema",
				      "page_size"};

int cli_config(cli *c, int argc, char **argv)
{
	durq *db;
	setting s[16];
	size_t n;
	const char *url;
	int rc = open_url_only(c, argc, argv, &db, &url);
	if (rc != 0)
		return rc;
	const char *prov = durq_provider_of(db)->name;
	int is_sqlite = !strncmp(prov, "sqlite", 6);
	if ((rc = fill_settings(db, s, &n)) < 0) {
		rc = cli_durq_fail(c, rc);
		durq_free(db);
		return rc;
	}
	json_t *arr = c->json ? json_array() : NULL;
	if (!c->json)
		fprintf(c->out, "provider %s\n\n%-26s %-14s %s\n", prov, "SETTING", "VALUE", "SOURCE");
	for (size_t k = 0; k < n; k++) {
		const char *src = source_of(&s[k], url, is_sqlite);
		if (arr)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", s[k].name,
							     "value", s[k].value, "source", src));
		else
			fprintf(c->out, "%-26s %-14s %s%s%s\n", s[k].name, s[k].value, src,
				!strcmp(src, "environment") ? " " : "",
				!strcmp(src, "environment") ? s[k].env : "");
	}
	for (size_t k = 0; is_sqlite && k < sizeof(pragmas) / sizeof(pragmas[0]); k++) {
		char v[64];
		if (durq_pragma_get(db, v, sizeof(v), pragmas[k]) < 0)
			continue;
		char name[48];
		snprintf(name, sizeof(name), "pragma %s", pragmas[k]);
		if (arr)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", name, "value",
							     v, "source", "durq profile"));
		else
			fprintf(c->out, "%-26s %-14s %s\n", name, v, "durq profile");
	}
	if (arr)
		cli_json_print(c, json_pack("{s:s, s:o}", "provider", prov, "settings", arr));
	durq_free(db);
	return CLI_OK;
}
