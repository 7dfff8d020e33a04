/* config.h - the libconfig file, validated into a plain struct.
 *
 * config_load() reads and checks the whole file and reports every problem it
 * finds (not just the first) as "FILE:LINE: key: problem". A reload builds a
 * new struct with config_load() and the caller swaps it in only on success,
 * so a bad edit never disturbs the running configuration. */
#ifndef STBQ_CONFIG_H
#define STBQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/seetickets-bq/seetickets-bq.conf"

enum config_insert_method {
	CONFIG_INSERT_STREAMING,
	CONFIG_INSERT_LOAD,
};

enum config_key_source {
	CONFIG_KEY_SECRET,     /* seetickets.api_key_secret (Secret Manager) */
	CONFIG_KEY_FILE,       /* seetickets.api_key_file */
	CONFIG_KEY_CREDENTIAL, /* seetickets.api_key_credential under $CREDENTIALS_DIRECTORY */
};

#define CONFIG_CHANGES_SUFFIX "_changes" /* TABLE_changes: changed versions of rows */
#define CONFIG_CURRENT_SUFFIX "_current" /* TABLE_current: the view of the latest */

struct config_feed {
	bool enabled;
	char *table;
	int interval; /* seconds, 1..86400 */
	/* Changed versions of known rows go to TABLE_changes (README, "Changed
	 * rows"); the base table gains _fingerprint, TABLE_current is a view. */
	bool track_changes;
};

struct config {
	char *path;    /* the file this was read from */
	int log_level; /* LOG_* from syslog.h */
	char *state_dir;
	char *metrics_file; /* "" = off */

	struct {
		char *base_url;
		enum config_key_source key_source;
		char *key_ref; /* secret name, file path or credential name, per key_source */
		int page_size; /* 0 = send no limit */
		int timeout;   /* seconds per HTTP request */
		long long max_response_bytes;
	} seetickets;

	struct {
		char *credentials; /* "auto", "metadata" or a file path */
		char *bigquery_endpoint;
		char *secretmanager_endpoint;
		char *metadata_host;
		char *ca_file; /* "" = system store only */
	} google;

	struct {
		char *project;
		char *dataset;
		char *location;
		enum config_insert_method insert_method;
		int batch_rows;
		long long batch_bytes;
		bool create_tables;
	} bigquery;

	struct {
		struct config_feed feed;
		char **event_codes; /* NULL-terminated; empty = automatic */
		size_t n_event_codes;
		int event_lookback_days;
		int codes_per_request;
		bool date_filter;
	} sales;

	struct {
		struct config_feed feed;
	} events;
};

/* Parse and validate `path`. On success returns 0 and a new config in *out.
 * On failure returns -EINVAL (or -errno when the file cannot be read), sets
 * *out to NULL, and writes one "FILE:LINE: key: problem" line per problem to
 * `errors` (a malloc'd NUL-terminated string the caller frees; may be NULL
 * if the caller does not want it). */
int config_load(const char *path, struct config **out, char **errors);
void config_free(struct config *c); /* accepts NULL */

#endif
