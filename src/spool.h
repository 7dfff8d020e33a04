/* spool.h - the durable queue of accepted rows not yet confirmed by BigQuery.
 *
 * Rows are appended to a segment file and fsynced before any request carries
 * them. A segment is retired (unlinked, directory fsynced) once every row in
 * it is confirmed or dead-lettered. After a crash the remaining segments are
 * replayed; rows whose key BigQuery already holds are skipped by the caller
 * (seeding runs first), so replay neither loses nor duplicates a row. A
 * final line without its newline is a torn write that was never fsynced, so
 * never sent: the reader ignores it. */
#ifndef STBQ_SPOOL_H
#define STBQ_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_MAX_LINE (16u * 1024 * 1024) /* a row larger than this cannot be in the spool */

struct spool;

/* Open (creating) DIR/spool for `feed`. 0 and *out, or -errno. */
int spool_open(const char *state_dir, const char *feed, struct spool **out);
/* The same for looking only (--audit, beside a running daemon): nothing is
 * created, a missing directory is an empty spool; use the reading calls
 * alone. A segment may be retired by the daemon while it is read. */
int spool_open_readonly(const char *state_dir, const char *feed, struct spool **out);
void spool_free(struct spool *sp); /* closes an open segment; accepts NULL */

/* Start a new segment; rows of one poll go into one segment. 0 or -errno. */
int spool_begin(struct spool *sp);
/* Append NDJSON lines (each ending in '\n') to the open segment and fsync.
 * On failure (ENOSPC, EDQUOT, EFBIG, EIO) the segment is truncated back to
 * its last good length, so nothing half-written stays behind. 0 or -errno. */
int spool_append(struct spool *sp, const char *data, size_t len);
/* Close the open segment; an empty one is removed. 0 or -errno. */
int spool_end(struct spool *sp);

/* Segments waiting, oldest first. The index is stable until spool_retire(). */
size_t spool_count(const struct spool *sp);
const char *spool_path(const struct spool *sp, size_t i);
/* Rescan the directory (after spool_end or at start). 0 or -errno. */
int spool_rescan(struct spool *sp);

/* Call fn for each complete line of segment i. A nonzero return stops and is returned. */
int spool_foreach(const struct spool *sp, size_t i,
                  int (*fn)(const char *line, size_t len, size_t lineno, void *ud), void *ud);
/* Unlink segment i (and its load plan) and fsync the directory. 0 or -errno. */
int spool_retire(struct spool *sp, size_t i);
/* Segment i cannot be read (permissions, a line over SPOOL_MAX_LINE, I/O):
 * rename it to PATH.unreadable, out of the queue, so that it does not hold
 * back every newer segment; a human can put it back. 0 or -errno. */
int spool_set_aside(struct spool *sp, size_t i);

/* The load plan of a segment: once a segment is sent by load jobs, the jobs
 * it is cut into must not depend on which lines are confirmed by then, or a
 * job still running when the daemon stops would be followed by a different
 * job over the same rows after the restart (duplicates). So before its
 * first load job, the lines already confirmed are recorded (fsynced) in
 * PATH.load, and every later drain cuts the same remaining lines into the
 * same jobs, whose ids are their content's hash: a resubmission is a 409,
 * and the job of the first submission is followed.
 *
 * Read the plan of segment i: 1 and the excluded line numbers (ascending,
 * malloc'ed, *n of them) if it has one, 0 if not, or -errno. */
int spool_plan_read(const struct spool *sp, size_t i, size_t **excluded, size_t *n);
/* Record the plan of segment i: the lines that are not part of its jobs. */
int spool_plan_write(struct spool *sp, size_t i, const size_t *excluded, size_t n);

#endif
