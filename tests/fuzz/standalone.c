/* standalone.c - a main() for libFuzzer targets built without libFuzzer (gcc, `make check`):
 * feeds each file named on the command line (a directory: each file in it, in name order; "-":
 * stdin) to LLVMFuzzerTestOneInput once and prints one TAP line per input. With no arguments
 * it reads stdin, or, when built with FUZZ_CORPUS and run by `make check` (TOP_SRCDIR set),
 * the seed corpus $TOP_SRCDIR/FUZZ_CORPUS. A crash ends the run, which the TAP driver reports. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FUZZ_MAX_INPUT (16u * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count;
static int failed;

static int read_stream(FILE *f, unsigned char **out, size_t *len)
{
	size_t cap = 0, n = 0;
	unsigned char *b = NULL;

	for (;;) {
		if (n == cap) {
			if (cap >= FUZZ_MAX_INPUT)
				break;
			cap = cap ? cap * 2 : 4096;
			unsigned char *nb = realloc(b, cap);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(b);
		return -EIO;
	}
	*out = b;
	*len = n;
	return 0;
}

static void run_one(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	unsigned char *data = NULL;
	size_t len = 0;
	int r = f ? read_stream(f, &data, &len) : -errno;

	if (f && f != stdin)
		fclose(f);
	count++;
	if (r < 0) {
		printf("not ok %d - %s: %s\n", count, path, strerror(-r));
		failed++;
		return;
	}
	/* An empty input still has a valid (non-NULL) pointer, as under libFuzzer. */
	LLVMFuzzerTestOneInput(data ? data : (const uint8_t *)"", len);
	free(data);
	printf("ok %d - %s (%zu bytes)\n", count, path, len);
	fflush(stdout);
}

static void run_path(const char *path)
{
	struct stat st;
	struct dirent **names;
	int n;

	if (strcmp(path, "-") == 0 || stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		run_one(path);
		return;
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		printf("not ok %d - %s: %s\n", ++count, path, strerror(errno));
		failed++;
		return;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			size_t l = strlen(path) + strlen(names[i]->d_name) + 2;
			char *full = malloc(l);
			if (full) {
				snprintf(full, l, "%s/%s", path, names[i]->d_name);
				run_one(full);
				free(full);
			}
		}
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i]);
	} else {
#ifdef FUZZ_CORPUS
		const char *top = getenv("TOP_SRCDIR");
		if (top) {
			size_t l = strlen(top) + sizeof(FUZZ_CORPUS) + 1;
			char *dir = malloc(l);
			if (!dir)
				return 1;
			snprintf(dir, l, "%s/%s", top, FUZZ_CORPUS);
			run_path(dir);
			free(dir);
		} else
#endif
		{
			run_path("-");
		}
	}
	if (count == 0) {
		printf("not ok 1 - no inputs\n");
		count = failed = 1;
	}
	printf("1..%d\n", count);
	return failed ? 1 : 0;
}
