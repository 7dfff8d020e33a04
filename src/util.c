/* util.c - durable files, clocks, randomness and a growable buffer. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int buf_reserve(struct buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append_grow(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -ENOMEM;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if (buf_reserve(b, (size_t)n) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *buf_steal(struct buf *b)
{
	char *p = b->data;
	if (!p)
		p = strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

int util_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int util_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int util_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = NULL, *dircopy = NULL;
	int fd = -1, r;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
		tmp = NULL;
		r = -ENOMEM;
		goto out;
	}
	/* A fresh file of our own: a leftover of a crash is removed, and a
	 * symlink planted in its place is neither followed nor reused. */
	if (unlink(tmp) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = util_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	fd = -1;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		goto out;
	}
	dircopy = strdup(path);
	if (!dircopy) {
		r = -ENOMEM;
		goto out;
	}
	r = util_fsync_dir(dirname(dircopy));
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(dircopy);
	return r;
}

static uid_t overflow_uid(void)
{
	char *data = NULL;
	uid_t u = 65534;
	if (util_read_file("/proc/sys/fs/overflowuid", 32, &data, NULL) == 0)
		u = (uid_t)strtoul(data, NULL, 10);
	free(data);
	return u;
}

int util_check_private_file(int fd, const char *path, char *why, size_t len)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(why, len, "%s: cannot stat: %s", path, strerror(errno));
		return -errno;
	}
	if (st.st_mode & 007) {
		snprintf(why, len,
		         "%s is open to every user (mode %04o); it holds a secret: run chmod o-rwx "
		         "%s",
		         path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != overflow_uid()) {
		snprintf(why, len,
		         "%s belongs to uid %u, neither root nor this user: another account could "
		         "replace the secret; run chown root %s",
		         path, (unsigned)st.st_uid, path);
		return -EPERM;
	}
	return 0;
}

int util_read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct buf b = {0};
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (buf_reserve(&b, 4096) < 0) {
			r = -ENOMEM;
			break;
		}
		ssize_t n = read(fd, b.data + b.len, 4096);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
		if (b.len > max) {
			r = -EFBIG;
			break;
		}
	}
	close(fd);
	if (r < 0) {
		util_wipe(b.data, b.cap);
		buf_free(&b);
		return r;
	}
	if (len)
		*len = b.len;
	*out = buf_steal(&b);
	return *out ? 0 : -ENOMEM;
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	int r = 0;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*s = '/';
	}
	if (r == 0 && mkdir(p, mode) < 0 && errno != EEXIST)
		r = -errno;
	free(p);
	return r;
}

uint64_t util_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t util_now_ms(void)
{
	return util_now_us() / 1000u;
}

int64_t util_wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint32_t util_random_u32(void)
{
	static uint32_t fallback;
	uint32_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	/* Jitter only needs to be spread, not unpredictable. */
	if (!fallback)
		fallback = (uint32_t)util_now_us() | 1u;
	fallback ^= fallback << 13;
	fallback ^= fallback >> 17;
	fallback ^= fallback << 5;
	return fallback;
}

void util_utc_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void util_wipe(void *p, size_t len)
{
	if (p)
		explicit_bzero(p, len);
}

bool util_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

char *util_strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}
