/* calendar.h - the event calendar: which events a sales poll asks for, and
 * when each starts.
 *
 * It is the one place that decides the sales feed's event codes. With
 * `sales.event_codes` configured it answers exactly those. Otherwise it is
 * fed from every place the daemon learns about an event - the seeding query
 * on the events table, events replayed from the events spool at start, and
 * every row of every events poll (new, known, changed or dead-lettered: an
 * event the pipeline rejects still exists at the source) - and the latest
 * note of an event wins, so a postponed event keeps being polled while its
 * new start is within the lookback. */
#ifndef STBQ_CALENDAR_H
#define STBQ_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct calendar;

struct calendar *calendar_new(void); /* NULL on ENOMEM */
void calendar_free(struct calendar *cal);

/* Event `id` exists and starts at `starts`: ISO-8601 (see schema_parse_time),
 * a TIMESTAMP as int64 microseconds since the epoch (how seeding reads a
 * TIMESTAMP column), or NULL / anything else for "unknown". A later note of
 * the same id replaces an earlier one. 0, -EINVAL for an empty id, -ENOMEM. */
int calendar_note(struct calendar *cal, const char *id, const char *starts);

/* Events known (distinct ids). */
size_t calendar_count(struct calendar *cal);

/* The codes a sales poll asks for at wall-clock time `now`: the configured
 * list, or every known event whose start is within the lookback or unknown
 * (never dropped silently). A NULL-terminated array of strings borrowed from
 * the calendar or the configuration, valid until the next note; free the
 * array only. NULL on ENOMEM. */
const char **calendar_codes(struct calendar *cal, const struct config *cfg, int64_t now, size_t *n);

/* How a start value reads: 0 and *out (seconds since the epoch), or -EINVAL. */
int calendar_parse_start(const char *starts, int64_t *out);

#endif
