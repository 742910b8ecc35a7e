/*
 * simd.h - 16-float vectors for the kernels that move data around the
 * matrix products (Winograd's transforms, packing), in the GCC/Clang vector
 * extension: one source, compiled per target (AVX-512 where the caller is
 * built for it, else what the baseline makes of it).
 *
 * Only for GNU C compilers (NB_SIMD set); the callers keep a plain path.
 */
#ifndef NB_SIMD_H
#define NB_SIMD_H

#if defined(__GNUC__)
#define NB_SIMD 1

#define NB_INLINE static inline __attribute__((always_inline))

typedef float wv __attribute__((vector_size(64)));
typedef float wv8 __attribute__((vector_size(32)));
/* Loads and stores through unaligned, aliasing variants of the types:
 * memcpy pairs would be merged into calls. */
typedef float wv_u __attribute__((vector_size(64), aligned(4), may_alias));
typedef float wv8_u __attribute__((vector_size(32), aligned(4), may_alias));
#define wv_load(p) (*(const wv_u *)(p))
#define wv_store(p, v) (*(wv_u *)(p) = (v))

/* Interleaves a and b lane by lane: their first halves (lo) or second. */
#if defined(__clang__)
#define WV_ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define WV_ZIP_HI(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#else
typedef int wvi __attribute__((vector_size(64)));
#define WV_ZIP_LO(a, b) __builtin_shuffle(a, b, (wvi){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23})
#define WV_ZIP_HI(a, b) __builtin_shuffle(a, b, (wvi){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
#endif

/* a vector's first and second 8 floats */
#define WV_LO8(v) ((wv8){(v)[0], (v)[1], (v)[2], (v)[3], (v)[4], (v)[5], (v)[6], (v)[7]})
#define WV_HI8(v) ((wv8){(v)[8], (v)[9], (v)[10], (v)[11], (v)[12], (v)[13], (v)[14], (v)[15]})

/* r[16] of 16 floats, transposed in registers: zipping rows d apart, for
 * d = 8, 4, 2, 1, leaves column i in row i (written out: left as loops,
 * the compiler kept r in memory). */
#define WV_ZIP_ROWS(r, i, j)                                              \
    do {                                                                  \
        const wv lo_ = WV_ZIP_LO(r[i], r[j]), hi_ = WV_ZIP_HI(r[i], r[j]); \
        r[i] = lo_;                                                       \
        r[j] = hi_;                                                       \
    } while (0)
#define WV_ZIP_STAGE(r, d, a, b, c, e, f, g, h, k)                                                     \
    do {                                                                                           \
        WV_ZIP_ROWS(r, a, a + d); WV_ZIP_ROWS(r, b, b + d); WV_ZIP_ROWS(r, c, c + d); WV_ZIP_ROWS(r, e, e + d); \
        WV_ZIP_ROWS(r, f, f + d); WV_ZIP_ROWS(r, g, g + d); WV_ZIP_ROWS(r, h, h + d); WV_ZIP_ROWS(r, k, k + d); \
    } while (0)
NB_INLINE void wv_transpose16(wv r[16])
{
    WV_ZIP_STAGE(r, 8, 0, 1, 2, 3, 4, 5, 6, 7);
    WV_ZIP_STAGE(r, 4, 0, 1, 2, 3, 8, 9, 10, 11);
    WV_ZIP_STAGE(r, 2, 0, 1, 4, 5, 8, 9, 12, 13);
    WV_ZIP_STAGE(r, 1, 0, 2, 4, 6, 8, 10, 12, 14);
}

#endif /* __GNUC__ */
#endif
