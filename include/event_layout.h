/*
 * event_layout.h
 *     The event layout lock (src/event_layout.c): readers of the event store
 *     hold it in share mode so that no month is attached under them.
 */
#ifndef ATO_EVENT_LAYOUT_H
#define ATO_EVENT_LAYOUT_H

extern void ato_hold_event_layout(void);

#endif							/* ATO_EVENT_LAYOUT_H */
