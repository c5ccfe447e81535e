/*
 * ft_conv1d_avx512.c - the Conv1D and Dense kernels of ft_conv1d.c compiled once more, for
 * x86-64-v4 (AVX-512) with 16-float vectors: ft_conv1d_forward and the two backward entry
 * points call these when the CPU has AVX-512, and their own AVX2+FMA, AVX2 or baseline clones
 * otherwise. Same loops, same operation counts; only the vector width differs. On every other
 * target, and in plain C99 builds (FT_PLAIN_C, FT_NO_TARGET_CLONES), this unit is empty.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FT_PLAIN_C) && \
    !defined(FT_NO_TARGET_CLONES)
#pragma GCC target("arch=x86-64-v4")
#define FT_CONV_VARIANT 1
#define FT_VL 16
#include "ft_conv1d.c"
#else
typedef int ft_conv1d_avx512_empty; /* ISO C wants a declaration in every unit */
#endif
