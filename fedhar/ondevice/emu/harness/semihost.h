/*
 * semihost.h - Arm semihosting calls (BKPT 0xAB on M-profile) for the emulator harness: host
 * files, the console and the exit code. Arm's "Semihosting for AArch32 and AArch64" spec gives
 * the operation numbers.
 */
#ifndef FH_SEMIHOST_H
#define FH_SEMIHOST_H

#include <stdint.h>

/* Opens a host file; mode "rb" or "wb". Returns a handle >= 0, or -1. */
int32_t sh_open(const char *path, int write);
/* Reads up to n bytes; returns the bytes read. */
int32_t sh_read(int32_t fd, void *buf, int32_t n);
/* Writes n bytes; returns 0 on success. */
int32_t sh_write(int32_t fd, const void *buf, int32_t n);
int32_t sh_close(int32_t fd);
/* Length of an open file in bytes, or -1. */
int32_t sh_flen(int32_t fd);
/* Writes a NUL-terminated string to the host console. */
void sh_puts(const char *s);
/* Ends the emulation with an exit code (SYS_EXIT_EXTENDED). */
void sh_exit(int32_t code) __attribute__((noreturn));

#endif /* FH_SEMIHOST_H */
