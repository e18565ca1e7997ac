/*
 * cli_export.c — `durq export` and `durq import`: every row of every durq table as JSON
 * lines (jansson does all the encoding) and back, all or nothing.
 *
 * Format 1, one JSON object per line:
 *   {"format":"durq-export","format_version":1,"provider":P,"schema_version":N,"durq_version":V}
 *   {"table":T,"columns":[...]}                      before each table's rows
 *   {"t":T,"r":[cell,...]}                           a row; cell = integer | null | string |
 *                                                    {"b":HEX} (bytes) | {"tx":HEX} (text
 *                                                    that is not valid UTF-8)
 *   {"end":true,"tables":K,"rows":M}                 last line: a truncated file is refused
 * Leases are not exported (durq_db_export drops them); attempts are.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "durq/provider.h"

#define FORMAT_VERSION 1
#define MAX_COLS 64

/* ---- export ------------------------------------------------------------------------- */

typedef struct export_ctx {
	FILE *out;
	size_t rows, tables;
} export_ctx;

static json_t *cell_json(const durq_cell *x)
{
	char *h;
	json_t *j;
	switch (x->type) {
	case DURQ_CELL_INT:
		return json_integer((json_int_t)x->i);
	case DURQ_CELL_TEXT:
		if ((j = json_stringn(x->p, x->len)))
			return j;
		/* not UTF-8: kept byte for byte as hex */
		__attribute__((fallthrough));
	case DURQ_CELL_BLOB:
		if (!(h = malloc(2 * x->len + 1)))
			return NULL;
		cli_hex(h, x->p, x->len);
		j = json_pack("{s:s}", x->type == DURQ_CELL_BLOB ? "b" : "tx", h);
		free(h);
		return j;
	default:
		return json_null();
	}
}

static int put_line(export_ctx *x, json_t *j)
{
	if (!j)
		return durq_error_set(DURQ_ENOMEM, "export: out of memory");
	int rc = json_dumpf(j, x->out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(j);
	if (rc != 0 || fputc('\n', x->out) == EOF)
		return durq_error_set(DURQ_EIO, "export: cannot write: %s", strerror(errno));
	return DURQ_OK;
}

static int export_row(void *ctx, const durq_row *row)
{
	export_ctx *x = ctx;
	if (!row->cells) {
		json_t *cols = json_array();
		for (size_t i = 0; i < row->n; i++)
			json_array_append_new(cols, json_string(row->columns[i]));
		x->tables++;
		return put_line(x, json_pack("{s:s, s:o}", "table", row->table, "columns", cols));
	}
	json_t *r = json_array();
	for (size_t i = 0; i < row->n; i++) {
		json_t *cj = cell_json(&row->cells[i]);
		if (!cj) {
			json_decref(r);
			return durq_error_set(DURQ_ENOMEM, "export: out of memory");
		}
		json_array_append_new(r, cj);
	}
	x->rows++;
	return put_line(x, json_pack("{s:s, s:o}", "t", row->table, "r", r));
}

/* The rows go to a temporary file first; the header needs the provider's info, which the
 * export fills as it starts. */
static int export_all(cli *c, durq *db, FILE *dest)
{
	durq_export_info info = {.version = DURQ_EXPORT_INFO_VERSION};
	export_ctx x = {.out = tmpfile()};
	int rc;
	if (!x.out)
		return cli_fail(c, CLI_EFAIL, "DURQ_EIO: cannot create a temporary file: %s",
				strerror(errno));
	if ((rc = durq_db_export(db, &info, export_row, &x)) < 0) {
		fclose(x.out);
		return cli_durq_fail(c, rc);
	}
	export_ctx head = {.out = dest};
	put_line(&head, json_pack("{s:s, s:i, s:s, s:i, s:s}", "format", "durq-export",
				  "format_version", FORMAT_VERSION, "provider", info.provider,
				  "schema_version", info.schema_version, "durq_version",
				  DURQ_VERSION_STRING));
	rewind(x.out);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), x.out)) > 0)
		fwrite(buf, 1, n, dest);
	int err = ferror(x.out);
	fclose(x.out);
	if (err)
		return cli_fail(c, CLI_EFAIL, "DURQ_EIO: cannot read back the temporary file");
	rc = put_line(&head, json_pack("{s:b, s:I, s:I}", "end", 1, "tables",
				       (json_int_t)x.tables, "rows", (json_int_t)x.rows));
	return rc < 0 ? cli_durq_fail(c, rc) : CLI_OK;
}

