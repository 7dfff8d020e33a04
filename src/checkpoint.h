/* checkpoint.h - where the sales date filter starts, per event code.
 *
 * With `sales.date_filter`, each code is asked only for sales since its own
 * checkpoint. A code starts at the beginning (FEED first start), so the older
 * sales of an event found or listed later are still fetched; a code's
 * checkpoint moves only after a fetch of it completed with every row spooled
 * or dead-lettered. The file STATE/checkpoint-sales holds one line per code,
 * "ISO-TIME<TAB>CODE" (codes have no control characters), written atomically.
 * A file in the single-timestamp format of earlier versions is not trusted
 * for codes it never named: every code starts over once. */
#ifndef STBQ_CHECKPOINT_H
#define STBQ_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_FIRST_START "2000-01-01T00:00:00Z"

struct checkpoints;

/* Read PATH (missing: empty). NULL on ENOMEM; an unreadable file is logged
 * and read as empty, which only costs a longer first window. */
struct checkpoints *checkpoints_load(const char *path);
void checkpoints_free(struct checkpoints *cp);
/* The window start of `code` (CHECKPOINT_FIRST_START when it has none), as
 * ISO-8601; borrowed until the next checkpoints_set. */
const char *checkpoints_get(const struct checkpoints *cp, const char *code);
/* Move `code` to `t` (Unix seconds). 0 or -ENOMEM. */
int checkpoints_set(struct checkpoints *cp, const char *code, int64_t t);
/* Write the file atomically if anything moved. 0 or -errno. */
int checkpoints_save(struct checkpoints *cp);

#endif
