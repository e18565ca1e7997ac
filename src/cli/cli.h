/*
 * cli.h — shared by the `durq` command's files: the verb table entry, the output buffer
 * (everything a verb prints goes to memory and reaches stdout only if the verb succeeds),
 * errors (one line on stderr: "durq: VERB: DURQ_EXXX: message"), exit codes, opening a
 * URL, and small formatting helpers. Each cli_<group>.c owns one group of verbs.
 */
#ifndef DURQ_CLI_H
#define DURQ_CLI_H

#include <stdio.h>
#include <stdint.h>

#include <jansson.h>

#include "durq.h"
#include "durq/admin.h"

/* Exit codes (durq --help and docs/CLI.md list them). */
enum {
	CLI_DONE = -1,     /* internal: the verb printed its --help; exit 0 */
	CLI_OK = 0,
	CLI_EFAIL = 1,     /* a durq call failed (database busy, I/O, ...) */
	CLI_EUSAGE = 2,    /* unknown verb or option, missing or bad argument */
	CLI_ENOTFOUND = 3, /* no such instance / dead letter / execution */
	CLI_ECORRUPT = 4,  /* integrity check failed, corrupt database, newer schema */
	CLI_EOPEN = 5,     /* cannot open the database (bad URL, missing file, server down) */
	CLI_EINPUT = 6     /* bad import input (malformed line, wrong format or schema) */
};

typedef struct cli {
	const char *verb;   /* "stats", "dead list", ... for messages */
	FILE *out;          /* memory stream; flushed to stdout on success */
	char *buf;
	size_t len;
	int json;
} cli;

typedef int (*cli_verb_fn)(cli *c, int argc, char **argv);

typedef struct cli_verb {
	const char *name;
	const char *sub;    /* NULL, or the sub-verb ("list" of "dead list") */
	cli_verb_fn run;
	const char *usage;  /* --help text */
} cli_verb;

/* errors: print the one line, return the exit code */
int cli_fail(cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A durq error (rc < 0): its name and durq_error_last(); the exit code it maps to. */
int cli_durq_fail(cli *c, int rc);
int cli_usage(cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Open url for a verb. create: a sqlite file may be created (import); else a missing file
 * is an error. */
int cli_open(cli *c, durq **db, const char *url, int create);

/* Parse helpers: 0 on success, else an exit code with the message printed. */
int cli_int64(cli *c, const char *opt, const char *s, int64_t min, int64_t max, int64_t *out);
/* optind-style positional: argv[*i] or a usage error naming what. */
int cli_arg(cli *c, int argc, char **argv, int *i, const char *what, const char **out);
int cli_no_more(cli *c, int argc, char **argv, int i);

/* Print a verb's usage (for --help); returns CLI_DONE so the caller stops there. */
int cli_help(cli *c, const char *usage);

/* formatting */
const char *cli_status_name(int status);
int cli_status_parse(const char *s);
void cli_bytes(char *buf, size_t n, uint64_t bytes);
void cli_age(char *buf, size_t n, int64_t ms);
void cli_time(char *buf, size_t n, int64_t ms_epoch);
/* A payload for humans: the text if printable UTF-8 (truncated to max), else hex. */
void cli_payload_print(FILE *f, const void *p, size_t len, size_t max);
/* JSON: a payload as {"text": ...} when valid UTF-8 without NUL, else {"hex": ...}. */
json_t *cli_json_payload(const void *p, size_t len);
int cli_utf8_valid(const void *p, size_t len);
void cli_hex(char *out, const void *p, size_t len); /* out: 2*len+1 */
int cli_unhex(const char *s, size_t slen, unsigned char *out);
/* Dump j (stolen) as one JSON document and a newline into c->out. */
void cli_json_print(cli *c, json_t *j);

/* verb groups */
int cli_stats(cli *c, int argc, char **argv);
int cli_queues(cli *c, int argc, char **argv);
int cli_top(cli *c, int argc, char **argv);
int cli_dead_list(cli *c, int argc, char **argv);
int cli_dead_show(cli *c, int argc, char **argv);
int cli_dead_requeue(cli *c, int argc, char **argv);
int cli_dead_purge(cli *c, int argc, char **argv);
int cli_work_list(cli *c, int argc, char **argv);
int cli_instance_list(cli *c, int argc, char **argv);
int cli_instance_show(cli *c, int argc, char **argv);
int cli_instance_history(cli *c, int argc, char **argv);
int cli_instance_delete(cli *c, int argc, char **argv);
int cli_instance_tree(cli *c, int argc, char **argv);
int cli_checkpoint(cli *c, int argc, char **argv);
int cli_integrity(cli *c, int argc, char **argv);
int cli_vacuum(cli *c, int argc, char **argv);
int cli_config(cli *c, int argc, char **argv);
int cli_export(cli *c, int argc, char **argv);
int cli_import(cli *c, int argc, char **argv);
int cli_bench(cli *c, int argc, char **argv);
int cli_serve_metrics(cli *c, int argc, char **argv);

extern const cli_verb cli_verbs[];
/* The usage text of the verb being run (for --help inside a verb). */
const char *cli_verb_usage(const cli *c);

/* getopt_long loop with --help and bad options handled; put the verb's cases between. */
#include <getopt.h>
#define CLI_OPTS_BEGIN(c, argc, argv, shortopts, longopts)                                  \
	opterr = 0;                                                                         \
	optind = 0;                                                                         \
	for (int ch_; (ch_ = getopt_long(argc, argv, ":h" shortopts, longopts, NULL)) != -1;) { \
		switch (ch_) {                                                              \
		case 'h':                                                                   \
			return cli_help(c, cli_verb_usage(c));                              \
		case ':':                                                                   \
			return cli_usage(c, "option '%s' needs a value", argv[optind - 1]); \
		case '?':                                                                   \
			return cli_usage(c, "unknown option '%s'", argv[optind - 1]);
#define CLI_OPTS_END                                                                        \
		}                                                                           \
	}
#define CLI_CH ch_

#endif
