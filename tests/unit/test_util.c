/* Unit tests for util.c: buffers and durable files. */
#include "autoconfig.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secbuf.h"
#include "tap.h"
#include "util.h"

static void test_buf_grows_and_stays_terminated(void)
{
	struct buf b = {0};
	for (int i = 0; i < 1000; i++)
		CHECK_INT(buf_printf(&b, "%d,", i), 0);
	CHECK(b.len > 3000);
	CHECK_INT(b.data[b.len], '\0');
	CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	CHECK_INT(buf_append(&b, "ab\0c", 4), 0);
	CHECK_INT(b.len, 4);
	char *s = buf_steal(&b);
	CHECK(b.data == NULL);
	free(s);
	buf_free(&b);
}

static void test_atomic_write_replaces_whole_file(void)
{
	char dir[] = "/tmp/stbq-util-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256];
	snprintf(path, sizeof(path), "%s/f", dir);
	CHECK_INT(util_write_file_atomic(path, "first", 5, 0600), 0);
	CHECK_INT(util_write_file_atomic(path, "second!", 7, 0600), 0);
	char *data = NULL;
	size_t len = 0;
	CHECK_INT(util_read_file(path, 100, &data, &len), 0);
	CHECK_INT(len, 7);
	CHECK_STR(data, "second!");
	free(data);
	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(util_read_file(path, 3, &data, &len), -EFBIG);
	CHECK_INT(util_read_file("/nonexistent/x", 3, &data, &len), -ENOENT);
	unlink(path);
	rmdir(dir);
}

/* A symlink planted where the temporary file goes is not followed: the file
 * it points to keeps its content, and the write lands where it should. */
static void test_atomic_write_does_not_follow_a_planted_link(void)
{
	char dir[] = "/tmp/stbq-util-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256], tmp[300], victim[256];
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	CHECK_INT(util_write_file_atomic(victim, "precious", 8, 0600), 0);
	CHECK_INT(symlink(victim, tmp), 0);
	CHECK_INT(util_write_file_atomic(path, "data", 4, 0600), 0);
	char *data = NULL;
	size_t len = 0;
	CHECK_INT(util_read_file(victim, 100, &data, &len), 0);
	CHECK_STR(data, "precious");
	free(data);
	CHECK_INT(util_read_file(path, 100, &data, &len), 0);
	CHECK_STR(data, "data");
	free(data);
	unlink(path);
	unlink(victim);
	unlink(tmp);
	rmdir(dir);
}

static void test_mkdir_p_creates_nested_directories(void)
{
	char dir[] = "/tmp/stbq-util-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256];
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	CHECK_INT(util_mkdir_p(path, 0700), 0);
	CHECK_INT(util_mkdir_p(path, 0700), 0);
	CHECK_INT(access(path, W_OK), 0);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_INT(system(cmd), 0);
}

static void test_secbuf_header_and_equality(void)
{
	struct secbuf *a = secbuf_new("k3y-value", 9), *b = secbuf_new("k3y-value", 9);
	struct secbuf *c = secbuf_new("k3y-valuf", 9);
	CHECK(secbuf_equal(a, b));
	CHECK(!secbuf_equal(a, c));
	char *h = secbuf_header(a, "Authorization", "Bearer ");
	CHECK_STR(h, "Authorization: Bearer k3y-value");
	secbuf_header_free(h);
	struct secbuf *d = secbuf_dup(a);
	CHECK(secbuf_equal(a, d));
	CHECK_INT(secbuf_len(d), 9);
	secbuf_free(a);
	secbuf_free(b);
	secbuf_free(c);
	secbuf_free(d);
	secbuf_free(NULL);
}

static void test_monotonic_clock_moves_forward(void)
{
	uint64_t a = util_now_us();
	usleep(2000);
	CHECK(util_now_us() >= a + 2000);
	char ts[32];
	util_utc_now(ts);
	CHECK_INT(strlen(ts), 20);
	CHECK_INT(ts[19], 'Z');
}

int main(void)
{
	RUN(test_buf_grows_and_stays_terminated);
	RUN(test_atomic_write_replaces_whole_file);
	RUN(test_atomic_write_does_not_follow_a_planted_link);
	RUN(test_mkdir_p_creates_nested_directories);
	RUN(test_secbuf_header_and_equality);
	RUN(test_monotonic_clock_moves_forward);
	return tap_done();
}
