/*
 * seekmap: where a file holds data, and hole punching, for OpenVBS's file volume provider (Node has no
 * lseek SEEK_DATA/SEEK_HOLE nor fallocate). It works on file descriptor 3, which the caller opened and
 * checked (O_NOFOLLOW, device and inode): the helper never opens a path itself.
 *
 *   seekmap serve
 *
 * answers requests, one a line on stdin, until stdin ends (so it never outlives its parent). Every answer
 * ends with one line: "ok", "unsupported" (the descriptor or filesystem cannot do it: the caller then
 * reads everything as data, or writes zeros) or "error <message>".
 *
 *   data <start> <end> <min-hole>
 *       "<offset> <length>" lines for each range of [start, end) that may hold data, ascending; holes
 *       shorter than <min-hole> bytes count as data (merged with their neighbours), which bounds the answer.
 *   punch <offset> <length>
 *       deallocates the range of a regular file: it then reads as zeros, the file keeps its size.
 *
 * A process per file, not per request: a fork of a large Node process costs milliseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FD 3

static void error_line(const char *what) { printf("error %s: %s\n", what, strerror(errno)); }

static void data_ranges(int64_t start, int64_t end, int64_t min_hole) {
  struct stat st;
  if (fstat(FD, &st) != 0) return error_line("fstat");
  if (!S_ISREG(st.st_mode)) {
    puts("unsupported");
    return;
  }
  if (end > st.st_size) end = st.st_size;
  int64_t run_start = -1, run_end = -1; /* the range being merged, not yet printed */
  for (int64_t pos = start; pos < end;) {
    off_t data = lseek(FD, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* no data from pos to the end of the file */
      if (errno == EINVAL) {
        puts("unsupported");
        return;
      }
      return error_line("lseek SEEK_DATA");
    }
    if (data >= end) break;
    off_t hole = lseek(FD, data, SEEK_HOLE);
    if (hole < 0) return error_line("lseek SEEK_HOLE");
    if (hole > end) hole = end;
    if (run_start >= 0 && data - run_end < min_hole) {
      run_end = hole;
    } else {
      if (run_start >= 0) printf("%" PRId64 " %" PRId64 "\n", run_start, run_end - run_start);
      run_start = data;
      run_end = hole;
    }
    pos = hole;
  }
  if (run_start >= 0) printf("%" PRId64 " %" PRId64 "\n", run_start, run_end - run_start);
  puts("ok");
}

static void punch(int64_t offset, int64_t length) {
  struct stat st;
  if (fstat(FD, &st) != 0) return error_line("fstat");
  /* A block device would zero out instead, with its own alignment rules: the caller writes zeros there. */
  if (!S_ISREG(st.st_mode)) {
    puts("unsupported");
    return;
  }
  if (fallocate(FD, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0) {
    puts("ok");
  } else if (errno == EOPNOTSUPP || errno == ENOSYS || errno == ENODEV) {
    puts("unsupported");
  } else {
    error_line("fallocate PUNCH_HOLE");
  }
}

int main(int argc, char **argv) {
  if (argc != 2 || strcmp(argv[1], "serve") != 0) {
    fprintf(stderr, "usage: seekmap serve   (requests on stdin, the file on descriptor 3)\n");
    return 2;
  }
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, stdin) > 0) {
    long long a, b, c;
    char extra;
    if (sscanf(line, "data %lld %lld %lld %c", &a, &b, &c, &extra) == 3 && a >= 0 && b >= a && c >= 0) {
      data_ranges(a, b, c);
    } else if (sscanf(line, "punch %lld %lld %c", &a, &b, &extra) == 2 && a >= 0 && b > 0) {
      punch(a, b);
    } else {
      printf("error bad request\n");
    }
    if (fflush(stdout) != 0) return 1;
  }
  free(line);
  return 0;
}
