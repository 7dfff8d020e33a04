/* bench_keyset - throughput, worst-case add latency and memory of the key set.
 *
 * Usage: bench_keyset [--valued] [N...]   (default: 1000000 5000000)
 *
 * --valued measures the set track_changes uses: a 64-bit fingerprint beside each key,
 * added with keyset_put() and read back with the lookups (keyset_get_many()).
 *
 * Each size runs in its own child process so that the peak RSS reported is that size's
 * alone. Keys are 10 random-looking characters generated from their index (no key array,
 * so the RSS is the set's); generating one costs a few nanoseconds and is included.
 *
 * Columns (rates in millions per second):
 *   add/s     adds to a set grown from empty      sized/s   adds to keyset_new(n)
 *   hit/s     lookups of present keys             miss/s    lookups of absent keys
 *   hitN/s    the same, KEYS_PER_CALL at a time   missN/s   through keyset_has_many()
 *   worst_us  slowest single add the scheduler did not interrupt (best of the runs)
 *   wall_us   slowest single add whatever happened (best of the runs)
 *   >10us     adds slower than 10 µs (fewest of the runs)
 *   stw_ms    time of the sized build: the least a stop-the-world rehash would stall
 *   bytes/key keyset_memory() / n right after the last add
 *   peak_MiB  peak RSS of the process measuring this size */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keyset.h"
#include "../tests/unit/keygen.h"

/* The worst add is noisy on a shared machine (one preemption looks like a slow add), so
 * the latency pass is repeated and the smallest worst case reported: a real pause in the
 * set shows up in every run. Adds the scheduler interrupted are also set apart. */
#define LATENCY_RUNS 3
/* Keys per keyset_has_many() call: a page of sales (the daemon's default page size). */
#define KEYS_PER_CALL 100

static bool valued; /* --valued */

static struct keyset *new_set(size_t n)
{
	return valued ? keyset_new_valued(n) : keyset_new(n);
}

