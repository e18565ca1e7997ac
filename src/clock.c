/*
 * clock.c — time and randomness: the default wall clock (ms), a monotonic clock for
 * waits, deadline conversion for pthread timed waits, and 128-bit random lease tokens.
 */
#include <errno.h>
#include <sys/random.h>
#include <time.h>

#include "durq_internal.h"

int64_t durq_clock_wall_ms(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t durq_clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Condition variables are created with CLOCK_MONOTONIC, so deadlines are monotonic. */
void durq_deadline_to_timespec(struct timespec *ts, uint64_t mono_deadline_ns)
{
	ts->tv_sec = (time_t)(mono_deadline_ns / 1000000000ull);
	ts->tv_nsec = (long)(mono_deadline_ns % 1000000000ull);
}

int durq_token_random(durq_token *out)
{
	size_t got = 0;
	while (got < sizeof(out->bytes)) {
		ssize_t r = getrandom(out->bytes + got, sizeof(out->bytes) - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return durq_error_set(DURQ_EIO, "getrandom failed: errno %d", errno);
		}
		got += (size_t)r;
	}
	return DURQ_OK;
}
