/* spool.c - append-only NDJSON segments with fsync before send. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "util.h"

#define SPOOL_SUBDIR       "spool"
#define SPOOL_PLAN_SUFFIX  ".load"
#define SPOOL_ASIDE_SUFFIX ".unreadable"
#define SPOOL_PLAN_MAX     (64u << 20) /* line numbers of a segment, as text */

struct spool {
	char *dir; /* STATE/spool */
	char *feed;
	char **paths; /* waiting segments, oldest first */
	size_t npaths;
	uint64_t next_seq;
	int fd; /* open segment, -1 if none */
	char *open_path;
	off_t open_len; /* bytes known durable in the open segment */
};

static int unlink_plan(const char *segment);

static void free_paths(struct spool *sp)
{
	for (size_t i = 0; i < sp->npaths; i++)
		free(sp->paths[i]);
	free(sp->paths);
	sp->paths = NULL;
	sp->npaths = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Segment names are FEED-SEQ.ndjson with a zero-padded sequence, so sorting
 * the names sorts the segments by age. */
int spool_rescan(struct spool *sp)
{
	DIR *d = opendir(sp->dir);
	if (!d)
		return -errno;
	free_paths(sp);
	size_t cap = 0, prefix_len = strlen(sp->feed);
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		uint64_t seq;
		char tail[16];
		if (strncmp(n, sp->feed, prefix_len) != 0 || n[prefix_len] != '-')
			continue;
		if (sscanf(n + prefix_len + 1, "%16" SCNu64 "%15s", &seq, tail) != 2 ||
		    strcmp(tail, ".ndjson") != 0)
			continue;
		if (sp->open_path && strcmp(strrchr(sp->open_path, '/') + 1, n) == 0)
			continue;
		if (seq >= sp->next_seq)
			sp->next_seq = seq + 1;
		if (sp->npaths == cap) {
			cap = cap ? cap * 2 : 8;
			char **np = realloc(sp->paths, cap * sizeof(*np));
			if (!np) {
				r = -ENOMEM;
				break;
			}
			sp->paths = np;
		}
		if (asprintf(&sp->paths[sp->npaths], "%s/%s", sp->dir, n) < 0) {
			r = -ENOMEM;
			break;
		}
		sp->npaths++;
	}
	closedir(d);
	if (sp->npaths)
		qsort(sp->paths, sp->npaths, sizeof(*sp->paths), cmp_str);
	return r;
}

static int open_spool(const char *state_dir, const char *feed, bool readonly, struct spool **out)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	int r;
	*out = NULL;
	if (!sp)
		return -ENOMEM;
	sp->fd = -1;
	sp->next_seq = 1;
	if (asprintf(&sp->dir, "%s/%s", state_dir, SPOOL_SUBDIR) < 0)
		sp->dir = NULL;
	sp->feed = strdup(feed);
	if (!sp->dir || !sp->feed) {
		spool_free(sp);
		return -ENOMEM;
	}
	r = readonly ? 0 : util_mkdir_p(sp->dir, 0750);
	if (r == 0)
		r = spool_rescan(sp);
	if (r == -ENOENT && readonly)
		r = 0; /* no spool yet: nothing waits */
	if (r < 0) {
		spool_free(sp);
		return r;
	}
	*out = sp;
	return 0;
}

int spool_open(const char *state_dir, const char *feed, struct spool **out)
{
	return open_spool(state_dir, feed, false, out);
}

int spool_open_readonly(const char *state_dir, const char *feed, struct spool **out)
{
	return open_spool(state_dir, feed, true, out);
}

void spool_free(struct spool *sp)
{
	if (!sp)
		return;
	if (sp->fd >= 0)
		spool_end(sp);
	free_paths(sp);
	free(sp->open_path);
	free(sp->dir);
	free(sp->feed);
	free(sp);
}

