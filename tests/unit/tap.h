/* tap.h - a tiny TAP producer for the unit tests: one "ok"/"not ok" line per test case. */
#ifndef STBQ_TAP_H
#define STBQ_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count;
static int tap_failed_total;
static int tap_case_failed;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
			tap_case_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long va_ = (long long)(a), vb_ = (long long)(b);                              \
		if (va_ != vb_) {                                                                  \
			printf("# %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__,   \
			       #a, va_, #b, vb_);                                                  \
			tap_case_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *sa_ = (a), *sb_ = (b);                                                 \
		if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                       \
			printf("# %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
			       sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                        \
			tap_case_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		tap_case_failed = 0;                                                               \
		fn();                                                                              \
		tap_count++;                                                                       \
		if (tap_case_failed)                                                               \
			tap_failed_total++;                                                        \
		printf("%s %d - %s\n", tap_case_failed ? "not ok" : "ok", tap_count, #fn);         \
		fflush(stdout);                                                                    \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed_total ? 1 : 0;
}

#endif
