#define _GNU_SOURCE
#include "CMappedGuard.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// A fixed table the signal handler can read without locks or allocation; a slot is live while its
// start is non-zero (set last on register, cleared first on unregister).
#define SLOTS 1024
static _Atomic uintptr_t starts[SLOTS];
static _Atomic uintptr_t ends[SLOTS];
static _Atomic int faulted[SLOTS];
static uintptr_t page_size;
static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t claim = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int signal_number, siginfo_t *info, void *context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t start = atomic_load(&starts[i]);
        if (start == 0 || address < start) continue;
        uintptr_t end = atomic_load(&ends[i]);
        if (address >= end) continue;
        // The file ends before this page: every later page is gone too, so zero them all at once.
        uintptr_t page = address & ~(page_size - 1);
        void *zeros = mmap((void *)page, end - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (zeros == MAP_FAILED) break;
        atomic_store(&faulted[i], 1);
        return;
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(signal_number, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal_number);
    } else {
        // Returning repeats the faulting access, which now ends the process as it would have.
        signal(signal_number, SIG_DFL);
    }
}

static void install(void) {
    page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous);
}

int tl_guard_register(const void *base, size_t length) {
    if (base == NULL || length == 0) return -1;
    pthread_once(&once, install);
    uintptr_t start = (uintptr_t)base;
    uintptr_t end = (start + length + page_size - 1) & ~(page_size - 1);
    pthread_mutex_lock(&claim);
    int slot = -1;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&starts[i]) == 0) { slot = i; break; }
    }
    if (slot >= 0) {
        atomic_store(&faulted[slot], 0);
        atomic_store(&ends[slot], end);
        atomic_store(&starts[slot], start);
    }
    pthread_mutex_unlock(&claim);
    return slot;
}

int tl_guard_faulted(int slot) {
    if (slot < 0 || slot >= SLOTS) return 0;
    return atomic_load(&faulted[slot]);
}

int tl_guard_unregister(int slot) {
    if (slot < 0 || slot >= SLOTS) return 0;
    pthread_mutex_lock(&claim);
    atomic_store(&starts[slot], 0);
    atomic_store(&ends[slot], 0);
    int had_faulted = atomic_exchange(&faulted[slot], 0);
    pthread_mutex_unlock(&claim);
    return had_faulted;
}