static int add_key(struct keyset *ks, const char *k, size_t i)
{
	return valued ? keyset_put(ks, k, KEY_LEN, i * 0x9e3779b97f4a7c15ULL)
	              : keyset_add(ks, k, KEY_LEN);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double per_second(size_t n, uint64_t ns)
{
	return ns ? (double)n * 1e9 / (double)ns : 0.0;
}

/* Context switches of this thread so far: an add that spans one measures the scheduler. */
static long switches(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

struct latency {
	uint64_t clean; /* worst add known not to have been switched out, ns */
	uint64_t wall;  /* worst add, whatever happened during it, ns */
	size_t slow;    /* adds over 10 µs */
};

/* Grow a set from empty timing every add. Asking the kernel for the switch count costs
 * about a microsecond, so it is asked only after a slow add and every CSW_EVERY adds: a
 * slow add counts as clean only if no switch happened since the previous question. */
#define SLOW_NS   20000
#define CSW_EVERY 1024
static int measure_latency(size_t n, struct latency *out)
{
	char k[KEY_LEN];
	struct keyset *ks = new_set(0);
	if (!ks)
		return -1;
	*out = (struct latency){0};
	long base = switches();
	size_t since = 0;
	for (size_t i = 0; i < n; i++) {
		make_key(i, k);
		uint64_t a = now_ns();
		add_key(ks, k, i);
		uint64_t d = now_ns() - a;
		if (d > out->wall)
			out->wall = d;
		out->slow += d > 10000;
		if (d <= SLOW_NS) {
			if (d > out->clean)
				out->clean = d;
			if (++since < CSW_EVERY)
				continue;
		}
		long now = switches();
		if (d > SLOW_NS && now == base && d > out->clean)
			out->clean = d;
		base = now;
		since = 0;
	}
	keyset_free(ks);
	return 0;
}

static int run_size(size_t n)
{
	char k[KEY_LEN];
	struct keyset *ks = new_set(0);
	if (!ks)
		return 1;

	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		make_key(i, k);
		if (add_key(ks, k, i) != 1) {
			fprintf(stderr, "add %zu failed\n", i);
			return 1;
		}
	}
	uint64_t t_add = now_ns() - t0;

	size_t found = 0;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		make_key(i, k);
		found += keyset_has(ks, k, KEY_LEN);
	}
	uint64_t t_hit = now_ns() - t0;

	t0 = now_ns();
	for (size_t i = n; i < 2 * n; i++) {
		make_key(i, k);
		found += keyset_has(ks, k, KEY_LEN);
	}
	uint64_t t_miss = now_ns() - t0;

	/* The same lookups, a call per KEYS_PER_CALL keys, as the daemon makes them. */
	static char kbuf[KEYS_PER_CALL][KEY_LEN];
	struct keyset_key keys[KEYS_PER_CALL];
	bool out[KEYS_PER_CALL];
	uint64_t vals[KEYS_PER_CALL];
	size_t found_many = 0, wrong_values = 0;
	uint64_t t_many[2];
	for (int pass = 0; pass < 2; pass++) {
		size_t base = pass ? n : 0;
		t0 = now_ns();
		for (size_t i = 0; i < n; i += KEYS_PER_CALL) {
			size_t m = n - i < KEYS_PER_CALL ? n - i : KEYS_PER_CALL;
			for (size_t j = 0; j < m; j++) {
				make_key(base + i + j, kbuf[j]);
				keys[j] = (struct keyset_key){kbuf[j], KEY_LEN};
			}
			if (valued)
				keyset_get_many(ks, keys, m, out, vals);
			else
				keyset_has_many(ks, keys, m, out);
			for (size_t j = 0; j < m; j++) {
				found_many += out[j];
				wrong_values += valued && out[j] &&
				                vals[j] != (base + i + j) * 0x9e3779b97f4a7c15ULL;
			}
		}
		t_many[pass] = now_ns() - t0;
	}
	if (found != n || found_many != n || keyset_count(ks) != n || wrong_values) {
		fprintf(stderr, "wrong answers: %zu found, %zu counted, %zu expected\n", found,
		        keyset_count(ks), n);
		return 1;
	}
	double bytes_per_key = (double)keyset_memory(ks) / (double)n;
	keyset_free(ks);

	/* Sized for n up front: no growth at all. The time this takes is also the least a
	 * stop-the-world rehash of n keys would stall the daemon for. */
	ks = new_set(n);
	if (!ks)
		return 1;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		make_key(i, k);
		add_key(ks, k, i);
	}
	uint64_t t_presized = now_ns() - t0;
	keyset_free(ks);

	struct latency best = {UINT64_MAX, UINT64_MAX, SIZE_MAX};
	for (int run = 0; run < LATENCY_RUNS; run++) {
		struct latency l;
		if (measure_latency(n, &l) < 0)
			return 1;
		best.clean = l.clean < best.clean ? l.clean : best.clean;
		best.wall = l.wall < best.wall ? l.wall : best.wall;
		best.slow = l.slow < best.slow ? l.slow : best.slow;
	}

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%9zu %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %8.0f %8.0f %6zu %7.0f %9.1f %8.1f\n", n,
	       per_second(n, t_add) / 1e6, per_second(n, t_presized) / 1e6,
	       per_second(n, t_hit) / 1e6, per_second(n, t_miss) / 1e6,
	       per_second(n, t_many[0]) / 1e6, per_second(n, t_many[1]) / 1e6,
	       (double)best.clean / 1e3, (double)best.wall / 1e3, best.slow,
	       (double)t_presized / 1e6, bytes_per_key, (double)ru.ru_maxrss / 1024.0);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const size_t defaults[] = {1000000, 5000000};
	size_t sizes[32], nsizes = 0;
	for (int i = 1; i < argc && nsizes < 32; i++) {
		char *end;
		if (strcmp(argv[i], "--valued") == 0) {
			valued = true;
			continue;
		}
		unsigned long long v = strtoull(argv[i], &end, 10);
		if (*end || v == 0 || v > (1ull << 40)) {
			fprintf(stderr, "usage: %s [--valued] [N...]\n", argv[0]);
			return 2;
		}
		sizes[nsizes++] = (size_t)v;
	}
	if (!nsizes) {
		memcpy(sizes, defaults, sizeof(defaults));
		nsizes = sizeof(defaults) / sizeof(defaults[0]);
	}

	printf("keyset%s: %d-byte random keys; rates in millions per second; %d latency runs\n",
	       valued ? " with 64-bit values" : "", KEY_LEN, LATENCY_RUNS);
	printf("%9s %7s %7s %7s %7s %7s %7s %8s %8s %6s %7s %9s %8s\n", "keys", "add/s", "sized/s",
	       "hit/s", "miss/s", "hitN/s", "missN/s", "worst_us", "wall_us", ">10us", "stw_ms",
	       "bytes/key", "peak_MiB");
	fflush(stdout);
	int status = 0;
	for (size_t i = 0; i < nsizes; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0)
			_exit(run_size(sizes[i]));
		int ws;
		if (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
			status = 1;
	}
	return status;
}
