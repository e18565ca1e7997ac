/*
 * error.c — error codes, their names, and the per-thread last-error message.
 * Owns nothing shared: the message buffer is thread-local (libgit2's git_error_last()).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "durq_internal.h"

static _Thread_local char last_error[DURQ_ERRMSG_MAX];

const char *durq_error_last(void)
{
	return last_error;
}

int durq_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return code;
}

void durq_error_clear(void)
{
	last_error[0] = '\0';
}

void durq_error_copy(char *buf, size_t len)
{
	snprintf(buf, len, "%s", last_error);
}

const char *durq_error_name(int code)
{
	switch (code) {
	case DURQ_OK: return "DURQ_OK";
	case DURQ_EMPTY: return "DURQ_EMPTY";
	case DURQ_EBUSY: return "DURQ_EBUSY";
	case DURQ_ELOCKLOST: return "DURQ_ELOCKLOST";
	case DURQ_EDUP: return "DURQ_EDUP";
	case DURQ_ENOTFOUND: return "DURQ_ENOTFOUND";
	case DURQ_EINVAL: return "DURQ_EINVAL";
	case DURQ_ETOOBIG: return "DURQ_ETOOBIG";
	case DURQ_ECORRUPT: return "DURQ_ECORRUPT";
	case DURQ_ENOMEM: return "DURQ_ENOMEM";
	case DURQ_EIO: return "DURQ_EIO";
	case DURQ_EFULL: return "DURQ_EFULL";
	case DURQ_ECLOSED: return "DURQ_ECLOSED";
	case DURQ_EAGAIN: return "DURQ_EAGAIN";
	case DURQ_ETIMEDOUT: return "DURQ_ETIMEDOUT";
	case DURQ_ECONFLICT: return "DURQ_ECONFLICT";
	default: return "DURQ_E?";
	}
}

int durq_error_retryable(int code)
{
	return code == DURQ_EBUSY || code == DURQ_EIO || code == DURQ_EFULL || code == DURQ_EAGAIN ||
	       code == DURQ_ETIMEDOUT;
}
