/* url.h - the project's URL policy and small URL helpers (no I/O). */
#ifndef STBQ_URL_H
#define STBQ_URL_H

#include <stdbool.h>
#include <stddef.h>

/* True for https:// URLs with a host, and for http:// URLs whose host is
 * loopback (127.0.0.0/8, [::1], localhost): tests and emulators only. */
bool url_allowed(const char *url);
/* True if `host` (no port, IPv6 without brackets) is a loopback name or address. */
bool url_host_is_loopback(const char *host);
/* Copy the host part of an http(s) URL (without port or brackets) into buf.
 * 0 on success, -EINVAL if the URL has no scheme://host. */
int url_host(const char *url, char *buf, size_t len);
/* True for "HOST" or "HOST:PORT" (a name of letters, digits, '.', '-', '_',
 * or an [IPv6] literal; port 1-65535): the form of metadata_host and of the
 * GCE_METADATA_HOST environment variable. No scheme, path, user or query. */
bool url_is_host_port(const char *s);
/* Percent-encode one path segment or query value (RFC 3986 unreserved kept).
 * Returns a new string, NULL on ENOMEM. "sales$2026" -> "sales%242026". */
char *url_escape(const char *s);

#endif
