/*
 * counting_provider.h — an out-of-tree provider that wraps another one and counts calls
 * (see counting_provider.c). Built against the installed headers only.
 */
#ifndef COUNTING_PROVIDER_H
#define COUNTING_PROVIDER_H

#include <stdatomic.h>

#include <durq.h>
#include <durq/provider.h>

typedef struct counting_provider {
	durq_provider base; /* first: the core sees a durq_provider */
	durq_provider *real;
	atomic_int conns_opened, begins, commits, op_begins, applies, batches, batch_ops;
	atomic_int outside_txn; /* op_apply or op_apply_batch outside a transaction: never */
	atomic_int reads;
	atomic_int *freed;      /* if set, becomes 1 when the provider is freed */
} counting_provider;

/* Wrap r (ownership passes, also on failure). */
int counting_provider_wrap(counting_provider **out, durq_provider *r);
/* Register the scheme "counting": "counting:sqlite:/tmp/q.db". */
int counting_provider_register(void);

#endif
