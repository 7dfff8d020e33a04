/* checkpoint.c - the sales date filter's start per event code; see checkpoint.h.
 * A few hundred codes at most: a sorted array and bsearch. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#define CHECKPOINT_MAX_FILE (16u << 20)
#define CHECKPOINT_TIME_LEN 32

struct cp_entry {
	char *code;
	char start[CHECKPOINT_TIME_LEN];
};

struct checkpoints {
	char *path;
	struct cp_entry *e;
	size_t n, cap;
	bool dirty;
};

static int by_code(const void *a, const void *b)
{
	return strcmp(((const struct cp_entry *)a)->code, ((const struct cp_entry *)b)->code);
}

static struct cp_entry *find(const struct checkpoints *cp, const char *code)
{
	struct cp_entry key = {.code = (char *)code};
	return cp->n ? bsearch(&key, cp->e, cp->n, sizeof(*cp->e), by_code) : NULL;
}

static int append(struct checkpoints *cp, const char *code, const char *start)
{
	if (cp->n == cp->cap) {
		size_t cap = cp->cap ? cp->cap * 2 : 32;
		struct cp_entry *n = realloc(cp->e, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		cp->e = n;
		cp->cap = cap;
	}
	struct cp_entry *x = &cp->e[cp->n];
	if (!(x->code = strdup(code)))
		return -ENOMEM;
	snprintf(x->start, sizeof(x->start), "%s", start);
	cp->n++;
	return 0;
}

static void parse(struct checkpoints *cp, char *data)
{
	bool old_format = false;
	for (char *line = data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *tab = strchr(line, '\t');
		int64_t t;
		if (!tab) {
			old_format = old_format || schema_parse_time(line, &t) == 0;
			continue;
		}
		*tab = '\0';
		if (tab[1] && strlen(line) < CHECKPOINT_TIME_LEN &&
		    schema_parse_time(line, &t) == 0 && !find(cp, tab + 1) &&
		    append(cp, tab + 1, line) == 0)
			qsort(cp->e, cp->n, sizeof(*cp->e), by_code);
	}
	if (old_format)
		log_notice("%s: a checkpoint from an earlier version, not per event code: every "
		           "code's window starts over once (repeats are dropped by key)",
		           cp->path);
}

struct checkpoints *checkpoints_load(const char *path)
{
	struct checkpoints *cp = calloc(1, sizeof(*cp));
	if (!cp || !(cp->path = strdup(path))) {
		free(cp);
		return NULL;
	}
	char *data = NULL;
	int r = util_read_file(path, CHECKPOINT_MAX_FILE, &data, NULL);
	if (r == 0)
		parse(cp, data);
	else if (r != -ENOENT)
		log_warning("cannot read %s (%s); every code's window starts over", path,
		            strerror(-r));
	free(data);
	return cp;
}

void checkpoints_free(struct checkpoints *cp)
{
	if (!cp)
		return;
	for (size_t i = 0; i < cp->n; i++)
		free(cp->e[i].code);
	free(cp->e);
	free(cp->path);
	free(cp);
}

const char *checkpoints_get(const struct checkpoints *cp, const char *code)
{
	const struct cp_entry *x = find(cp, code);
	return x ? x->start : CHECKPOINT_FIRST_START;
}

int checkpoints_set(struct checkpoints *cp, const char *code, int64_t t)
{
	char buf[CHECKPOINT_TIME_LEN];
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct cp_entry *x = find(cp, code);
	if (x) {
		if (strcmp(x->start, buf) != 0) {
			snprintf(x->start, sizeof(x->start), "%s", buf);
			cp->dirty = true;
		}
		return 0;
	}
	int r = append(cp, code, buf);
	if (r < 0)
		return r;
	qsort(cp->e, cp->n, sizeof(*cp->e), by_code);
	cp->dirty = true;
	return 0;
}

int checkpoints_save(struct checkpoints *cp)
{
	if (!cp->dirty)
		return 0;
	struct buf b = {0};
	int r = buf_reserve(&b, 1);
	for (size_t i = 0; i < cp->n && r == 0; i++)
		r = buf_printf(&b, "%s\t%s\n", cp->e[i].start, cp->e[i].code);
	if (r == 0)
		r = util_write_file_atomic(cp->path, b.data, b.len, 0640);
	buf_free(&b);
	if (r == 0)
		cp->dirty = false;
	return r;
}
