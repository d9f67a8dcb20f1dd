/* Who wrote a temporary file or directory: "<pid>-<pid namespace>", put in its name so
 * that a later process can remove what a killed writer left behind. A pid means
 * nothing outside its own namespace (a jailed worker has one of its own, in which the
 * daemon's pid does not exist), so only a process in the writer's namespace may judge
 * that the writer is gone. */
#ifndef THAW_HOST_WRITER_TAG_H
#define THAW_HOST_WRITER_TAG_H

#include <stdbool.h>
#include <stddef.h>

#define WRITER_TAG_MAX 48 /* "<pid>-<inode>" and its NUL, with room to spare */

/* Writes this process's tag into out (at least WRITER_TAG_MAX bytes). */
void writer_tag(char out[WRITER_TAG_MAX]);

/* True if s starts with a tag, followed by '.', of a writer in our pid namespace that
 * has exited. False for a live writer, another namespace's, an unknown namespace (ours
 * or its) or anything that is not a tag. */
bool writer_tag_gone(const char *s);

#endif
