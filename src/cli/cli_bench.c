/*
 * cli_bench.c — `durq bench`: runs the default bench, the README's `bash
 * bench/run-default.sh`, from the source tree durq was built from (it builds durq-bench in
 * Release and runs the whole matrix, ~4 minutes). DURQ_BENCH_SCRIPT names another script.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef DURQ_SOURCE_DIR
#define DURQ_SOURCE_DIR "."
#endif

int cli_bench(cli *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return cli_help(c, cli_verb_usage(c));
	const char *script = secure_getenv("DURQ_BENCH_SCRIPT");
	if (!script)
		script = DURQ_SOURCE_DIR "/bench/run-default.sh";
	if (access(script, R_OK) != 0)
		return cli_fail(c, CLI_EOPEN, "DURQ_EIO: the default bench is %s (%s); it needs the "
				"durq source tree (or set DURQ_BENCH_SCRIPT)", script, strerror(errno));
	char **args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args)
		return cli_fail(c, CLI_EFAIL, "DURQ_ENOMEM: out of memory");
	args[0] = "bash";
	args[1] = (char *)script;
	for (int i = 1; i < argc; i++)
		args[i + 1] = argv[i];
	fflush(NULL);
	execvp("bash", args); /* the bench's output is its own: it streams */
	free(args);
	return cli_fail(c, CLI_EFAIL, "DURQ_EIO: cannot run bash: %s", strerror(errno));
}
