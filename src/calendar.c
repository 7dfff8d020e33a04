/* calendar.c - the event calendar (see calendar.h).
 *
 * Notes are appended as they come (seeding, spool scan, polls) and folded
 * when the codes are asked for: sorting by id and then by arrival keeps the
 * latest note of each id. An events table of tens of thousands of events
 * folds in milliseconds, once per sales poll, and no hash of remote input is
 * needed. The log of notes is folded too once it holds twice what the last
 * fold kept, so polling the same events for months does not grow it. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "schema.h"

#define CALENDAR_FOLD_MIN 1024 /* notes kept before the first fold */

struct note {
	char *id;
	uint64_t seq; /* arrival order: the later note wins */
	int64_t starts;
	bool starts_known;
};

struct calendar {
	struct note *notes;
	size_t n, cap;
	size_t folded; /* notes[0..folded) are sorted with unique ids */
	uint64_t seq;
};

struct calendar *calendar_new(void)
{
	return calloc(1, sizeof(struct calendar));
}

void calendar_free(struct calendar *cal)
{
	if (!cal)
		return;
	for (size_t i = 0; i < cal->n; i++)
		free(cal->notes[i].id);
	free(cal->notes);
	free(cal);
}

int calendar_parse_start(const char *s, int64_t *out)
{
	if (!s)
		return -EINVAL;
	if (schema_parse_time(s, out) == 0)
		return 0;
	/* A TIMESTAMP column read with useInt64Timestamp: microseconds. */
	const char *p = s + (*s == '-');
	if (*p < '0' || *p > '9' || strlen(p) > 18)
		return -EINVAL;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return -EINVAL;
	long long us = strtoll(s, NULL, 10);
	/* Round towards minus infinity, like the seconds of an ISO time. */
	*out = (int64_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
	return 0;
}

static int by_id_then_seq(const void *a, const void *b)
{
	const struct note *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort and keep the latest note of each id. */
static void fold(struct calendar *cal)
{
	if (cal->folded == cal->n)
		return;
	qsort(cal->notes, cal->n, sizeof(*cal->notes), by_id_then_seq);
	size_t w = 0;
	for (size_t i = 0; i < cal->n; i++) {
		if (i + 1 < cal->n && strcmp(cal->notes[i].id, cal->notes[i + 1].id) == 0) {
			free(cal->notes[i].id);
			continue;
		}
		cal->notes[w++] = cal->notes[i];
	}
	cal->n = cal->folded = w;
}

int calendar_note(struct calendar *cal, const char *id, const char *starts)
{
	if (!id || !id[0])
		return -EINVAL;
	if (cal->n - cal->folded >= CALENDAR_FOLD_MIN && cal->n >= 2 * cal->folded)
		fold(cal);
	if (cal->n == cal->cap) {
		size_t cap = cal->cap ? cal->cap * 2 : 64;
		struct note *nn = realloc(cal->notes, cap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		cal->notes = nn;
		cal->cap = cap;
	}
	struct note *e = &cal->notes[cal->n];
	e->id = strdup(id);
	if (!e->id)
		return -ENOMEM;
	e->seq = cal->seq++;
	e->starts_known = calendar_parse_start(starts, &e->starts) == 0;
	cal->n++;
	return 0;
}

size_t calendar_count(struct calendar *cal)
{
	fold(cal);
	return cal->n;
}

const char **calendar_codes(struct calendar *cal, const struct config *cfg, int64_t now, size_t *n)
{
	const char **codes;
	*n = 0;
	if (cfg->sales.n_event_codes > 0) {
		codes = calloc(cfg->sales.n_event_codes + 1, sizeof(*codes));
		if (!codes)
			return NULL;
		for (size_t i = 0; i < cfg->sales.n_event_codes; i++)
			codes[(*n)++] = cfg->sales.event_codes[i];
		return codes;
	}
	fold(cal);
	codes = calloc(cal->n + 1, sizeof(*codes));
	if (!codes)
		return NULL;
	int64_t cutoff = now - (int64_t)cfg->sales.event_lookback_days * 86400;
	for (size_t i = 0; i < cal->n; i++) {
		const struct note *e = &cal->notes[i];
		/* An unknown or unparseable start keeps the event: never drop silently. */
		if (!e->starts_known || e->starts >= cutoff)
			codes[(*n)++] = e->id;
	}
	return codes;
}
