/*
 * files.h -- the few file-system operations several modules need around
 * RocksDB directories: remove a tree, make a file or directory durable.
 * Callers decide what a failure means (storage and catch-up fail-stop on
 * their own data; clean-up of leftovers may only warn).
 *
 * Thread: any (no shared state).
 */
#ifndef QUIVER_COMMON_FILES_H
#define QUIVER_COMMON_FILES_H

/* rm -rf path (symbolic links are removed, not followed).  0 when path is
 * gone (also when it never existed), -1 with errno otherwise. */
int q_remove_tree(const char *path);

/* fsync a file or a directory by path (a directory: so that entries created
 * or renamed in it are durable).  0, or -1 with errno. */
int q_fsync_path(const char *path);

/* fsync the directory holding path ("." for a bare name), so that a rename
 * to path is durable.  0, or -1 with errno. */
int q_fsync_parent(const char *path);

#endif