int cli_export(cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *url, *file = NULL;
	durq *db;
	int rc;
	CLI_OPTS_BEGIN(c, argc, argv, "o:", opts)
	case 'o':
		file = optarg;
		break;
	CLI_OPTS_END
	int i = optind;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0 || (rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	if (!file) {
		rc = export_all(c, db, c->out); /* stdout only if it all worked */
		durq_free(db);
		return rc;
	}
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", file, (long)getpid());
	FILE *f = fopen(tmp, "wx");
	if (!f) {
		durq_free(db);
		return cli_fail(c, CLI_EFAIL, "DURQ_EIO: cannot create '%s': %s", tmp,
				strerror(errno));
	}
	rc = export_all(c, db, f);
	durq_free(db);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = rc ? rc : cli_fail(c, CLI_EFAIL, "DURQ_EIO: cannot write '%s'", tmp);
	fclose(f);
	if (rc == CLI_OK && rename(tmp, file) != 0)
		rc = cli_fail(c, CLI_EFAIL, "DURQ_EIO: cannot rename '%s' to '%s': %s", tmp, file,
			      strerror(errno));
	if (rc != CLI_OK)
		unlink(tmp);
	return rc;
}

/* ---- import ------------------------------------------------------------------------- */

typedef struct import_ctx {
	FILE *in;
	size_t line_no;
	char *line;
	size_t cap;
	char table[128];
	char *cols[MAX_COLS];
	size_t ncols;
	size_t rows, tables;
	int ended;
	int input_error;      /* the file is at fault (exit 6) */
	durq_cell cells[MAX_COLS];
	unsigned char *bufs[MAX_COLS];
	json_t *doc;
} import_ctx;

static int bad(import_ctx *x, const char *fmt, const char *detail)
{
	x->input_error = 1;
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, detail ? detail : "");
	return durq_error_set(DURQ_EINVAL, "line %zu: %s", x->line_no, msg);
}

