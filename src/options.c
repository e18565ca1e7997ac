/*
 * options.c — durq_options: defaults, validation, environment overrides.
 * Every value is checked here once; the rest of the core trusts a resolved struct.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "durq_internal.h"

int durq_options_init(durq_options *opts, unsigned int version)
{
	if (!opts)
		return durq_error_set(DURQ_EINVAL, "durq_options_init: opts is NULL");
	if (version != DURQ_OPTIONS_VERSION)
		return durq_error_set(DURQ_EINVAL, "durq_options_init: unsupported version %u (this "
				      "library knows %d)", version, DURQ_OPTIONS_VERSION);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return DURQ_OK;
}

static int parse_int(const char *name, const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi)
		return durq_error_set(DURQ_EINVAL, "%s='%s': expected an integer in %ld..%ld", name,
				      s, lo, hi);
	*out = (int)v;
	return DURQ_OK;
}

static const char *const sync_names[] = {"OFF", "NORMAL", "FULL"}; /* from DURQ_SYNC_OFF */

static int parse_sync(const char *s, int *out)
{
	for (int i = 0; i < 3; i++)
		if (strcasecmp(s, sync_names[i]) == 0) {
			*out = DURQ_SYNC_OFF + i;
			return DURQ_OK;
		}
	return durq_error_set(DURQ_EINVAL, "DURQ_SYNCHRONOUS='%s': expected OFF, NORMAL or FULL",
			      s);
}

static int parse_bool(const char *name, const char *s, int *out)
{
	if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "on")) {
		*out = 1;
		return DURQ_OK;
	}
	if (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "off")) {
		*out = 0;
		return DURQ_OK;
	}
	return durq_error_set(DURQ_EINVAL, "%s='%s': expected 1/0, true/false or on/off", name, s);
}

static const char *sync_label(int s)
{
	return s >= DURQ_SYNC_OFF && s <= DURQ_SYNC_FULL ? sync_names[s - DURQ_SYNC_OFF] : "?";
}

/* An operator's variable that weakens what the caller set explicitly (or, for synchronous,
 * the FULL a file gets by default) is applied, but never silently. Values equal to the
 * caller's are quiet, so resolving an already resolved struct again logs nothing. */
static void warn_weakened(const durq_options *caller, const durq_options *o, int is_memory)
{
	int want = caller->synchronous;
	if (want == DURQ_SYNC_DEFAULT)
		want = is_memory ? DURQ_SYNC_OFF : DURQ_SYNC_FULL;
	if (o->synchronous != caller->synchronous && o->synchronous < want)
		durq_log_emit(o, DURQ_LOG_WARN, "CONFIG", "DURQ_SYNCHRONOUS lowers synchronous from "
			      "%s (%s) to %s", sync_label(want),
			      caller->synchronous == DURQ_SYNC_DEFAULT ? "default" : "caller",
			      sync_label(o->synchronous));
	if (o->commit_mode != caller->commit_mode)
		durq_log_emit(o, DURQ_LOG_WARN, "CONFIG", "DURQ_GROUP_COMMIT changes commit_mode "
			      "from %s (caller) to %s",
			      caller->commit_mode == DURQ_COMMIT_GROUP ? "group" : "per-op",
			      o->commit_mode == DURQ_COMMIT_GROUP ? "group" : "per-op");
	if (caller->max_attempts && o->max_attempts != caller->max_attempts)
		durq_log_emit(o, DURQ_LOG_WARN, "CONFIG", "DURQ_MAX_ATTEMPTS changes max_attempts "
			      "from %d (caller) to %d", caller->max_attempts, o->max_attempts);
	if (caller->busy_timeout_ms && o->busy_timeout_ms != caller->busy_timeout_ms)
		durq_log_emit(o, DURQ_LOG_WARN, "CONFIG", "DURQ_BUSY_TIMEOUT_MS changes "
			      "busy_timeout_ms from %d (caller) to %d", caller->busy_timeout_ms,
			      o->busy_timeout_ms);
}

