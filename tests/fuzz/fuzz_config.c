/* fuzz_config.c - libFuzzer target for config.c: an operator's edit may be anything, and
 * `--check-config` and a reload must refuse it with "FILE:LINE: ..." lines, never crash, leak or
 * read out of bounds. The bytes go to a file (libconfig reads files) in a private directory made
 * once, so @include can only reach that file. See README.md for the builds. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INVARIANT(cond)                                                                            \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static char dir[] = "/tmp/stbq-fuzz-config-XXXXXX";
static char path[sizeof(dir) + 32];

static void remove_dir(void)
{
	rmdir(dir);
}

static int set_up(void)
{
	log_set_sink(log_sink_discard, NULL);
	if (!mkdtemp(dir))
		return -errno;
	snprintf(path, sizeof(path), "%s/seetickets-bq.conf", dir);
	atexit(remove_dir);
	return 0;
}

static int write_input(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (size > 0) {
		ssize_t w = write(fd, data, size);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -errno;
		}
		data += w;
		size -= (size_t)w;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* Every file the loader can name lies in our directory: the input itself, or an @include'd
 * name, which it writes as DIR/NAME. A line number in decimal follows, then the problem. */
static void check_line(const char *line, size_t len)
{
	size_t dl = strlen(dir);
	INVARIANT(len > dl + 1 && memcmp(line, dir, dl) == 0 && line[dl] == '/');
	/* The name itself may hold ':', so look for the first ":DIGITS: " after the directory. */
	for (size_t i = dl + 1; i < len; i++) {
		if (line[i] != ':')
			continue;
		size_t j = i + 1;
		while (j < len && line[j] >= '0' && line[j] <= '9')
			j++;
		if (j > i + 1 && j + 2 < len && line[j] == ':' && line[j + 1] == ' ')
			return;
	}
	abort();
}

static void check_errors(const char *errors)
{
	INVARIANT(errors && *errors);
	size_t total = strlen(errors);
	INVARIANT(errors[total - 1] == '\n');
	for (const char *p = errors; *p;) {
		const char *nl = strchr(p, '\n');
		check_line(p, (size_t)(nl - p));
		p = nl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct config *c = NULL;
	char *errors = NULL;

	if (!ready) {
		if (set_up() < 0)
			abort();
		ready = 1;
	}
	/* "@include" with ".." could reach any file, such as /dev/stdin or /dev/zero: that is the
	 * operator's own choice, not an attack, and would only hang the fuzzer. */
	if (memmem(data, size, "..", 2) && memmem(data, size, "include", 7))
		return 0;
	if (write_input(data, size) < 0)
		abort();

	int r = config_load(path, &c, &errors);
	if (r == 0) {
		INVARIANT(c && !errors && c->path && strcmp(c->path, path) == 0);
		INVARIANT(c->sales.event_codes && !c->sales.event_codes[c->sales.n_event_codes]);
		/* What the file must say, and the cross-checks, held for whatever was accepted. */
		INVARIANT(c->seetickets.key_ref && *c->seetickets.key_ref);
		INVARIANT(c->bigquery.project && *c->bigquery.project && c->bigquery.dataset &&
		          *c->bigquery.dataset);
		INVARIANT(c->sales.feed.enabled || c->events.feed.enabled);
		INVARIANT(!c->sales.feed.enabled || c->events.feed.enabled ||
		          c->sales.n_event_codes);
		INVARIANT(strcmp(c->sales.feed.table, c->events.feed.table) != 0);
	} else {
		INVARIANT(!c && r < 0);
		if (r != -ENOMEM)
			check_errors(errors);
	}
	config_free(c);
	free(errors);
	/* A run that ends in a finding does not get to atexit(): leave at most the empty dir. */
	unlink(path);
	return 0;
}
