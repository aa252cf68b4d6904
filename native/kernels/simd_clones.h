// MOE_SIMD_CLONES on a hot CPU loop builds it twice, for AVX2+FMA and for the baseline ISA, and picks one
// at load time (GCC/Clang function multiversioning on x86-64 ELF): wide vectors without a -march build.
#pragma once

#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define MOE_SIMD_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define MOE_SIMD_CLONES
#endif
