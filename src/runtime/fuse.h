/*
 * fuse.h - the element-wise fusion pass (internal; see fuse.c).
 */
#ifndef HLOSERVE_RUNTIME_FUSE_H
#define HLOSERVE_RUNTIME_FUSE_H

#include "base/arena.h"
#include "runtime/ir.h"

/* Replaces groups of element-wise ops (and the broadcasts only they read) in
 * block b of function f by single fused ops.  Every op of b must already be
 * compiled (kernel and kernel_state set).  New ops and plans come from a. */
hs_status *hs_fuse_block(hs_arena *a, hs_func *f, hs_block *b);

/* The ops a fused op replaced, root first, and their count; 0 when op is not
 * a fused op.  Their IR is intact (each still names the values it reads;
 * the root's result is now the fused op's), so later passes can read the
 * group's arithmetic. */
int hs_fused_members(const hs_op *op, hs_op *const **members);

#endif
