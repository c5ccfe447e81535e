/*
 * startup.c - reset and fault handlers and the vector table of the Cortex-M4 harness: copies
 * .data, zeroes .bss, enables the FPU (CPACR, Arm v7-M ARM B3.2.20), runs main and exits
 * through semihosting with its return value. A fault exits with code 99.
 */
#include <stdint.h>
#include <string.h>

#include "semihost.h"

extern uint32_t _data_load, _data_start, _data_end, _bss_start, _bss_end, _stack_top;
int main(void);

void fh_reset(void) __attribute__((noreturn));
void fh_fault(void) __attribute__((noreturn));

void fh_reset(void)
{
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    memcpy(&_data_start, &_data_load,
           (size_t)((uint8_t *)&_data_end - (uint8_t *)&_data_start));
    memset(&_bss_start, 0, (size_t)((uint8_t *)&_bss_end - (uint8_t *)&_bss_start));
    *cpacr |= 0xFu << 20; /* CP10 and CP11: full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    sh_exit(main());
}

void fh_fault(void)
{
    sh_puts("fedhar harness: processor fault\n");
    sh_exit(99);
}

/* Initial stack, reset, then NMI, HardFault, MemManage, BusFault and UsageFault. */
__attribute__((section(".vectors"), used)) static void (*const vectors[7])(void) = {
    (void (*)(void))(&_stack_top), fh_reset, fh_fault, fh_fault, fh_fault, fh_fault, fh_fault,
};
