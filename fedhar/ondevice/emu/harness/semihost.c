/* semihost.c - the semihosting calls of semihost.h. */
#include "semihost.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT_EXTENDED = 0x20,
    ADP_STOPPED_APPLICATION_EXIT = 0x20026
};

static int32_t sh_call(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int32_t sh_open(const char *path, int write)
{
    /* Modes 1 ("rb") and 5 ("wb") of the spec's fopen table. */
    const uint32_t args[3] = {(uint32_t)path, write ? 5u : 1u, (uint32_t)strlen(path)};
    return sh_call(SYS_OPEN, args);
}

int32_t sh_read(int32_t fd, void *buf, int32_t n)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)buf, (uint32_t)n};
    return n - sh_call(SYS_READ, args); /* the call returns the bytes NOT read */
}

int32_t sh_write(int32_t fd, const void *buf, int32_t n)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)buf, (uint32_t)n};
    return sh_call(SYS_WRITE, args);
}

int32_t sh_close(int32_t fd)
{
    const uint32_t args[1] = {(uint32_t)fd};
    return sh_call(SYS_CLOSE, args);
}

int32_t sh_flen(int32_t fd)
{
    const uint32_t args[1] = {(uint32_t)fd};
    return sh_call(SYS_FLEN, args);
}

void sh_puts(const char *s) { (void)sh_call(SYS_WRITE0, s); }

void sh_exit(int32_t code)
{
    const uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    (void)sh_call(SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}
