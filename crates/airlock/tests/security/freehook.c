// LD_PRELOAD spy for freed_heap_scraped_for_secrets.rs: reports every heap block that is freed (or abandoned by
// a moving realloc) while it still contains the bytes of $CANARY. Such a block is a copy of the secret that
// nobody wiped, readable later by anything that can read the process's heap.
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void __libc_free(void *);
extern void *__libc_realloc(void *, size_t);

static char canary[256];
static size_t clen;

__attribute__((constructor)) static void init(void) {
    const char *c = getenv("CANARY");
    if (c && strlen(c) < sizeof canary) {
        strcpy(canary, c);
        clen = strlen(c);
    }
}

static int holds_canary(void *p) {
    if (!p || !clen) return 0;
    size_t n = malloc_usable_size(p);
    return n >= clen && memmem(p, n, canary, clen) != NULL;
}

static void report(const char *what, size_t size) {
    char buf[128];
    int n = snprintf(buf, sizeof buf, "[freehook] %s of a %zu-byte block still holding the canary\n", what, size);
    if (n > 0) (void)!write(2, buf, (size_t)n);
}

void free(void *p) {
    if (holds_canary(p)) report("free", malloc_usable_size(p));
    __libc_free(p);
}

void *realloc(void *p, size_t n) {
    int held = holds_canary(p);
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = __libc_realloc(p, n);
    if (held && q && q != p) report("moving realloc", old);
    return q;
}
