/*
 * history.h — the runtime's history events and their text encoding (internal to the runtime).
 *
 * Owns: the event types, encoding an event as the payload of a durq_event or durq_message,
 * decoding it back, and a growable list of events. Does not own: what the events mean for a
 * replay (replay.c).
 *
 * An event is four fields separated by '\n': "type\nseq\nname\nvalue" (value is last, so it
 * may hold anything but NUL). Readable as it is in `durq instance history`:
 *
 *	started   0    order       order-0001 2 1037   the instance began with this input
 *	scheduled 3    charge_card order-0001 1037 1   action 3: an activity and its input
 *	result    3    failed      gateway timeout     its outcome ("ok" or "failed") and output
 *	timer     4    1767225600123                   action 4: a timer due at this time (ms)
 *	fired     4                                    the timer fired
 *	event     0    approval    approved by driver  an external event arrived
 *	completed 0                <output>            the orchestration finished (or "failed")
 *
 * A message to an instance carries the event it becomes in the history, prefixed by the
 * execution it belongs to (0 = whichever is current): "execution_id\n<event>".
 */
#ifndef RT_HISTORY_H
#define RT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

enum rt_htype {
	RT_H_STARTED = 1,
	RT_H_SCHEDULED,
	RT_H_RESULT,
	RT_H_TIMER,
	RT_H_FIRED,
	RT_H_EVENT,
	RT_H_COMPLETED,
	RT_H_FAILED
};

typedef struct rt_hevent {
	int type;    /* enum rt_htype */
	uint64_t seq;
	char *name;  /* owned, never NULL once decoded or made */
	char *value; /* owned, never NULL once decoded or made */
} rt_hevent;

typedef struct rt_history {
	rt_hevent *ev;
	size_t n, cap;
} rt_history;

/* Append a copy of (type, seq, name, value); NULL strings are stored as "". 0 or -1. */
int rt_history_push(rt_history *h, int type, uint64_t seq, const char *name, const char *value);
/* Append a decoded event, taking ownership of its strings. 0 or -1 (then *e is cleared). */
int rt_history_take(rt_history *h, rt_hevent *e);
/* Index of the first event of `type` with `seq`, or -1. */
long rt_history_find(const rt_history *h, int type, uint64_t seq);
void rt_history_clear(rt_history *h);

/* Encode into a malloc'd buffer (*out, *len). 0 or -1. */
int rt_hevent_encode(const rt_hevent *e, char **out, size_t *len);
/* Decode a payload; 0, or -1 if it is not one of ours (e is then empty). */
int rt_hevent_decode(rt_hevent *e, const void *buf, size_t len);
void rt_hevent_clear(rt_hevent *e);

/* A message payload: "execution_id\n" + the encoded event. */
int rt_message_encode(uint64_t execution_id, const rt_hevent *e, char **out, size_t *len);
int rt_message_decode(uint64_t *execution_id, rt_hevent *e, const void *buf, size_t len);

#endif /* RT_HISTORY_H */
