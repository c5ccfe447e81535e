/*
 * ft_emu.h - region markers for counting executed instructions on an emulator (private).
 *
 * A build with -DFT_EMU_TRACE calls ft_emu_mark(row, phase) before every kernel call and
 * ft_emu_mark(-1, 0) after it; the emulator harness (fedhar/ondevice/emu/harness) defines the
 * function, and the QEMU plugin (fedhar/ondevice/emu/plugin) attributes every executed
 * instruction to the last region marked. Every other build compiles the markers away, so the
 * library that ships has none.
 */
#ifndef FT_EMU_H
#define FT_EMU_H

#include <stdint.h>

#ifdef FT_EMU_TRACE
void ft_emu_mark(int32_t row, int32_t phase);
#define FT_EMU_MARK(row, phase) ft_emu_mark((row), (phase))
#else
#define FT_EMU_MARK(row, phase) ((void)0)
#endif
/* Back to the glue region: code that no kernel's counter covers. */
#define FT_EMU_GLUE() FT_EMU_MARK(-1, 0)

#endif /* FT_EMU_H */
