/*
 * order.h — the order workflow of the runtime demo: its orchestration, its activities, and
 * what a correct run must output (the driver and the test both check it).
 */
#ifndef RT_ORDER_H
#define RT_ORDER_H

#include <stddef.h>

#include "runtime.h"

#define ORDER_ORCHESTRATION "order"
/* The custom status an order shows while it waits for the approval event. */
#define ORDER_AWAITING_APPROVAL "awaiting approval"
#define ORDER_APPROVAL_EVENT "approval"
#define ORDER_APPROVAL_DATA "approved by driver"

/* Register the orchestration "order" and the activities it calls. */
int order_register(rt *r);

/* Order number n (1-based): its instance id, its input, and the output it must end with. */
void order_id(char *buf, size_t len, int n);
void order_input(char *buf, size_t len, int n);
void order_expected_output(char *buf, size_t len, int n);

#endif /* RT_ORDER_H */
