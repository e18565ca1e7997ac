/*
 * unit_util.h — helpers shared by the unit tests: temp dirs, an injectable clock, a
 * handle opener. cmocka headers must be included before this file.
 */
#ifndef DURQ_UNIT_UTIL_H
#define DURQ_UNIT_UTIL_H

#include <ck_pr.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durq.h"

typedef struct test_clock {
	int64_t now;
} test_clock;

static inline int64_t test_clock_read(void *ctx)
{
	return (int64_t)ck_pr_load_64((uint64_t *)&((test_clock *)ctx)->now);
}

static inline void test_clock_advance(test_clock *c, int64_t ms)
{
	ck_pr_add_64((uint64_t *)&c->now, (uint64_t)ms);
}

/* A fresh directory under TMPDIR; caller frees the string. */
static inline char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *dir = malloc(PATH_MAX);
	snprintf(dir, PATH_MAX, "%s/durq-unit-XXXXXX", base);
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

static inline void test_rmdir(char *dir)
{
	char cmd[PATH_MAX + 16];
	if (!dir)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(dir);
}

static inline char *test_url(const char *dir, const char *file)
{
	char *url = malloc(PATH_MAX);
	snprintf(url, PATH_MAX, "sqlite:%s/%s", dir, file);
	return url;
}

/* A fixture: a fresh temp dir, a URL in it, and the handle a test opens (may stay NULL). */
typedef struct fx {
	char *dir;
	char *url;
	durq *db;
} fx;

static inline fx *fx_new(const char *file)
{
	fx *f = calloc(1, sizeof(*f));
	f->dir = test_tmpdir();
	f->url = test_url(f->dir, file);
	return f;
}

/* cmocka teardown: frees the handle (if any), the dir and the fixture. */
static inline int fx_teardown(void **state)
{
	fx *f = *state;
	durq_free(f->db);
	test_rmdir(f->dir);
	free(f->url);
	free(f);
	return 0;
}

#endif