/* The next line as a JSON object; NULL at the end of input (x->line_no unchanged). */
static json_t *next_json(import_ctx *x, int *rc)
{
	json_error_t e;
	*rc = DURQ_OK;
	ssize_t n = getline(&x->line, &x->cap, x->in);
	if (n < 0)
		return NULL;
	x->line_no++;
	json_t *j = json_loadb(x->line, (size_t)n, JSON_REJECT_DUPLICATES, &e);
	if (!j || !json_is_object(j)) {
		*rc = bad(x, "not a JSON object: %s", j ? "another JSON value" : e.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

static void cells_clear(import_ctx *x)
{
	for (size_t i = 0; i < MAX_COLS; i++) {
		free(x->bufs[i]);
		x->bufs[i] = NULL;
	}
	json_decref(x->doc);
	x->doc = NULL;
}

static int table_line(import_ctx *x, json_t *j)
{
	json_t *t = json_object_get(j, "table"), *cols = json_object_get(j, "columns");
	if (!json_is_string(t) || !json_is_array(cols) || json_array_size(cols) == 0 ||
	    json_array_size(cols) > MAX_COLS)
		return bad(x, "a table line needs \"table\" and 1..64 \"columns\"%s", NULL);
	for (size_t i = 0; i < x->ncols; i++)
		free(x->cols[i]);
	x->ncols = 0;
	snprintf(x->table, sizeof(x->table), "%s", json_string_value(t));
	for (size_t i = 0; i < json_array_size(cols); i++) {
		json_t *c = json_array_get(cols, i);
		if (!json_is_string(c))
			return bad(x, "column names must be strings%s", NULL);
		x->cols[x->ncols++] = strdup(json_string_value(c));
	}
	x->tables++;
	return DURQ_OK;
}

static int hex_cell(import_ctx *x, size_t i, const char *hex, int type)
{
	size_t len = strlen(hex);
	if (!(x->bufs[i] = malloc(len / 2 + 1)))
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	if (cli_unhex(hex, len, x->bufs[i]) != 0)
		return bad(x, "bad hex in column %s", x->cols[i]);
	x->cells[i] = (durq_cell){.type = type, .p = x->bufs[i], .len = len / 2};
	return DURQ_OK;
}

static int cell_of(import_ctx *x, size_t i, json_t *v)
{
	json_t *h;
	if (json_is_null(v)) {
		x->cells[i] = (durq_cell){.type = DURQ_CELL_NULL};
	} else if (json_is_integer(v)) {
		x->cells[i] = (durq_cell){.type = DURQ_CELL_INT, .i = json_integer_value(v)};
	} else if (json_is_string(v)) {
		x->cells[i] = (durq_cell){.type = DURQ_CELL_TEXT, .p = json_string_value(v),
					  .len = json_string_length(v)};
	} else if (json_is_object(v) && json_object_size(v) == 1 &&
		   ((h = json_object_get(v, "b")) || (h = json_object_get(v, "tx"))) &&
		   json_is_string(h)) {
		return hex_cell(x, i, json_string_value(h),
				json_object_get(v, "b") ? DURQ_CELL_BLOB : DURQ_CELL_TEXT);
	} else {
		return bad(x, "column %s: expected an integer, null, a string, {\"b\":hex} or "
			   "{\"tx\":hex}", x->cols[i]);
	}
	return DURQ_OK;
}

static int row_line(import_ctx *x, json_t *j, durq_row *row)
{
	json_t *t = json_object_get(j, "t"), *r = json_object_get(j, "r");
	int rc;
	if (!x->ncols || !json_is_string(t) || strcmp(json_string_value(t), x->table) != 0)
		return bad(x, "a row of table '%s' outside its table section",
			   json_is_string(t) ? json_string_value(t) : "?");
	if (!json_is_array(r) || json_array_size(r) != x->ncols)
		return bad(x, "a row of %s must have one value per column", x->table);
	for (size_t i = 0; i < x->ncols; i++)
		if ((rc = cell_of(x, i, json_array_get(r, i))) < 0)
			return rc;
	*row = (durq_row){.table = x->table, .columns = (const char *const *)x->cols,
			  .cells = x->cells, .n = x->ncols};
	x->rows++;
	return DURQ_OK;
}

static int end_line(import_ctx *x, json_t *j)
{
	json_t *rows = json_object_get(j, "rows"), *tables = json_object_get(j, "tables");
	if (!json_is_integer(rows) || (size_t)json_integer_value(rows) != x->rows ||
	    !json_is_integer(tables) || (size_t)json_integer_value(tables) != x->tables)
		return bad(x, "the end line's counts do not match the rows read%s", NULL);
	x->ended = 1;
	int rc;
	json_t *more = next_json(x, &rc);
	if (more || rc < 0) {
		json_decref(more);
		return rc < 0 ? rc : bad(x, "a line after the end line%s", NULL);
	}
	return DURQ_EMPTY;
}

/* durq_import_fn: table lines are consumed here; the next row goes to the provider. */
static int import_next(void *ctx, durq_row *row)
{
	import_ctx *x = ctx;
	int rc;
	cells_clear(x);
	for (;;) {
		json_t *j = next_json(x, &rc);
		if (!j)
			return rc < 0 ? rc : bad(x, "the input ends without its end line (truncated?)%s",
						 NULL);
		if (json_object_get(j, "end")) {
			rc = end_line(x, j);
			json_decref(j);
			return rc;
		}
		if (json_object_get(j, "table")) {
			rc = table_line(x, j);
			json_decref(j);
			if (rc < 0)
				return rc;
			continue;
		}
		x->doc = j; /* the row's strings point into it */
		return row_line(x, j, row);
	}
}

static const char *family(const char *provider)
{
	return !strncmp(provider, "sqlite", 6) ? "sqlite" : provider;
}

/* The header, checked before anything is written. */
static int check_header(cli *c, import_ctx *x, json_t **hdr)
{
	int rc;
	json_t *j = next_json(x, &rc);
	if (!j)
		return cli_fail(c, CLI_EINPUT, "DURQ_EINVAL: %s", rc < 0 ? durq_error_last()
									 : "empty input");
	json_t *f = json_object_get(j, "format"), *v = json_object_get(j, "format_version");
	json_t *p = json_object_get(j, "provider"), *s = json_object_get(j, "schema_version");
	if (!json_is_string(f) || strcmp(json_string_value(f), "durq-export") != 0 ||
	    !json_is_integer(v) || !json_is_string(p) || !json_is_integer(s)) {
		json_decref(j);
		return cli_fail(c, CLI_EINPUT, "DURQ_EINVAL: line 1: not a durq export header");
	}
	if (json_integer_value(v) != FORMAT_VERSION) {
		long long got = json_integer_value(v);
		json_decref(j);
		return cli_fail(c, CLI_EINPUT, "DURQ_EINVAL: export format %lld; this durq reads "
				"format %d", got, FORMAT_VERSION);
	}
	*hdr = j;
	return CLI_OK;
}

static int check_schema(cli *c, durq *db, json_t *hdr)
{
	int mine, rc = durq_db_schema_version(db, &mine);
	if (rc < 0)
		return cli_durq_fail(c, rc);
	const char *theirs = json_string_value(json_object_get(hdr, "provider"));
	long long sv = json_integer_value(json_object_get(hdr, "schema_version"));
	const char *prov = durq_provider_of(db)->name;
	if (strcmp(family(theirs), family(prov)) == 0 && sv != mine)
		return cli_fail(c, CLI_EINPUT, "DURQ_EINVAL: the export is of %s schema version %lld, "
				"this database has version %d (%s); nothing was written", theirs, sv,
				mine, sv > mine ? "export from a newer durq" : "upgrade it first");
	return CLI_OK;
}

int cli_import(cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"input", required_argument, NULL, 'i'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *url, *file = NULL;
	import_ctx x = {0};
	json_t *hdr = NULL;
	durq *db = NULL;
	size_t rows = 0;
	int rc;
	CLI_OPTS_BEGIN(c, argc, argv, "i:", opts)
	case 'i':
		file = optarg;
		break;
	CLI_OPTS_END
	int i = optind;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0)
		return rc;
	x.in = file ? fopen(file, "r") : stdin;
	if (!x.in)
		return cli_fail(c, CLI_EINPUT, "DURQ_EIO: cannot open '%s': %s", file, strerror(errno));
	if ((rc = check_header(c, &x, &hdr)) == CLI_OK && (rc = cli_open(c, &db, url, 1)) == CLI_OK &&
	    (rc = check_schema(c, db, hdr)) == CLI_OK) {
		int drc = durq_db_import(db, &rows, import_next, &x);
		if (drc < 0)
			rc = x.input_error || drc == DURQ_EINVAL || drc == DURQ_EDUP
				     ? (cli_durq_fail(c, drc), CLI_EINPUT) : cli_durq_fail(c, drc);
		else
			fprintf(c->out, "imported %zu rows in %zu tables\n", rows, x.tables);
	}
	cells_clear(&x);
	for (size_t k = 0; k < x.ncols; k++)
		free(x.cols[k]);
	free(x.line);
	json_decref(hdr);
	if (file && x.in)
		fclose(x.in);
	durq_free(db);
	return rc;
}
