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

// Hand-written AVX-512 kernels (target("avx512f") functions beside a portable path): compiled where GCC or
// Clang targets x86-64, run only where cpu_has_avx512f() says the CPU has the instructions.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MOE_AVX512_KERNELS 1
namespace moe::kernels {
inline bool cpu_has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
}  // namespace moe::kernels
#endif
