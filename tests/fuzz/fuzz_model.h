/*
 * fuzz_model.h — a small reference model of durq's queue contract for fuzz_api: worker
 * items (queue, priority, visibility, lease, attempts), orchestration messages and
 * instances (tags, instance leases, executions, history), dead letters. Each m_* function
 * predicts one call's result from the model and, when the call succeeds, applies it; the
 * fuzz target then compares the prediction with what durq did. Time is the model's clock,
 * which the fuzz target also gives durq (options.clock).
 *
 * Rules modelled (README "The contract", durq.h): FIFO by priority then age; a fetch leases
 * ready items and items whose lease expired, counting an attempt, and dead-letters an item
 * past max_attempts instead of delivering it; ack/abandon/renew need the current token and a
 * live lease (else DURQ_ELOCKLOST); the orchestration fetch leases the instance whose lease
 * expired first (oldest expiry), else the one with the oldest ready message, and tags all
 * its visible messages; a turn is atomic (DURQ_ELOCKLOST, DURQ_EINVAL for a wrong execution,
 * DURQ_EDUP for a history event id already there change nothing).
 */
#ifndef DURQ_TESTS_FUZZ_MODEL_H
#define DURQ_TESTS_FUZZ_MODEL_H

#include <stdint.h>

#include "durq.h"

#define M_QUEUES 3    /* "" (the default queue), "a", "b" */
#define M_INSTANCES 4 /* "i0" .. "i3" */
#define M_ITEMS 1024
#define M_MSGS 1024
#define M_DEAD (M_ITEMS + M_MSGS) /* each item or message is dead at most once at a time */
#define M_PAYLOAD 16

typedef struct m_item {
	int live;
	int queue;
	int inst;             /* owning instance, -1 for plain work */
	int prio;
	int64_t visible_at;
	int leased;           /* lock_token set */
	durq_token token, prev_token;
	int64_t lease_until;
	int attempt;
	int64_t id;           /* learned from a fetch; 0 = not yet */
	char payload[M_PAYLOAD];
} m_item;

typedef struct m_msg {
	int live;
	int inst;
	int kind;
	int64_t visible_at;
	int tagged;
	durq_token tag;
	int attempt;
	char payload[M_PAYLOAD];
} m_msg;

typedef struct m_inst {
	int exists;
	uint64_t exec;
	int status;
	int n_hist;           /* events of the current execution: ids 1..n_hist */
	int locked;           /* a lock row */
	durq_token lock;
	int64_t lock_until;
	durq_token last, prev; /* the tokens of our last two fetches of it */
} m_inst;

typedef struct m_dead {
	int source;           /* DURQ_DEAD_ORCH / DURQ_DEAD_WORK */
	int queue, inst, prio, kind;
	char payload[M_PAYLOAD];
} m_dead;

typedef struct model {
	int64_t now;
	int max_attempts;
	m_item w[M_ITEMS];    /* in enqueue order = id order */
	int nw;
	m_msg m[M_MSGS];      /* in enqueue order = id order */
	int nm;
	m_inst in[M_INSTANCES];
	m_dead d[M_DEAD];
	int nd;
	unsigned serial;      /* makes payloads unique */
} model;

const char *m_queue_name(int q);
const char *m_inst_name(int i);
int m_inst_of(const char *name);

/* Capacity for n more items / messages / dead letters. */
int m_room(const model *m, int items, int msgs);

/* Add a work item / message (after the call that creates it succeeded). */
m_item *m_add_item(model *m, int queue, int inst, int prio, int64_t delay_ms, const char *payload);
m_msg *m_add_msg(model *m, int inst, int kind, int64_t visible_at, const char *payload);
void m_next_payload(model *m, char prefix, char *out);

/* Work fetch: the items it must return (indexes into w, in the order returned), applying
 * the claim (attempts, leases with token, dead letters) to the model. */
int m_work_claim(model *m, int queue, int max, int64_t lease_ms, const durq_token *t, int *out);
/* The live item with this id and token holding a live lease, or -1. */
int m_leased_item(const model *m, int64_t id, const durq_token *t);

/* Orchestration fetch: the instance it must lease (-1: DURQ_EMPTY), applying the claim
 * (lease, tags, attempts, poisoned instances). *attempt = the turn's attempt. */
int m_orch_claim(model *m, int64_t lease_ms, const durq_token *t, int *attempt);
/* 1 if instance i is leased now with token t. */
int m_lock_live(const model *m, int i, const durq_token *t);

/* Depths as durq_queue_depths_get reports them (queue -1: every worker queue). */
void m_depths(const model *m, int queue, durq_queue_depths *out);

#endif
