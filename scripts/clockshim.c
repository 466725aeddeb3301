/* A clock shim for the test suite: LD_PRELOADed into the test binaries, rdbtool and every
 * redis-server they start, it moves the wall clock (CLOCK_REALTIME, gettimeofday, time) by
 * RDBTOOL_CLOCK_OFFSET_S seconds. Monotonic clocks are left alone, so timeouts behave.
 *
 * libfaketime does the same in general, but it deadlocks in Debian's redis-server (jemalloc
 * calls clock_gettime while libfaketime initialises, which allocates). This shim allocates
 * nothing and resolves no symbol: it asks the kernel directly (a syscall instead of the vDSO,
 * slower but only for the tests).
 *
 * Built and used by scripts/test.sh when RDBTOOL_CLOCK_OFFSET is set. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_seconds(void) {
    static volatile long long cached = -1;
    if (cached == -1) {
        const char *v = getenv("RDBTOOL_CLOCK_OFFSET_S");
        cached = v ? atoll(v) : 0;
    }
    return cached;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    long r = syscall(SYS_clock_gettime, id, ts);
    if (r == 0 && ts && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        ts->tv_sec += offset_seconds();
    }
    return (int)r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    (void)tz;
    if (r == 0 && tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return r;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return (time_t)-1;
    }
    if (out) {
        *out = ts.tv_sec;
    }
    return ts.tv_sec;
}
