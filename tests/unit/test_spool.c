/* Unit tests for spool.c: durable segments, torn writes, retirement, disk full. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sys/stat.h>

#include "spool.h"
#include "tap.h"
#include "util.h"

static char state[64];

static void fresh_state(void)
{
	char cmd[128];
	if (state[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
		if (system(cmd) != 0)
			printf("# cleanup failed\n");
	}
	snprintf(state, sizeof(state), "/tmp/stbq-spool-XXXXXX");
	if (!mkdtemp(state))
		abort();
}

struct lines {
	char all[4096];
	size_t n;
};

static int collect(const char *line, size_t len, size_t lineno, void *ud)
{
	struct lines *l = ud;
	(void)lineno;
	strncat(l->all, line, len);
	strcat(l->all, "|");
	l->n++;
	return 0;
}

static void test_segments_are_replayed_in_order_and_retired(void)
{
	fresh_state();
	struct spool *sp;
	CHECK_INT(spool_open(state, "sales", &sp), 0);
	CHECK_INT(spool_count(sp), 0);
	for (int s = 0; s < 3; s++) {
		char row[64];
		CHECK_INT(spool_begin(sp), 0);
		int n = snprintf(row, sizeof(row), "{\"k\":\"s%d-a\"}\n{\"k\":\"s%d-b\"}\n", s, s);
		CHECK_INT(spool_append(sp, row, (size_t)n), 0);
		CHECK_INT(spool_end(sp), 0);
	}
	/* An empty segment leaves nothing behind. */
	CHECK_INT(spool_begin(sp), 0);
	CHECK_INT(spool_end(sp), 0);
	CHECK_INT(spool_count(sp), 3);
	spool_free(sp);

	/* A fresh process sees the same segments, oldest first. */
	CHECK_INT(spool_open(state, "sales", &sp), 0);
	CHECK_INT(spool_count(sp), 3);
	struct lines l = {0};
	CHECK_INT(spool_foreach(sp, 0, collect, &l), 0);
	CHECK_STR(l.all, "{\"k\":\"s0-a\"}|{\"k\":\"s0-b\"}|");
	CHECK_INT(spool_retire(sp, 0), 0);
	CHECK_INT(spool_count(sp), 2);
	memset(&l, 0, sizeof(l));
	CHECK_INT(spool_foreach(sp, 0, collect, &l), 0);
	CHECK_STR(l.all, "{\"k\":\"s1-a\"}|{\"k\":\"s1-b\"}|");
	/* Other feeds' segments are not ours. */
	struct spool *ev;
	CHECK_INT(spool_open(state, "events", &ev), 0);
	CHECK_INT(spool_count(ev), 0);
	spool_free(ev);
	/* New segments continue the sequence after a restart. */
	CHECK_INT(spool_begin(sp), 0);
	CHECK_INT(spool_append(sp, "{\"k\":\"new\"}\n", 12), 0);
	CHECK_INT(spool_end(sp), 0);
	CHECK_INT(spool_count(sp), 3);
	memset(&l, 0, sizeof(l));
	CHECK_INT(spool_foreach(sp, 2, collect, &l), 0);
	CHECK_STR(l.all, "{\"k\":\"new\"}|");
	spool_free(sp);
}

static void test_torn_last_line_is_ignored(void)
{
	fresh_state();
	struct spool *sp;
	CHECK_INT(spool_open(state, "events", &sp), 0);
	CHECK_INT(spool_begin(sp), 0);
	CHECK_INT(spool_append(sp, "{\"id\":\"1\"}\n", 11), 0);
	CHECK_INT(spool_end(sp), 0);
	/* Simulate a crash in the middle of a write. */
	int fd = open(spool_path(sp, 0), O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "{\"id\":\"2", 8), 8);
	close(fd);
	struct lines l = {0};
	CHECK_INT(spool_foreach(sp, 0, collect, &l), 0);
	CHECK_STR(l.all, "{\"id\":\"1\"}|");
	CHECK_INT(l.n, 1);
	spool_free(sp);
}

static void test_disk_full_leaves_only_whole_lines(void)
{
	fresh_state();
	struct spool *sp;
	struct rlimit old, lim;
	CHECK_INT(spool_open(state, "sales", &sp), 0);
	CHECK_INT(spool_begin(sp), 0);
	CHECK_INT(spool_append(sp, "{\"a\":1}\n", 8), 0);
	/* A file size limit makes the next write fail as a full disk would. */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 20;
	CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int r = spool_append(sp, "{\"b\":2222222222222222222}\n", 26);
	setrlimit(RLIMIT_FSIZE, &old);
	CHECK_INT(r, -EFBIG);
	CHECK_INT(spool_append(sp, "{\"c\":3}\n", 8), 0);
	CHECK_INT(spool_end(sp), 0);
	struct lines l = {0};
	CHECK_INT(spool_foreach(sp, 0, collect, &l), 0);
	CHECK_STR(l.all, "{\"a\":1}|{\"c\":3}|");
	spool_free(sp);
}

static void test_unwritable_state_dir_is_an_error(void)
{
	struct spool *sp = NULL;
	CHECK(spool_open("/proc/stbq-no-such-dir", "sales", &sp) < 0);
	CHECK(sp == NULL);
}

/* --audit looks at a running daemon's spool: nothing created, nothing
 * changed, a feed whose name extends another's kept apart. */
static void test_readonly_open_creates_nothing_and_reads_the_same(void)
{
	fresh_state();
	struct spool *sp, *ro, *ch;
	struct stat st;
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/spool", state);
	CHECK_INT(spool_open_readonly(state, "sales", &ro), 0);
	CHECK_INT(spool_count(ro), 0);
	CHECK(stat(dir, &st) < 0 && errno == ENOENT);
	spool_free(ro);
	CHECK_INT(spool_open(state, "sales", &sp), 0);
	CHECK_INT(spool_open(state, "sales_changes", &ch), 0);
	CHECK_INT(spool_begin(sp), 0);
	CHECK_INT(spool_append(sp, "{\"k\":\"a\"}\n", 10), 0);
	CHECK_INT(spool_end(sp), 0);
	CHECK_INT(spool_begin(ch), 0);
	CHECK_INT(spool_append(ch, "{\"k\":\"b\"}\n", 10), 0);
	CHECK_INT(spool_end(ch), 0);
	CHECK_INT(spool_open_readonly(state, "sales", &ro), 0);
	CHECK_INT(spool_count(ro), 1);
	struct lines l = {0};
	CHECK_INT(spool_foreach(ro, 0, collect, &l), 0);
	CHECK_STR(l.all, "{\"k\":\"a\"}|");
	spool_free(ro);
	CHECK_INT(spool_count(sp), 1);
	spool_free(ch);
	spool_free(sp);
}

int main(void)
{
	RUN(test_segments_are_replayed_in_order_and_retired);
	RUN(test_readonly_open_creates_nothing_and_reads_the_same);
	RUN(test_torn_last_line_is_ignored);
	RUN(test_disk_full_leaves_only_whole_lines);
	RUN(test_unwritable_state_dir_is_an_error);
	fresh_state();
	rmdir(state);
	return tap_done();
}
