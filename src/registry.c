/*
 * registry.c — which provider a URL opens: the process-wide scheme registry
 * (durq_provider_register, like sqlite3_vfs_register), URL splitting into scheme, location
 * and percent-decoded query parameters, and durq_provider_new.
 *
 * Owns: the registered schemes (a mutex-guarded array: the one piece of process-wide state,
 * by design, since durq_open has no handle yet). The built-in schemes come from
 * providers/builtin.c; the core names no provider.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "builtin.h"
#include "durq_internal.h"

#define REGISTRY_MAX 32
#define SCHEME_MAX 32
#define URL_PARAMS_MAX 32

typedef struct registration {
	char scheme[SCHEME_MAX + 1];
	durq_provider_factory factory;
	void *ctx;
} registration;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static registration registry[REGISTRY_MAX];
static size_t registry_n;

static int scheme_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > SCHEME_MAX || !isalpha((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("+-.", s[i]))
			return 0;
	return 1;
}

/* Index of scheme in the registry, or -1. Caller holds registry_mu. */
static int registry_find(const char *scheme)
{
	for (size_t i = 0; i < registry_n; i++)
		if (!strcasecmp(registry[i].scheme, scheme))
			return (int)i;
	return -1;
}

int durq_provider_register(const char *scheme, durq_provider_factory factory, void *ctx)
{
	if (!scheme_valid(scheme) || !factory)
		return durq_error_set(DURQ_EINVAL, "durq_provider_register: %s", !factory
				      ? "factory is NULL" : "scheme must be 1..32 letters, digits, "
				      "'+', '-' or '.', starting with a letter");
	int rc = DURQ_OK;
	pthread_mutex_lock(&registry_mu);
	int i = registry_find(scheme);
	if (i < 0 && registry_n == REGISTRY_MAX) {
		rc = durq_error_set(DURQ_EFULL, "durq_provider_register: %d schemes registered "
				    "already", REGISTRY_MAX);
	} else {
		registration *r = &registry[i < 0 ? registry_n++ : (size_t)i];
		strcpy(r->scheme, scheme);
		r->factory = factory;
		r->ctx = ctx;
	}
	pthread_mutex_unlock(&registry_mu);
	return rc;
}

int durq_provider_unregister(const char *scheme)
{
	if (!scheme_valid(scheme))
		return durq_error_set(DURQ_EINVAL, "durq_provider_unregister: bad scheme");
	pthread_mutex_lock(&registry_mu);
	int i = registry_find(scheme);
	if (i >= 0)
		registry[i] = registry[--registry_n];
	pthread_mutex_unlock(&registry_mu);
	return i >= 0 ? DURQ_OK : durq_error_set(DURQ_ENOTFOUND, "durq_provider_unregister: "
						 "'%s' is not registered", scheme);
}

/* The factory for scheme: a registration first, then a built-in. */
static int factory_for(const char *scheme, durq_provider_factory *f, void **ctx)
{
	pthread_mutex_lock(&registry_mu);
	int i = registry_find(scheme);
	if (i >= 0) {
		*f = registry[i].factory;
		*ctx = registry[i].ctx;
	}
	pthread_mutex_unlock(&registry_mu);
	if (i >= 0)
		return DURQ_OK;
	size_t n;
	const durq_builtin_provider *b = durq_builtin_providers(&n);
	for (size_t k = 0; k < n; k++)
		if (!strcasecmp(b[k].scheme, scheme)) {
			*f = b[k].factory;
			*ctx = NULL;
			return DURQ_OK;
		}
	return DURQ_ENOTFOUND;
}

static int hex(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Percent-decode s in place ('+' stays '+'); 0 if a %XX is malformed or decodes to NUL. */
static int pct_decode(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hex((unsigned char)r[1]), lo = hi < 0 ? -1 : hex((unsigned char)r[2]);
		if (lo < 0 || (hi | lo) == 0)
			return 0;
		*w++ = (char)(hi << 4 | lo);
		r += 2;
	}
	*w = '\0';
	return 1;
}

typedef struct parsed_url {
	char *buf; /* one copy of the URL, cut into the pieces below */
	char scheme[SCHEME_MAX + 1];
	durq_provider_param params[URL_PARAMS_MAX];
	durq_provider_config cfg;
} parsed_url;

static int parse_query(parsed_url *u, char *q, const char *url)
{
	for (char *tok = q; tok && *tok;) {
		char *next = strchr(tok, '&');
		if (next)
			*next++ = '\0';
		if (*tok) {
			if (u->cfg.n_params == URL_PARAMS_MAX)
				return durq_error_set(DURQ_EINVAL, "durq_open: more than %d URL "
						      "parameters", URL_PARAMS_MAX);
			char *eq = strchr(tok, '=');
			if (eq)
				*eq++ = '\0';
			if (!pct_decode(tok) || (eq && !pct_decode(eq)) || !*tok)
				return durq_error_set(DURQ_EINVAL, "durq_open: malformed URL parameter "
						      "in '%.200s'", url);
			u->params[u->cfg.n_params++] = (durq_provider_param){tok, eq ? eq : ""};
		}
		tok = next;
	}
	return DURQ_OK;
}

static int parse_url(parsed_url *u, const char *url, const durq_options *opts)
{
	memset(u, 0, sizeof(*u));
	const char *colon = url ? strchr(url, ':') : NULL;
	size_t sn = colon ? (size_t)(colon - url) : 0;
	if (!colon || sn > SCHEME_MAX)
		return durq_error_set(DURQ_EINVAL, "durq_open: '%.64s' has no scheme (expected "
				      "sqlite:path, sqlite::memory: or postgresql://...)", url);
	memcpy(u->scheme, url, sn);
	if (!scheme_valid(u->scheme))
		return durq_error_set(DURQ_EINVAL, "durq_open: bad scheme in '%.64s'", url);
	if (!(u->buf = strdup(colon + 1)))
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	u->cfg = (durq_provider_config){.url = url, .scheme = u->scheme, .location = u->buf,
					.params = u->params, .opts = opts};
	char *q = strchr(u->buf, '?');
	if (q)
		*q++ = '\0';
	return q ? parse_query(u, q, url) : DURQ_OK;
}

int durq_provider_new(durq_provider **out, const char *url, const durq_options *opts)
{
	parsed_url u;
	durq_provider_factory f = NULL;
	void *ctx = NULL;
	if (!out)
		return durq_error_set(DURQ_EINVAL, "durq_provider_new: out is NULL");
	*out = NULL;
	if (!url)
		return durq_error_set(DURQ_EINVAL, "durq_open: url is NULL");
	int rc = parse_url(&u, url, opts);
	if (rc == DURQ_OK && factory_for(u.scheme, &f, &ctx) < 0)
		rc = durq_error_set(DURQ_EINVAL, "durq_open: unknown URL scheme '%s' in '%.64s' "
				    "(built in: %s; others with durq_provider_register)", u.scheme,
				    url, durq_builtin_schemes());
	if (rc == DURQ_OK && (rc = f(out, &u.cfg, ctx)) == DURQ_OK && !*out)
		rc = durq_error_set(DURQ_EINVAL, "provider factory for '%s' returned no provider",
				    u.scheme);
	free(u.buf);
	return rc;
}
