/*
 * cli_util.c — the `durq` command's plumbing: one-line errors and exit codes, opening a URL
 * (a sqlite file must exist unless the verb creates one), argument parsing, and the
 * formatting every verb shares (sizes, ages, times, payloads for humans and for JSON).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static void vfail(cli *c, const char *name, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (char *p = msg; *p; p++) /* one line, whatever the message held */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "durq: %s: %s%s%s\n", c->verb, name ? name : "", name ? ": " : "", msg);
}

int cli_fail(cli *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(c, code == CLI_EUSAGE ? "usage" : NULL, fmt, ap);
	va_end(ap);
	return code;
}

int cli_usage(cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(c, "usage", fmt, ap);
	va_end(ap);
	fprintf(stderr, "durq: %s: see 'durq %s --help'\n", c->verb, c->verb);
	return CLI_EUSAGE;
}

static int exit_code_of(int rc)
{
	switch (rc) {
	case DURQ_ENOTFOUND:
		return CLI_ENOTFOUND;
	case DURQ_ECORRUPT:
		return CLI_ECORRUPT;
	default:
		return CLI_EFAIL;
	}
}

int cli_durq_fail(cli *c, int rc)
{
	fprintf(stderr, "durq: %s: %s: ", c->verb, durq_error_name(rc));
	const char *m = durq_error_last();
	for (const char *p = m; *p; p++)
		fputc(*p == '\n' ? ' ' : *p, stderr);
	if (!*m)
		fputs("failed", stderr);
	fputc('\n', stderr);
	return exit_code_of(rc);
}

/* sqlite:PATH must name an existing file unless the verb creates one: an operator's typo
 * must not leave a new empty database behind. */
static int check_sqlite_path(cli *c, const char *url)
{
	if (strncasecmp(url, "sqlite:", 7) != 0)
		return 0;
	const char *loc = url + 7;
	size_t n = strcspn(loc, "?");
	if (n == 0 || (n == 8 && !strncmp(loc, ":memory:", 8)))
		return 0;
	char path[4096];
	snprintf(path, sizeof(path), "%.*s", (int)n, loc);
	struct stat st;
	if (stat(path, &st) != 0)
		return cli_fail(c, CLI_EOPEN, "DURQ_EIO: no database at '%s': %s", path,
				strerror(errno));
	return 0;
}

int cli_open(cli *c, durq **db, const char *url, int create)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.pool_size = 5; /* the fewest: a command needs one or two at a time */
	int rc;
	if (!create && (rc = check_sqlite_path(c, url)) != 0)
		return rc;
	if ((rc = durq_open(db, url, &o)) < 0) {
		*db = NULL;
		int code = cli_durq_fail(c, rc);
		return code == CLI_ECORRUPT ? CLI_ECORRUPT : CLI_EOPEN;
	}
	return 0;
}

int cli_int64(cli *c, const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return cli_usage(c, "%s '%s': expected an integer in %lld..%lld", opt, s,
				 (long long)min, (long long)max);
	*out = v;
	return 0;
}

int cli_arg(cli *c, int argc, char **argv, int *i, const char *what, const char **out)
{
	if (*i >= argc)
		return cli_usage(c, "missing %s", what);
	*out = argv[(*i)++];
	return 0;
}

int cli_no_more(cli *c, int argc, char **argv, int i)
{
	return i < argc ? cli_usage(c, "unexpected argument '%s'", argv[i]) : 0;
}

int cli_help(cli *c, const char *usage)
{
	fprintf(c->out, "%s", usage);
	return CLI_DONE;
}

static const char *const status_names[] = {"pending", "running", "completed", "failed",
					   "continued-as-new", "terminated"};

const char *cli_status_name(int s)
{
	return s >= 0 && s < 6 ? status_names[s] : "unknown";
}

int cli_status_parse(const char *s)
{
	for (int i = 0; i < 6; i++)
		if (!strcasecmp(s, status_names[i]))
			return i;
	return -1;
}

void cli_bytes(char *buf, size_t n, uint64_t b)
{
	if (b < 1024)
		snprintf(buf, n, "%llu B", (unsigned long long)b);
	else if (b < 1024 * 1024)
		snprintf(buf, n, "%.1f KiB", (double)b / 1024);
	else if (b < 1024ull * 1024 * 1024)
		snprintf(buf, n, "%.1f MiB", (double)b / (1024 * 1024));
	else
		snprintf(buf, n, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
}

void cli_age(char *buf, size_t n, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (ms < 10000)
		snprintf(buf, n, "%lld ms", (long long)ms);
	else if (ms < 120000)
		snprintf(buf, n, "%lld s", (long long)(ms / 1000));
	else if (ms < 7200000)
		snprintf(buf, n, "%lld min", (long long)(ms / 60000));
	else
		snprintf(buf, n, "%lld h", (long long)(ms / 3600000));
}

void cli_time(char *buf, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms <= 0 || !gmtime_r(&t, &tm)) {
		snprintf(buf, n, "-");
		return;
	}
	size_t w = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + w, n - w, ".%03dZ", (int)(ms % 1000));
}

int cli_utf8_valid(const void *p, size_t len)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < len;) {
		unsigned char b = s[i];
		size_t k;
		if (b == 0)
			return 0;
		else if (b < 0x80)
			k = 0;
		else if (b >= 0xC2 && b <= 0xDF)
			k = 1;
		else if ((b & 0xF0) == 0xE0)
			k = 2;
		else if (b >= 0xF0 && b <= 0xF4)
			k = 3;
		else
			return 0;
		if (len - i - 1 < k)
			return 0;
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
		i += k + 1;
	}
	return 1;
}

void cli_hex(char *out, const void *p, size_t len)
{
	static const char d[] = "0123456789abcdef";
	const unsigned char *s = p;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = d[s[i] >> 4];
		out[2 * i + 1] = d[s[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
	     : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

int cli_unhex(const char *s, size_t slen, unsigned char *out)
{
	if (slen % 2)
		return -1;
	for (size_t i = 0; i < slen / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void cli_payload_print(FILE *f, const void *p, size_t len, size_t max)
{
	const unsigned char *s = p;
	int printable = cli_utf8_valid(p, len);
	for (size_t i = 0; i < len && printable; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			printable = 0;
	size_t n = len > max ? max : len;
	if (printable) {
		fprintf(f, "%.*s", (int)n, (const char *)p);
	} else {
		fputs("hex:", f);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%02x", s[i]);
	}
	if (len > max)
		fprintf(f, "... (%zu bytes)", len);
}

json_t *cli_json_payload(const void *p, size_t len)
{
	if (!p)
		return json_null();
	json_t *t = json_stringn((const char *)p, len); /* NULL unless valid UTF-8 */
	if (t)
		return json_pack("{s:o}", "text", t);
	char *h = malloc(2 * len + 1);
	if (!h)
		return json_null();
	cli_hex(h, p, len);
	json_t *j = json_pack("{s:s}", "hex", h);
	free(h);
	return j;
}

void cli_json_print(cli *c, json_t *j)
{
	if (!j)
		return;
	json_dumpf(j, c->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', c->out);
	json_decref(j);
}
