/*
 * conv_fold.h - bind-time rewrites around convolutions (internal; see
 * conv_fold.c).
 */
#ifndef HLOSERVE_RUNTIME_CONV_FOLD_H
#define HLOSERVE_RUNTIME_CONV_FOLD_H

#include "base/arena.h"
#include "hloserve/tensor.h"
#include "runtime/ir.h"

/* Rewrites f's top-level block once its weights are bound: an element-wise
 * tail that is a per-channel affine function of a convolution (BatchNorm),
 * optionally plus a residual and a ReLU, becomes that convolution's epilogue
 * and disappears; then values passed only between oneDNN convolutions that
 * agree on a layout are kept in it.  kval[id] is value id's lasting value
 * (weights, constants, folded results) or NULL.  May move and drop ops of the
 * block: the caller recomputes liveness.  New IR comes from a.  *n_rewrites
 * (may be NULL) counts the tails folded. */
hs_status *hs_conv_fold(hs_arena *a, hs_func *f, const hs_tensor *const *kval, int *n_rewrites);

#endif
