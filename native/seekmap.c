/*
 * seekmap: where a file holds data, and hole punching, for OpenVBS's file volume provider (Node has no
 * lseek SEEK_DATA/SEEK_HOLE nor fallocate). It works on file descriptor 3, which the caller opened and
 * checked (O_NOFOLLOW, device and inode): the helper never opens a path itself.
 *
 *   seekmap data <start> <end> <min-hole>
 *       Prints "<offset> <length>\n" for each range of [start, end) that may hold data, ascending. Holes
 *       shorter than <min-hole> bytes are reported as data (merged with their neighbours), which bounds
 *       the output. Exit 0; exit 4 when the descriptor cannot tell (e.g. a block device): the caller
 *       then treats everything as data.
 *   seekmap punch
 *       Reads "<offset> <length>\n" lines on stdin and deallocates each range (it then reads as zeros; the
 *       size stays). Exit 0; exit 4 when the filesystem cannot punch holes (nothing after that line is
 *       done): the caller writes zeros instead.
 *
 * Other failures: a message on stderr and exit 1; bad arguments: exit 2.
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
#define UNSUPPORTED 4

static int parse(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 0) return -1;
  *out = (int64_t)v;
  return 0;
}

static int data_ranges(int64_t start, int64_t end, int64_t min_hole) {
  struct stat st;
  if (fstat(FD, &st) != 0) {
    perror("seekmap: fstat");
    return 1;
  }
  if (!S_ISREG(st.st_mode)) return UNSUPPORTED;
  if (end > st.st_size) end = st.st_size;
  int64_t run_start = -1, run_end = -1; /* the range being merged, not yet printed */
  int64_t pos = start;
  while (pos < end) {
    off_t data = lseek(FD, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* no data from pos to the end of the file */
      if (errno == EINVAL) return UNSUPPORTED;
      perror("seekmap: lseek SEEK_DATA");
      return 1;
    }
    if (data >= end) break;
    off_t hole = lseek(FD, data, SEEK_HOLE);
    if (hole < 0) {
      perror("seekmap: lseek SEEK_HOLE");
      return 1;
    }
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
  if (fflush(stdout) != 0) {
    perror("seekmap: stdout");
    return 1;
  }
  return 0;
}

static int punch(void) {
  long long offset, length;
  int n;
  while ((n = scanf("%lld %lld", &offset, &length)) == 2) {
    if (offset < 0 || length <= 0) {
      fprintf(stderr, "seekmap: bad range %lld %lld\n", offset, length);
      return 2;
    }
    if (fallocate(FD, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) != 0) {
      if (errno == EOPNOTSUPP || errno == ENOSYS || errno == ENODEV) return UNSUPPORTED;
      perror("seekmap: fallocate PUNCH_HOLE");
      return 1;
    }
  }
  if (n != EOF) {
    fprintf(stderr, "seekmap: bad input\n");
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "data") == 0) {
    int64_t start, end, min_hole;
    if (parse(argv[2], &start) || parse(argv[3], &end) || parse(argv[4], &min_hole)) {
      fprintf(stderr, "seekmap: bad number\n");
      return 2;
    }
    return data_ranges(start, end, min_hole);
  }
  if (argc == 2 && strcmp(argv[1], "punch") == 0) return punch();
  fprintf(stderr, "usage: seekmap data <start> <end> <min-hole> | seekmap punch   (file on descriptor 3)\n");
  return 2;
}
