/*
 * inline.h - inline func.call sites (internal; see inline.c).
 */
#ifndef HLOSERVE_RUNTIME_INLINE_H
#define HLOSERVE_RUNTIME_INLINE_H

#include "runtime/ir.h"

/* Inlines the calls in every function's top-level block (not recursion).
 * Runs on a parsed, not yet compiled module. */
hs_status *hs_inline_calls(hs_module *m);

#endif
