/* secret.h - the See Tickets API key: Secret Manager, a file, or a systemd credential. */
#ifndef STBQ_SECRET_H
#define STBQ_SECRET_H

#include <stddef.h>

#include "config.h"
#include "gauth.h"
#include "http.h"
#include "secbuf.h"

#define SECRET_MAX_BYTES (64 * 1024) /* Secret Manager's payload limit; files are held to it too */

/* Load the API key from the configured source. 0 and a new secbuf in *key, or negative errno after
 * logging an actionable error that names the source (never the key). Surrounding whitespace is
 * stripped; an empty key is an error (-EINVAL). Secret Manager: -EACCES (403, 401), -ENOENT,
 * -EINVAL (400), -EBADMSG (CRC32C mismatch or bad payload), -EAGAIN, -ECANCELED. g, http and
 * policy are borrowed and needed only for Secret Manager (may be NULL otherwise). */
int secret_load(const struct config *cfg, struct gauth *g, struct http_client *http,
                const struct http_policy *policy, struct secbuf **key);
/* "Secret Manager secret projects/…/versions/latest", "file /etc/…", "systemd credential NAME".
 * Writes into buf and returns it. */
const char *secret_describe(const struct config *cfg, char *buf, size_t len);

#endif
