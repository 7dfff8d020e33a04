/* daemon.h - start-up, the feeds' timers, reload, --once and --dry-run. */
#ifndef STBQ_DAEMON_H
#define STBQ_DAEMON_H

#include <stdbool.h>

#include "config.h"

#define DAEMON_HTTP_ATTEMPTS       6      /* tries per request while running as a daemon */
#define DAEMON_HTTP_BUDGET_MS      180000 /* ... and at most this long                 */
#define DAEMON_ONCE_ATTEMPTS       10     /* --once: about 60 s per request, then give up */
#define DAEMON_ONCE_BUDGET_MS      60000
#define DAEMON_GOOGLE_TIMEOUT_S    120 /* a query page can be 20 MB                 */
#define DAEMON_GOOGLE_MAX_RESPONSE (64u << 20)

struct daemon_options {
	const char *config_path;
	bool once;
	bool dry_run;
	const char *feed; /* NULL: every enabled feed */
	int log_level;    /* -1: from the configuration */
	bool audit;       /* --audit (audit.h) */
	bool audit_json;  /* --json */
	bool audit_wait;  /* --wait */
};

/* Run until stopped (or one cycle with --once, or the audit). Takes
 * ownership of cfg. Returns the process exit status (sysexits; the audit
 * also 1: something is missing, duplicated or stale). */
int daemon_run(struct config *cfg, const struct daemon_options *o);

#endif
