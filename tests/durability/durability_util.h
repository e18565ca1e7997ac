/*
 * durability_util.h — shared by the durability tests: the child → parent record of OK'd
 * calls, item payloads that carry their id and can be verified, scale settings from the
 * environment, and small file helpers. cmocka headers must be included before this file.
 */
#ifndef DURQ_DURABILITY_UTIL_H
#define DURQ_DURABILITY_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit/unit_util.h"

/* Sanitizer builds (CMake DURQ_SANITIZE) run a smaller size by default: 1 = ASan/UBSan,
 * 2 = TSan, 0 = none. */
#ifdef DURQ_TEST_SANITIZED
#define DUR_SANITIZED DURQ_TEST_SANITIZED
#else
#define DUR_SANITIZED 0
#endif
/* Pick the default size for this build. */
#define DUR_BY_BUILD(plain, asan, tsan)                                                    \
	(DUR_SANITIZED == 2 ? (tsan) : DUR_SANITIZED ? (asan) : (plain))

/* One event, written by the child with a single write(2) (atomic on a pipe) and only after
 * the call it reports returned (an "attempt" record: just before the call). */
typedef struct dur_rec {
	uint32_t kind;   /* enum dur_kind */
	uint32_t id;     /* item id */
	int32_t attempt; /* claims: the delivery's attempt */
	uint32_t ticket; /* crash checker: order of calls within one child */
} dur_rec;

enum dur_kind {
	DUR_ENQ_TRY = 'e', /* about to enqueue id */
	DUR_ENQ_OK = 'E',  /* the enqueue returned OK (or its async completion said so) */
	DUR_CLAIM = 'C',   /* a fetch returned id */
	DUR_ACK_TRY = 'a',
	DUR_ACK_OK = 'K',
	DUR_ABN_TRY = 'b',
	DUR_ABN_OK = 'B',
	DUR_READY = 'R'    /* crash checker: the child's handle is open and its threads run */
};

static inline void dur_emit(int fd, int kind, uint32_t id, int attempt, uint32_t ticket)
{
	dur_rec r = {(uint32_t)kind, id, attempt, ticket};
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(5);
}

/* Read exactly one record; 0 at EOF. */
static inline int dur_read(int fd, dur_rec *r)
{
	size_t got = 0;
	while (got < sizeof(*r)) {
		ssize_t n = read(fd, (char *)r + got, sizeof(*r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return 1;
}

/* Payload of item id: 4 bytes of id, then a length and bytes derived from the id alone. */
enum { DUR_PAYLOAD_MAX = 4 + 2100 };

static inline size_t dur_payload(unsigned char *buf, uint32_t id)
{
	uint32_t h = id * 2654435761u;
	size_t len = 4 + (h >> 8) % 2100;
	memcpy(buf, &id, 4);
	for (size_t k = 4; k < len; k++)
		buf[k] = (unsigned char)(id * 131u + k);
	return len;
}

/* The id a payload names if it is exactly the payload of that id, else 0 (ids start at 1). */
static inline uint32_t dur_payload_id(const void *p, size_t len)
{
	unsigned char want[DUR_PAYLOAD_MAX];
	uint32_t id;
	if (len < 4)
		return 0;
	memcpy(&id, p, 4);
	if (id == 0 || dur_payload(want, id) != len || memcmp(want, p, len) != 0)
		return 0;
	return id;
}

static inline long dur_env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 0) : dflt;
}

/* "ok" from PRAGMA integrity_check on path (default VFS, read-write: replays the WAL).
 * Returns 1 if ok; else copies the first message into msg. */
static inline int dur_integrity_ok(const char *path, char *msg, size_t len)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int ok = 0;
	snprintf(msg, len, "cannot open");
	if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(s, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *t = (const char *)sqlite3_column_text(st, 0);
			snprintf(msg, len, "%s", t ? t : "(null)");
			ok = t && !strcmp(t, "ok");
		} else {
			snprintf(msg, len, "%s", sqlite3_errmsg(s));
		}
	} else if (s) {
		snprintf(msg, len, "%s", sqlite3_errmsg(s));
	}
	sqlite3_finalize(st);
	sqlite3_close(s);
	return ok;
}

/* Copy a file (0 on success); a missing source removes the destination and succeeds. */
static inline int dur_copy(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out;
	char buf[65536];
	ssize_t n;
	if (in < 0) {
		unlink(to);
		return errno == ENOENT ? 0 : -1;
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			n = -1;
	close(in);
	close(out);
	return n < 0 ? -1 : 0;
}

/* The wall clock plus an offset in ms (ctx points at the int64 offset). */
static inline int64_t dur_clock_offset(void *ctx)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + *(const int64_t *)ctx;
}

#endif
