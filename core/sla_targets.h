/* SPDX-License-Identifier: MIT */
/*
 * Who an SLA step reaches (docs/sla.md, "Notifications"): the targets of an sla_warning,
 * sla_breach or escalated event (`everyone`, `role:<role>`, `st_<id>`; `assignee` was
 * already replaced by the functions) expanded against the staff list into the people
 * to tell, and the compact notification both the console list and the mail are built
 * from. Pure functions over JSON: the callers read the staff list (sb_store_staff_list)
 * and the event from the events feed.
 */
#ifndef SB_SLA_TARGETS_H
#define SB_SLA_TARGETS_H

#include <stdbool.h>

#include <jansson.h>

/** Does a staff member's channel scope (null: every channel, an array, or "a,b") include
 * channel? (Also who is on duty for a conversation: POST …/assign.) */
bool sb_sla_covers(const json_t *channels, const char *channel);

/**
 * The staff members an event's targets name, deduplicated, in the order of `staff`.
 * targets: array of strings (borrowed); unknown strings and ids nobody has are skipped.
 * channel: the conversation's channel (borrowed; NULL matches only unscoped members).
 * staff: array of {"id","name","email","role","channels","notify"} (borrowed), channels
 * null or absent = every channel, else an array of channel names or a comma list.
 * `everyone` = each agent and admin whose channels include `channel`; `role:<r>` = each
 * member whose role is r; `st_<id>` = that member. Returns a new array holding
 * references to the matching members' objects (json_decref it); [] when none.
 */
json_t *sb_sla_targets_expand(const json_t *targets, const char *channel, const json_t *staff);

/** True when `type` is an SLA step's event type: sla_warning, sla_breach or escalated. */
bool sb_sla_event_type(const char *type);

/**
 * The notification of an SLA event (the whole feed event {"conv","conversation",
 * "message"}, borrowed): a new compact JSON text, its keys in a fixed order so every node
 * writes the same bytes, {"id","type","conv","clock","percent","policy","due","ts"} and
 * "subject" and "customer" when the event carries them (the conversation's subject and
 * customer name, each cut to 120 bytes on a character). NULL when
 * the event is not an SLA step or lacks its id, conversation or time. sb_free it.
 */
char *sb_sla_notification(const json_t *event, long long *ts_out);

#endif
