// MOE_SIMD_CLONES on a hot CPU loop builds it twice, for x86-64-v3 (AVX2, FMA) and for the baseline ISA,
// and picks one at load time by the CPU's features (GCC/Clang function multiversioning on x86-64 ELF):
// wide vectors without a -march build. ("arch=haswell" would test the CPU model and pick the baseline on
// AMD.)
#pragma once

// Helpers it calls are compiled for the baseline unless inlined: mark them MOE_ALWAYS_INLINE.
#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define MOE_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MOE_SIMD_CLONES
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MOE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MOE_ALWAYS_INLINE inline
#endif
