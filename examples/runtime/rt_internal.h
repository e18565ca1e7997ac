/*
 * rt_internal.h — what runtime.c (threads, registry) and replay.c (one turn) share.
 * Not for workflow code: that includes runtime.h only.
 */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "history.h"
#include "runtime.h"

/* The worker queue that carries every activity. */
#define RT_QUEUE "activities"
/* Messages for an instance that has not started are given back this many times (1 s apart:
 * its start may still come), then discarded. */
#define RT_EARLY_MESSAGE_ATTEMPTS 5

typedef struct rt_entry {
	char *name;
	rt_orchestration_fn orch;
	rt_activity_fn act;
} rt_entry;

struct rt {
	durq *db;
	rt_config cfg;
	rt_entry *orchs, *acts;
	size_t n_orchs, n_acts;
	pthread_t *threads;
	size_t n_threads;
	atomic_int stop;
	_Atomic uint64_t turns, turns_failed, activities_run, activities_failed, redelivered;
	_Atomic uint64_t acks_failed;
};

rt_orchestration_fn rt_find_orchestration(const rt *r, const char *name);

/* What to do with a fetched turn. */
enum rt_plan_action {
	RT_PLAN_ACK,    /* durq_orch_ack(result) */
	RT_PLAN_ABANDON /* durq_orch_abandon: the messages are not ours to handle yet */
	/* (an ACK whose result has flags DURQ_TURN_DISCARD drops them) */
};

/* Everything a turn commits, with the buffers the durq_turn_result points into. */
typedef struct rt_plan {
	int action;
	durq_turn_result result;
	int finished;           /* DURQ_STATUS_COMPLETED / _FAILED reached in this turn, else 0 */
	durq_event *events;
	durq_work *work;
	durq_message *timers;
	char **bufs;            /* every payload buffer above */
	size_t n_bufs;
	char *name, *output, *custom_status;
} rt_plan;

/* Replay the orchestration of `turn` from its history and the messages it brought, and fill
 * *plan with the turn's result. 0, or -1 if out of memory. */
int rt_replay_turn(rt *r, const durq_turn *turn, int64_t now_ms, rt_plan *plan);
void rt_plan_free(rt_plan *plan);

#endif /* RT_INTERNAL_H */
