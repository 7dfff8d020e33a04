/* probe_common.c - options, set-up and output shared by the integration-test probes. */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "probe_common.h"

void probe_usage(const struct probe_common *pc, int status)
{
	pc->usage(status == 0 ? stdout : stderr);
	exit(status);
}

bool probe_option(struct probe_common *pc, int c, const char *arg)
{
	int level;

	switch (c) {
	case 'c':
		pc->credentials = arg;
		return true;
	case 'a':
		pc->policy.max_attempts = atoi(arg);
		return true;
	case 'b':
		pc->policy.budget_ms = atol(arg);
		return true;
	case 'l':
		level = log_level_parse(arg);
		if (level < 0)
			probe_usage(pc, 64);
		log_set_level(level);
		return true;
	case 'h':
		probe_usage(pc, 0);
	default:
		return false;
	}
}

int probe_open(struct probe_common *pc, const struct http_options *ho, const char *metadata_host,
               char *err, size_t errlen)
{
	http_global_init();
	pc->http = http_client_new(ho);
	if (!pc->http) {
		snprintf(err, errlen, "http client");
		return -ENOMEM;
	}
	struct gauth_options go = {.credentials = pc->credentials,
	                           .metadata_host = metadata_host,
	                           .http = pc->http,
	                           .policy = &pc->policy};
	pc->auth = gauth_new(&go, err, errlen);
	return pc->auth ? 0 : -EINVAL;
}

void probe_close(struct probe_common *pc)
{
	gauth_free(pc->auth);
	pc->auth = NULL;
	http_client_free(pc->http);
	pc->http = NULL;
	http_global_cleanup();
}

void probe_emit(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (s) {
		puts(s);
		fflush(stdout);
	}
	free(s);
	json_decref(o);
}