/* secure_getenv: a set-user-ID or set-group-ID program never takes these from its caller. */
int durq_options_apply_env(durq_options *o, const durq_options *caller, int is_memory)
{
	const char *v;
	int rc, b = 0;
	if ((v = secure_getenv("DURQ_POOL_SIZE")) &&
	    (rc = parse_int("DURQ_POOL_SIZE", v, 5, 20, &o->pool_size)))
		return rc;
	if ((v = secure_getenv("DURQ_MAX_BATCH")) &&
	    (rc = parse_int("DURQ_MAX_BATCH", v, 1, 65536, &o->max_batch)))
		return rc;
	if ((v = secure_getenv("DURQ_BUSY_TIMEOUT_MS")) &&
	    (rc = parse_int("DURQ_BUSY_TIMEOUT_MS", v, 0, 600000, &o->busy_timeout_ms)))
		return rc;
	if ((v = secure_getenv("DURQ_MAX_ATTEMPTS")) &&
	    (rc = parse_int("DURQ_MAX_ATTEMPTS", v, 1, 1000000, &o->max_attempts)))
		return rc;
	if ((v = secure_getenv("DURQ_MAX_TURN_ENTRIES"))) {
		int entries = 0;
		if ((rc = parse_int("DURQ_MAX_TURN_ENTRIES", v, 1, DURQ_MAX_TURN_ENTRIES_LIMIT,
				    &entries)))
			return rc;
		o->max_turn_entries = (size_t)entries;
	}
	if ((v = secure_getenv("DURQ_STATS_PUBLISH_MS"))) {
		int ms = 0;
		if ((rc = parse_int("DURQ_STATS_PUBLISH_MS", v, 0, DURQ_STATS_PUBLISH_MAX_MS, &ms)))
			return rc;
		o->stats_publish_ms = ms ? ms : DURQ_STATS_PUBLISH_OFF; /* 0 = off */
	}
	if ((v = secure_getenv("DURQ_SYNCHRONOUS")) && (rc = parse_sync(v, &o->synchronous)))
		return rc;
	if ((v = secure_getenv("DURQ_GROUP_COMMIT"))) {
		if ((rc = parse_bool("DURQ_GROUP_COMMIT", v, &b)))
			return rc;
		o->commit_mode = b ? DURQ_COMMIT_GROUP : DURQ_COMMIT_PER_OP;
	}
	if (caller)
		warn_weakened(caller, o, is_memory);
	return DURQ_OK;
}

static int validate(const durq_options *o)
{
	if (o->pool_size < 5 || o->pool_size > 20)
		return durq_error_set(DURQ_EINVAL, "pool_size %d out of range: must be 5..20",
				      o->pool_size);
	if (o->max_batch < 1 || o->max_batch > 65536)
		return durq_error_set(DURQ_EINVAL, "max_batch %d out of range: must be 1..65536",
				      o->max_batch);
	if (o->backlog < 4 || o->backlog > (1 << 20) || (o->backlog & (o->backlog - 1)))
		return durq_error_set(DURQ_EINVAL, "backlog %d: must be a power of two in 4..1048576",
				      o->backlog);
	if (o->commit_mode != DURQ_COMMIT_GROUP && o->commit_mode != DURQ_COMMIT_PER_OP)
		return durq_error_set(DURQ_EINVAL, "commit_mode %d: must be DURQ_COMMIT_GROUP or "
				      "DURQ_COMMIT_PER_OP", o->commit_mode);
	if (o->synchronous < DURQ_SYNC_OFF || o->synchronous > DURQ_SYNC_FULL)
		return durq_error_set(DURQ_EINVAL, "synchronous %d: must be a durq_sync value",
				      o->synchronous);
	if (o->busy_timeout_ms < 0 || o->pool_timeout_ms < 0 || o->poll_interval_ms < 1 ||
	    o->max_attempts < 1)
		return durq_error_set(DURQ_EINVAL, "negative timeout, poll interval or max_attempts");
	if (o->max_payload < 1 || o->max_payload > (size_t)1 << 30)
		return durq_error_set(DURQ_EINVAL, "max_payload %zu: must be 1..1073741824",
				      o->max_payload);
	if (o->max_turn_entries < 1 || o->max_turn_entries > DURQ_MAX_TURN_ENTRIES_LIMIT)
		return durq_error_set(DURQ_EINVAL, "max_turn_entries %zu: must be 1..%d",
				      o->max_turn_entries, DURQ_MAX_TURN_ENTRIES_LIMIT);
	if (o->poison_policy < DURQ_POISON_DEAD_LETTER || o->poison_policy > DURQ_POISON_RECORD)
		return durq_error_set(DURQ_EINVAL, "poison_policy %d: must be DURQ_POISON_DEAD_LETTER, "
				      "DURQ_POISON_DELIVER or DURQ_POISON_RECORD", o->poison_policy);
	if (o->stats_publish_ms != DURQ_STATS_PUBLISH_OFF &&
	    (o->stats_publish_ms < 1 || o->stats_publish_ms > DURQ_STATS_PUBLISH_MAX_MS))
		return durq_error_set(DURQ_EINVAL, "stats_publish_ms %d: must be 1..%d, or "
				      "DURQ_STATS_PUBLISH_OFF (-1)", o->stats_publish_ms,
				      DURQ_STATS_PUBLISH_MAX_MS);
	if (o->log_level < DURQ_LOG_ERROR || o->log_level > DURQ_LOG_DEBUG)
		return durq_error_set(DURQ_EINVAL, "log_level %d: must be 1..4 (DURQ_LOG_ERROR..DURQ_LOG_DEBUG)", o->log_level);
	return DURQ_OK;
}

