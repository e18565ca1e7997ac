/*
 * log.c — the log callback: formats a message and hands it to options.log with a level
 * and a tag. Silent when no callback is set or the level is above options.log_level.
 */
#include <stdarg.h>
#include <stdio.h>

#include "durq_internal.h"

void durq_log_emit(const durq_options *opts, int level, const char *tag, const char *fmt, ...)
{
	if (!opts || !opts->log || level > opts->log_level)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	opts->log(opts->log_ctx, level, tag, msg);
}
