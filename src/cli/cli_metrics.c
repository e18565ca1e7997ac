/*
 * cli_metrics.c — `durq serve-metrics URL --listen HOST:PORT`: Prometheus text on
 * /metrics (libmicrohttpd, its own thread), 404 elsewhere, until SIGINT or SIGTERM.
 * The text is durq_stats_prometheus of this handle plus the database-wide counters of
 * durq_db_activity_get (commits and rows of every process), so a scrape shows the load of
 * the processes that use the database, not only this one's reads.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "cli.h"

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < *cap - *len) {
			*len += (size_t)n;
			return;
		}
		char *p = realloc(*buf, *cap * 2 + (size_t)n);
		if (!p)
			return;
		*buf = p;
		*cap = *cap * 2 + (size_t)n;
	}
}

/* The whole exposition in a malloc'd buffer, or NULL (error set). */
static char *render(durq *db, size_t *out_len)
{
	size_t need = 0, cap;
	int rc = durq_stats_prometheus(db, NULL, 0, &need);
	if (rc < 0 && rc != DURQ_ETOOBIG)
		return NULL;
	cap = need + 4096;
	char *buf = malloc(cap);
	if (!buf || (rc = durq_stats_prometheus(db, buf, cap, &need)) < 0) {
		free(buf);
		return NULL;
	}
	size_t len = need;
	durq_db_activity a = {.version = DURQ_DB_ACTIVITY_VERSION};
	if (durq_db_activity_get(db, &a) == DURQ_OK) {
		if (a.commits != DURQ_ACTIVITY_UNKNOWN)
			append(&buf, &len, &cap, "# HELP durq_db_commits_total Write transactions "
			       "committed to the database by every process (SQLite: 32-bit WAL "
			       "counter).\n# TYPE durq_db_commits_total counter\n"
			       "durq_db_commits_total %llu\n", (unsigned long long)a.commits);
		if (a.rows_written != DURQ_ACTIVITY_UNKNOWN)
			append(&buf, &len, &cap, "# HELP durq_db_rows_written_total Rows inserted, "
			       "updated or deleted in the database by every process.\n# TYPE "
			       "durq_db_rows_written_total counter\ndurq_db_rows_written_total %llu\n",
			       (unsigned long long)a.rows_written);
	}
	*out_len = len;
	return buf;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, char *body,
			     size_t len, const char *type)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	durq *db = cls;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("method not allowed\n"), 19,
			     "text/plain");
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, strdup("not found: try /metrics\n"), 24,
			     "text/plain");
	size_t len = 0;
	char *body = render(db, &len);
	if (!body) {
		char msg[400];
		int n = snprintf(msg, sizeof(msg), "durq: %s\n", durq_error_last());
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, strdup(msg),
			     (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1), "text/plain");
	}
	return reply(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8");
}

/* HOST:PORT, IPv4 literal (or "localhost"), port 0..65535. */
static int parse_listen(cli *c, const char *s, struct sockaddr_in *sa)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	int64_t port;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return cli_usage(c, "--listen '%s': expected HOST:PORT, e.g. 127.0.0.1:9464", s);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	int rc = cli_int64(c, "--listen port", colon + 1, 0, 65535, &port);
	if (rc != 0)
		return rc;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return cli_usage(c, "--listen '%s': '%s' is not an IPv4 address", s, host);
	return 0;
}

int cli_serve_metrics(cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *url, *listen = "127.0.0.1:9464";
	struct sockaddr_in sa;
	durq *db;
	int rc;
	CLI_OPTS_BEGIN(c, argc, argv, "l:", opts)
	case 'l':
		listen = optarg;
		break;
	CLI_OPTS_END
	int i = optind;
	if ((rc = cli_arg(c, argc, argv, &i, "URL", &url)) != 0 ||
	    (rc = cli_no_more(c, argc, argv, i)) != 0 || (rc = parse_listen(c, listen, &sa)) != 0)
		return rc;
	/* blocked before any thread starts (durq's, microhttpd's): only sigwait sees them */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((rc = cli_open(c, &db, url, 0)) != 0)
		return rc;
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handle, db,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)30, MHD_OPTION_END);
	if (!d) {
		durq_free(db);
		return cli_fail(c, CLI_EOPEN, "DURQ_EIO: cannot listen on %s (in use, or not an "
				"address of this machine)", listen);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	char host[64];
	inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
	printf("listening on http://%s:%u/metrics\n", host,
	       info ? (unsigned)info->port : (unsigned)ntohs(sa.sin_port));
	fflush(stdout);
	int sig = 0;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	durq_free(db);
	return CLI_OK;
}