int spool_begin(struct spool *sp)
{
	if (sp->fd >= 0)
		return -EBUSY;
	free(sp->open_path);
	sp->open_path = NULL;
	if (asprintf(&sp->open_path, "%s/%s-%016" PRIu64 ".ndjson", sp->dir, sp->feed,
	             sp->next_seq) < 0) {
		sp->open_path = NULL;
		return -ENOMEM;
	}
	/* A plan left by a crash between its unlink and the segment's would
	 * be read as this new segment's. */
	int r = unlink_plan(sp->open_path);
	if (r < 0)
		return r;
	sp->fd = open(sp->open_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
	if (sp->fd < 0)
		return -errno;
	sp->next_seq++;
	sp->open_len = 0;
	/* The new name must survive a crash too, or its rows would vanish with it. */
	r = util_fsync_dir(sp->dir);
	if (r < 0) {
		close(sp->fd);
		sp->fd = -1;
		unlink(sp->open_path);
	}
	return r;
}

int spool_append(struct spool *sp, const char *data, size_t len)
{
	if (sp->fd < 0)
		return -EBADF;
	int r = util_write_all(sp->fd, data, len);
	if (r == 0 && fsync(sp->fd) < 0)
		r = -errno;
	if (r < 0) {
		/* Cut the partial write off so the segment holds only whole,
		 * durable lines; whatever happens next, they are all real rows. */
		if (ftruncate(sp->fd, sp->open_len) == 0)
			(void)fsync(sp->fd);
		return r;
	}
	sp->open_len += (off_t)len;
	return 0;
}

int spool_end(struct spool *sp)
{
	if (sp->fd < 0)
		return 0;
	int r = close(sp->fd) < 0 ? -errno : 0;
	sp->fd = -1;
	if (sp->open_len == 0) {
		unlink(sp->open_path);
		(void)util_fsync_dir(sp->dir);
	}
	free(sp->open_path);
	sp->open_path = NULL;
	int r2 = spool_rescan(sp);
	return r < 0 ? r : r2;
}

size_t spool_count(const struct spool *sp)
{
	return sp->npaths;
}

const char *spool_path(const struct spool *sp, size_t i)
{
	return i < sp->npaths ? sp->paths[i] : NULL;
}

int spool_foreach(const struct spool *sp, size_t i,
                  int (*fn)(const char *line, size_t len, size_t lineno, void *ud), void *ud)
{
	if (i >= sp->npaths)
		return -ENOENT;
	FILE *f = fopen(sp->paths[i], "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int r = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n') {
			log_warning("spool %s: ignoring a torn last line (%zd bytes never fsynced)",
			            sp->paths[i], n);
			break;
		}
		if ((size_t)n > SPOOL_MAX_LINE) {
			r = -E2BIG;
			break;
		}
		line[--n] = '\0';
		lineno++;
		if (n == 0)
			continue;
		r = fn(line, (size_t)n, lineno, ud);
		if (r)
			break;
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	free(line);
	fclose(f);
	return r;
}

static void drop_path(struct spool *sp, size_t i)
{
	free(sp->paths[i]);
	memmove(&sp->paths[i], &sp->paths[i + 1], (sp->npaths - i - 1) * sizeof(*sp->paths));
	sp->npaths--;
}

static char *plan_path(const char *segment)
{
	char *p = NULL;
	return asprintf(&p, "%s" SPOOL_PLAN_SUFFIX, segment) < 0 ? NULL : p;
}

/* The plan goes first: a plan without its segment is never read, but a
 * segment without the plan it was sent under would be cut anew. */
static int unlink_plan(const char *segment)
{
	char *plan = plan_path(segment);
	if (!plan)
		return -ENOMEM;
	int r = unlink(plan) < 0 && errno != ENOENT ? -errno : 0;
	free(plan);
	return r;
}

int spool_retire(struct spool *sp, size_t i)
{
	if (i >= sp->npaths)
		return -ENOENT;
	int r = unlink_plan(sp->paths[i]);
	if (r < 0)
		return r;
	if (unlink(sp->paths[i]) < 0 && errno != ENOENT)
		return -errno;
	r = util_fsync_dir(sp->dir);
	drop_path(sp, i);
	return r;
}

int spool_set_aside(struct spool *sp, size_t i)
{
	char *to = NULL;
	if (i >= sp->npaths)
		return -ENOENT;
	if (asprintf(&to, "%s" SPOOL_ASIDE_SUFFIX, sp->paths[i]) < 0)
		return -ENOMEM;
	int r = rename(sp->paths[i], to) < 0 ? -errno : 0;
	free(to);
	if (r == 0) {
		(void)unlink_plan(sp->paths[i]);
		r = util_fsync_dir(sp->dir);
		drop_path(sp, i);
	}
	return r;
}

int spool_plan_read(const struct spool *sp, size_t i, size_t **excluded, size_t *n)
{
	char *plan = i < sp->npaths ? plan_path(sp->paths[i]) : NULL;
	char *data = NULL;
	*excluded = NULL;
	*n = 0;
	if (!plan)
		return i < sp->npaths ? -ENOMEM : -ENOENT;
	int r = util_read_file(plan, SPOOL_PLAN_MAX, &data, NULL);
	free(plan);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	/* "load\n" then one line number per line. */
	if (strncmp(data, "load\n", 5) != 0) {
		free(data);
		return -EBADMSG;
	}
	size_t cap = 0;
	r = 1;
	for (char *p = data + 5, *e; *p; p = e) {
		unsigned long long v = strtoull(p, &e, 10);
		if (e == p || *e != '\n') {
			r = -EBADMSG;
			break;
		}
		e++;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			size_t *x = realloc(*excluded, cap * sizeof(*x));
			if (!x) {
				r = -ENOMEM;
				break;
			}
			*excluded = x;
		}
		(*excluded)[(*n)++] = (size_t)v;
	}
	free(data);
	if (r < 0) {
		free(*excluded);
		*excluded = NULL;
		*n = 0;
	}
	return r;
}

int spool_plan_write(struct spool *sp, size_t i, const size_t *excluded, size_t n)
{
	struct buf b = {0};
	char *plan = i < sp->npaths ? plan_path(sp->paths[i]) : NULL;
	int r = plan ? buf_puts(&b, "load\n") : -ENOMEM;
	for (size_t k = 0; k < n && r == 0; k++)
		r = buf_printf(&b, "%zu\n", excluded[k]);
	if (r == 0)
		r = util_write_file_atomic(plan, b.data, b.len, 0640);
	free(plan);
	buf_free(&b);
	return r;
}