/* Copy in (may be NULL), fill defaults for zero fields, apply the environment, validate.
 * A volatile provider's synchronous default is OFF, a durable one's FULL. */
static int options_resolve(durq_options *out, const durq_options *in, unsigned int flags,
			   bool warn)
{
	int is_memory = (flags & DURQ_PROVIDER_VOLATILE) != 0;
	int rc;
	durq_options none;
	if (in && in->version != DURQ_OPTIONS_VERSION)
		return durq_error_set(DURQ_EINVAL, "options.version %u unsupported (expected %d; use "
				      "DURQ_OPTIONS_INIT)", in->version, DURQ_OPTIONS_VERSION);
	if (in)
		*out = *in;
	else
		durq_options_init(out, DURQ_OPTIONS_VERSION);
	if (!out->pool_size)
		out->pool_size = 8;
	if (!out->pool_timeout_ms)
		out->pool_timeout_ms = 5000;
	if (!out->max_batch)
		out->max_batch = 512;
	if (!out->backlog)
		out->backlog = 4096;
	if (!out->busy_timeout_ms)
		out->busy_timeout_ms = 5000;
	if (!out->max_payload)
		out->max_payload = DURQ_DEFAULT_MAX_PAYLOAD;
	if (!out->max_attempts)
		out->max_attempts = 10;
	if (!out->poll_interval_ms)
		out->poll_interval_ms = 100;
	if (!out->log_level)
		out->log_level = DURQ_LOG_INFO;
	if (!out->max_turn_entries)
		out->max_turn_entries = DURQ_DEFAULT_MAX_TURN_ENTRIES;
	if (!out->stats_publish_ms)
		out->stats_publish_ms = 1000;
	durq_options_init(&none, DURQ_OPTIONS_VERSION);
	if ((rc = durq_options_apply_env(out, warn ? (in ? in : &none) : NULL, is_memory)))
		return rc;
	if (out->synchronous == DURQ_SYNC_DEFAULT)
		out->synchronous = is_memory ? DURQ_SYNC_OFF : DURQ_SYNC_FULL;
	if (!out->clock)
		out->clock = durq_clock_wall_ms;
	return validate(out);
}

/* For providers: the same values, nothing logged (the handle logs once, see below). */
int durq_options_resolve(durq_options *out, const durq_options *in, unsigned int flags)
{
	return options_resolve(out, in, flags, false);
}

int durq_options_resolve_logged(durq_options *out, const durq_options *in, unsigned int flags)
{
	return options_resolve(out, in, flags, true);
}
