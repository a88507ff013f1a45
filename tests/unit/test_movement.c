/*
 * test_movement.c - the data-movement, indexing and sorting kernels
 * (kernels/movement.c, kernels/mv_*.c), driven through the public runtime
 * API with small MLIR programs.
 *
 * Two kinds of tests: self-checking programs (constants in, the op, then
 * check.expect_eq against hand-worked expected values, so the semantics are
 * pinned down exactly - clamping, negative padding, skipped scatter windows,
 * NaN order), and randomised comparisons of large f32 moves (transpose, pad,
 * slice, broadcast, concatenate, gather) against a naive C reference, run
 * with several threads so that the tiled and the split paths are exercised.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hloserve/runtime.h"
#include "testlib.h"

static float *random_f32(int64_t n, unsigned seed) {
  float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
  srand(seed);
  for (int64_t i = 0; i < n; i++) v[i] = (float)(rand() % 20001 - 10000) / 100.0f;
  return v;
}

/* ---------------------------------------------------------- simple moves */

HS_TEST(broadcast_reshape_transpose) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %s = stablehlo.constant dense<7> : tensor<i32>\n"
      "  %a = stablehlo.broadcast_in_dim %s, dims = [] : (tensor<i32>) -> tensor<2x2xi32>\n"
      "  check.expect_eq_const %a, dense<7> : tensor<2x2xi32>\n"
      "  %r = stablehlo.constant dense<[[1, 2, 3]]> : tensor<1x3xi16>\n"
      "  %b = stablehlo.broadcast_in_dim %r, dims = [0, 2] : (tensor<1x3xi16>) -> tensor<2x2x3xi16>\n"
      "  check.expect_eq_const %b, dense<[[[1, 2, 3], [1, 2, 3]], [[1, 2, 3], [1, 2, 3]]]> : tensor<2x2x3xi16>\n"
      "  %c = stablehlo.constant dense<[1.0, 2.0]> : tensor<2xf64>\n"
      "  %d = stablehlo.broadcast_in_dim %c, dims = [0] : (tensor<2xf64>) -> tensor<2x3xf64>\n"
      "  check.expect_eq_const %d, dense<[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]> : tensor<2x3xf64>\n"
      "  %e = stablehlo.reshape %d : (tensor<2x3xf64>) -> tensor<3x2xf64>\n"
      "  check.expect_eq_const %e, dense<[[1.0, 1.0], [1.0, 2.0], [2.0, 2.0]]> : tensor<3x2xf64>\n"
      "  %t = stablehlo.constant dense<[[[1, 2], [3, 4], [5, 6]]]> : tensor<1x3x2xui8>\n"
      "  %u = stablehlo.transpose %t, dims = [2, 0, 1] : (tensor<1x3x2xui8>) -> tensor<2x1x3xui8>\n"
      "  check.expect_eq_const %u, dense<[[[1, 3, 5]], [[2, 4, 6]]]> : tensor<2x1x3xui8>\n"
      "  %p = stablehlo.constant dense<[[true, false]]> : tensor<1x2xi1>\n"
      "  %q = stablehlo.transpose %p, dims = [1, 0] : (tensor<1x2xi1>) -> tensor<2x1xi1>\n"
      "  check.expect_eq_const %q, dense<[[true], [false]]> : tensor<2x1xi1>\n"
      "  return\n"
      "}\n"));
}

HS_TEST(slice_reverse_concat) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]> : tensor<3x5xi64>\n"
      "  %a = stablehlo.slice %x [0:3:2, 1:5:3] : (tensor<3x5xi64>) -> tensor<2x2xi64>\n"
      "  check.expect_eq_const %a, dense<[[1, 4], [11, 14]]> : tensor<2x2xi64>\n"
      "  %b = stablehlo.slice %x [1:1, 0:5] : (tensor<3x5xi64>) -> tensor<0x5xi64>\n"
      "  %c = stablehlo.reverse %x, dims = [1] : tensor<3x5xi64>\n"
      "  check.expect_eq_const %c, dense<[[4, 3, 2, 1, 0], [9, 8, 7, 6, 5], [14, 13, 12, 11, 10]]> : tensor<3x5xi64>\n"
      "  %d = stablehlo.reverse %x, dims = [0, 1] : tensor<3x5xi64>\n"
      "  %e = stablehlo.slice %d [0:1, 0:2] : (tensor<3x5xi64>) -> tensor<1x2xi64>\n"
      "  check.expect_eq_const %e, dense<[[14, 13]]> : tensor<1x2xi64>\n"
      "  %f = stablehlo.concatenate %a, %e, dim = 0 : (tensor<2x2xi64>, tensor<1x2xi64>) -> tensor<3x2xi64>\n"
      "  check.expect_eq_const %f, dense<[[1, 4], [11, 14], [14, 13]]> : tensor<3x2xi64>\n"
      "  return\n"
      "}\n"));
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %a = stablehlo.constant dense<[[1, 2], [3, 4]]> : tensor<2x2xf32>\n"
      "  %b = stablehlo.constant dense<[[5], [6]]> : tensor<2x1xf32>\n"
      "  %z = stablehlo.constant dense<> : tensor<2x0xf32>\n"
      "  %c = stablehlo.concatenate %a, %z, %b, dim = 1 : (tensor<2x2xf32>, tensor<2x0xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>\n"
      "  check.expect_eq_const %c, dense<[[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]]> : tensor<2x3xf32>\n"
      "  return\n"
      "}\n"));
}

HS_TEST(concat_refuses_bad_shapes) {
  CHECK_ERR(hs_test_compile(
                "func.func @main() {\n"
                "  %a = stablehlo.constant dense<[[1, 2]]> : tensor<1x2xi64>\n"
                "  %b = stablehlo.constant dense<[[1, 2, 3]]> : tensor<1x3xi64>\n"
                "  %f = stablehlo.concatenate %a, %b, dim = 0 : (tensor<1x2xi64>, tensor<1x3xi64>) -> tensor<2x2xi64>\n"
                "  return\n"
                "}\n"),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_test_compile(
                "func.func @main() {\n"
                "  %a = stablehlo.constant dense<[[1, 2]]> : tensor<1x2xi64>\n"
                "  %u = stablehlo.transpose %a, dims = [0, 0] : (tensor<1x2xi64>) -> tensor<1x1xi64>\n"
                "  return\n"
                "}\n"),
            HS_INVALID_ARGUMENT);
}

HS_TEST(pad_negative_and_interior) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi32>\n"
      "  %z = stablehlo.constant dense<0> : tensor<i32>\n"
      "  %a = stablehlo.pad %x, %z, low = [1, -1], high = [0, 2], interior = [1, 1] : (tensor<2x3xi32>, tensor<i32>) -> tensor<4x6xi32>\n"
      "  check.expect_eq_const %a, dense<[[0, 0, 0, 0, 0, 0], [0, 2, 0, 3, 0, 0], [0, 0, 0, 0, 0, 0], [0, 5, 0, 6, 0, 0]]> : tensor<4x6xi32>\n"
      "  %m = stablehlo.constant dense<-1> : tensor<i32>\n"
      "  %b = stablehlo.pad %x, %m, low = [0, -2], high = [-1, -1], interior = [0, 0] : (tensor<2x3xi32>, tensor<i32>) -> tensor<1x0xi32>\n"
      "  %c = stablehlo.pad %x, %m, low = [-1, 1], high = [1, -3], interior = [0, 2] : (tensor<2x3xi32>, tensor<i32>) -> tensor<2x5xi32>\n"
      "  check.expect_eq_const %c, dense<[[-1, 4, -1, -1, 5], [-1, -1, -1, -1, -1]]> : tensor<2x5xi32>\n"
      "  %h = stablehlo.constant dense<[1.5, 2.5]> : tensor<2xbf16>\n"
      "  %hz = stablehlo.constant dense<-0.5> : tensor<bf16>\n"
      "  %d = stablehlo.pad %h, %hz, low = [2], high = [1], interior = [2] : (tensor<2xbf16>, tensor<bf16>) -> tensor<7xbf16>\n"
      "  check.expect_eq_const %d, dense<[-0.5, -0.5, 1.5, -0.5, -0.5, 2.5, -0.5]> : tensor<7xbf16>\n"
      "  return\n"
      "}\n"));
}

HS_TEST(iota_all_dtypes) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %a = stablehlo.iota dim = 1 : tensor<2x3xf32>\n"
      "  check.expect_eq_const %a, dense<[[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]> : tensor<2x3xf32>\n"
      "  %b = stablehlo.iota dim = 0 : tensor<3x2xbf16>\n"
      "  check.expect_eq_const %b, dense<[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]> : tensor<3x2xbf16>\n"
      "  %c = stablehlo.iota dim = 0 : tensor<4xui8>\n"
      "  check.expect_eq_const %c, dense<[0, 1, 2, 3]> : tensor<4xui8>\n"
      "  %d = stablehlo.iota dim = 1 : tensor<2x2x2xi64>\n"
      "  check.expect_eq_const %d, dense<[[[0, 0], [1, 1]], [[0, 0], [1, 1]]]> : tensor<2x2x2xi64>\n"
      "  %e = stablehlo.iota dim = 0 : tensor<3xf16>\n"
      "  check.expect_eq_const %e, dense<[0.0, 1.0, 2.0]> : tensor<3xf16>\n"
      "  return\n"
      "}\n"));
}

HS_TEST(dynamic_slice_clamps) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]> : tensor<3x4xi32>\n"
      "  %i = stablehlo.constant dense<-5> : tensor<i64>\n"
      "  %j = stablehlo.constant dense<3> : tensor<ui32>\n"
      "  %a = stablehlo.dynamic_slice %x, %i, %j, sizes = [2, 2] : (tensor<3x4xi32>, tensor<i64>, tensor<ui32>) -> tensor<2x2xi32>\n"
      "  check.expect_eq_const %a, dense<[[2, 3], [6, 7]]> : tensor<2x2xi32>\n"
      "  %k = stablehlo.constant dense<100> : tensor<i8>\n"
      "  %l = stablehlo.constant dense<1> : tensor<i8>\n"
      "  %b = stablehlo.dynamic_slice %x, %k, %l, sizes = [1, 3] : (tensor<3x4xi32>, tensor<i8>, tensor<i8>) -> tensor<1x3xi32>\n"
      "  check.expect_eq_const %b, dense<[[9, 10, 11]]> : tensor<1x3xi32>\n"
      "  %u = stablehlo.constant dense<[[-1, -2]]> : tensor<1x2xi32>\n"
      "  %big = stablehlo.constant dense<18446744073709551615> : tensor<ui64>\n"
      "  %c = stablehlo.dynamic_update_slice %x, %u, %big, %i : (tensor<3x4xi32>, tensor<1x2xi32>, tensor<ui64>, tensor<i64>) -> tensor<3x4xi32>\n"
      "  check.expect_eq_const %c, dense<[[0, 1, 2, 3], [4, 5, 6, 7], [-1, -2, 10, 11]]> : tensor<3x4xi32>\n"
      "  return\n"
      "}\n"));
}

/* --------------------------------------------------------------- gather */

HS_TEST(gather_forms) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      /* embedding lookup with clamping of the out-of-range rows */
      "  %t = stablehlo.constant dense<[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]> : tensor<3x2xf32>\n"
      "  %i = stablehlo.constant dense<[[2], [0], [7], [-3]]> : tensor<4x1xi32>\n"
      "  %a = \"stablehlo.gather\"(%t, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 1>, slice_sizes = array<i64: 1, 2>}> : (tensor<3x2xf32>, tensor<4x1xi32>) -> tensor<4x2xf32>\n"
      "  check.expect_eq_const %a, dense<[[4.0, 5.0], [0.0, 1.0], [4.0, 5.0], [0.0, 1.0]]> : tensor<4x2xf32>\n"
      /* index_vector_dim == rank: scalar indices */
      "  %v = stablehlo.constant dense<[10, 11, 12, 13, 14]> : tensor<5xi64>\n"
      "  %s = stablehlo.constant dense<[[4, 1], [0, 3]]> : tensor<2x2xui8>\n"
      "  %b = \"stablehlo.gather\"(%v, %s) <{dimension_numbers = #stablehlo.gather<collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 2>, slice_sizes = array<i64: 1>}> : (tensor<5xi64>, tensor<2x2xui8>) -> tensor<2x2xi64>\n"
      "  check.expect_eq_const %b, dense<[[14, 11], [10, 13]]> : tensor<2x2xi64>\n"
      /* windows of 2 in a 2-d operand, offset dim before the batch dim, clamped */
      "  %m = stablehlo.constant dense<[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]> : tensor<3x4xi16>\n"
      "  %w = stablehlo.constant dense<[[0, 3], [2, 1]]> : tensor<2x2xi64>\n"
      "  %c = \"stablehlo.gather\"(%m, %w) <{dimension_numbers = #stablehlo.gather<offset_dims = [0, 1], start_index_map = [0, 1], index_vector_dim = 1>, slice_sizes = array<i64: 2, 2>}> : (tensor<3x4xi16>, tensor<2x2xi64>) -> tensor<2x2x2xi16>\n"
      "  check.expect_eq_const %c, dense<[[[2, 5], [3, 6]], [[6, 9], [7, 10]]]> : tensor<2x2x2xi16>\n"
      /* batching dims: operand [2,3], per-batch index */
      "  %o = stablehlo.constant dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi32>\n"
      "  %j = stablehlo.constant dense<[[2, 0], [1, 1]]> : tensor<2x2xi32>\n"
      "  %d = \"stablehlo.gather\"(%o, %j) <{dimension_numbers = #stablehlo.gather<collapsed_slice_dims = [1], operand_batching_dims = [0], start_indices_batching_dims = [0], start_index_map = [1], index_vector_dim = 2>, slice_sizes = array<i64: 1, 1>}> : (tensor<2x3xi32>, tensor<2x2xi32>) -> tensor<2x2xi32>\n"
      "  check.expect_eq_const %d, dense<[[3, 1], [5, 5]]> : tensor<2x2xi32>\n"
      "  return\n"
      "}\n"));
}

/* -------------------------------------------------------------- scatter */

HS_TEST(scatter_forms) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      /* add with duplicate indices; the window at 5 does not fit and is skipped */
      "  %x = stablehlo.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0]> : tensor<5xf32>\n"
      "  %i = stablehlo.constant dense<[[1], [3], [1], [4], [-1]]> : tensor<5x1xi32>\n"
      "  %u = stablehlo.constant dense<[[10.0, 20.0], [30.0, 40.0], [100.0, 200.0], [7.0, 8.0], [9.0, 9.0]]> : tensor<5x2xf32>\n"
      "  %a = \"stablehlo.scatter\"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({\n"
      "  ^bb0(%p: tensor<f32>, %q: tensor<f32>):\n"
      "    %s = stablehlo.add %p, %q : tensor<f32>\n"
      "    stablehlo.return %s : tensor<f32>\n"
      "  }) : (tensor<5xf32>, tensor<5x1xi32>, tensor<5x2xf32>) -> tensor<5xf32>\n"
      "  check.expect_eq_const %a, dense<[1.0, 112.0, 223.0, 34.0, 45.0]> : tensor<5xf32>\n"
      /* overwrite (the body returns the update), 2-d, index_vector_dim = 0 */
      "  %m = stablehlo.constant dense<[[0, 0, 0], [0, 0, 0]]> : tensor<2x3xi8>\n"
      "  %j = stablehlo.constant dense<[1, 2]> : tensor<2xi64>\n"
      "  %v = stablehlo.constant dense<5> : tensor<i8>\n"
      "  %b = \"stablehlo.scatter\"(%m, %j, %v) <{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0, 1], scatter_dims_to_operand_dims = [0, 1]>}> ({\n"
      "  ^bb0(%p: tensor<i8>, %q: tensor<i8>):\n"
      "    stablehlo.return %q : tensor<i8>\n"
      "  }) : (tensor<2x3xi8>, tensor<2xi64>, tensor<i8>) -> tensor<2x3xi8>\n"
      "  check.expect_eq_const %b, dense<[[0, 0, 0], [0, 0, 5]]> : tensor<2x3xi8>\n"
      /* bf16 max and min with NaN and signed zeros */
      "  %h = stablehlo.constant dense<[1.0, 0x7FC0, 0.0, -2.0]> : tensor<4xbf16>\n"
      "  %k = stablehlo.constant dense<[[0], [1], [2], [3], [0]]> : tensor<5x1xi32>\n"
      "  %w = stablehlo.constant dense<[3.0, 1.0, -0.0, 0x7FC0, -1.0]> : tensor<5xbf16>\n"
      "  %c = \"stablehlo.scatter\"(%h, %k, %w) <{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({\n"
      "  ^bb0(%p: tensor<bf16>, %q: tensor<bf16>):\n"
      "    %s = stablehlo.maximum %p, %q : tensor<bf16>\n"
      "    stablehlo.return %s : tensor<bf16>\n"
      "  }) : (tensor<4xbf16>, tensor<5x1xi32>, tensor<5xbf16>) -> tensor<4xbf16>\n"
      "  check.expect_eq_const %c, dense<[3.0, 0x7FC0, 0.0, 0x7FC0]> : tensor<4xbf16>\n"
      /* i1 with or */
      "  %bo = stablehlo.constant dense<[false, false, true]> : tensor<3xi1>\n"
      "  %bi = stablehlo.constant dense<[[0], [0], [2]]> : tensor<3x1xi32>\n"
      "  %bu = stablehlo.constant dense<[true, false, false]> : tensor<3xi1>\n"
      "  %d = \"stablehlo.scatter\"(%bo, %bi, %bu) <{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({\n"
      "  ^bb0(%p: tensor<i1>, %q: tensor<i1>):\n"
      "    %s = stablehlo.or %p, %q : tensor<i1>\n"
      "    stablehlo.return %s : tensor<i1>\n"
      "  }) : (tensor<3xi1>, tensor<3x1xi32>, tensor<3xi1>) -> tensor<3xi1>\n"
      "  check.expect_eq_const %d, dense<[true, false, true]> : tensor<3xi1>\n"
      "  return\n"
      "}\n"));
}

HS_TEST(scatter_variadic_region_and_batching) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      /* two inputs, a body that adds the first and keeps the larger of the second */
      "  %x = stablehlo.constant dense<[0, 0, 0]> : tensor<3xi32>\n"
      "  %y = stablehlo.constant dense<[1.0, 1.0, 1.0]> : tensor<3xf32>\n"
      "  %i = stablehlo.constant dense<[[2], [0], [2]]> : tensor<3x1xi64>\n"
      "  %u = stablehlo.constant dense<[5, 6, 7]> : tensor<3xi32>\n"
      "  %v = stablehlo.constant dense<[0.5, 3.0, 2.0]> : tensor<3xf32>\n"
      "  %a:2 = \"stablehlo.scatter\"(%x, %y, %i, %u, %v) <{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({\n"
      "  ^bb0(%p: tensor<i32>, %q: tensor<f32>, %r: tensor<i32>, %s: tensor<f32>):\n"
      "    %t = stablehlo.add %p, %r : tensor<i32>\n"
      "    %w = stablehlo.maximum %q, %s : tensor<f32>\n"
      "    stablehlo.return %t, %w : tensor<i32>, tensor<f32>\n"
      "  }) : (tensor<3xi32>, tensor<3xf32>, tensor<3x1xi64>, tensor<3xi32>, tensor<3xf32>) -> (tensor<3xi32>, tensor<3xf32>)\n"
      "  check.expect_eq_const %a#0, dense<[6, 0, 12]> : tensor<3xi32>\n"
      "  check.expect_eq_const %a#1, dense<[3.0, 1.0, 2.0]> : tensor<3xf32>\n"
      /* batching dims: operand [2,3], each batch row gets its own index */
      "  %o = stablehlo.constant dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi32>\n"
      "  %j = stablehlo.constant dense<[[2], [0]]> : tensor<2x1xi32>\n"
      "  %z = stablehlo.constant dense<[100, 200]> : tensor<2xi32>\n"
      "  %b = \"stablehlo.scatter\"(%o, %j, %z) <{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [1], input_batching_dims = [0], scatter_indices_batching_dims = [0], scatter_dims_to_operand_dims = [1], index_vector_dim = 1>}> ({\n"
      "  ^bb0(%p: tensor<i32>, %q: tensor<i32>):\n"
      "    %t = stablehlo.subtract %q, %p : tensor<i32>\n"
      "    stablehlo.return %t : tensor<i32>\n"
      "  }) : (tensor<2x3xi32>, tensor<2x1xi32>, tensor<2xi32>) -> tensor<2x3xi32>\n"
      "  check.expect_eq_const %b, dense<[[1, 2, 97], [196, 5, 6]]> : tensor<2x3xi32>\n"
      "  return\n"
      "}\n"));
}

/* ------------------------------------------------------------ sort/top_k */

HS_TEST(sort_forms) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      /* key/value sort descending along dim 1, stable */
      "  %k = stablehlo.constant dense<[[3, 1, 3, 2], [0, 5, 5, 1]]> : tensor<2x4xi32>\n"
      "  %v = stablehlo.iota dim = 1 : tensor<2x4xi32>\n"
      "  %a:2 = \"stablehlo.sort\"(%k, %v) <{dimension = 1 : i64, is_stable = true}> ({\n"
      "  ^bb0(%p: tensor<i32>, %q: tensor<i32>, %r: tensor<i32>, %s: tensor<i32>):\n"
      "    %c = stablehlo.compare GT, %p, %q, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>\n"
      "    stablehlo.return %c : tensor<i1>\n"
      "  }) : (tensor<2x4xi32>, tensor<2x4xi32>) -> (tensor<2x4xi32>, tensor<2x4xi32>)\n"
      "  check.expect_eq_const %a#0, dense<[[3, 3, 2, 1], [5, 5, 1, 0]]> : tensor<2x4xi32>\n"
      "  check.expect_eq_const %a#1, dense<[[0, 2, 3, 1], [1, 2, 3, 0]]> : tensor<2x4xi32>\n"
      /* JAX's NaN-aware ascending comparator along dim 0 */
      "  %f = stablehlo.constant dense<[[0x7FC00000], [1.0], [-0.0], [-3.0], [0.0]]> : tensor<5x1xf32>\n"
      "  %b = \"stablehlo.sort\"(%f) <{dimension = 0 : i64}> ({\n"
      "  ^bb0(%p: tensor<f32>, %q: tensor<f32>):\n"
      "    %z = stablehlo.constant dense<0.000000e+00> : tensor<f32>\n"
      "    %e1 = stablehlo.compare EQ, %p, %z, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %s1 = stablehlo.select %e1, %z, %p : tensor<i1>, tensor<f32>\n"
      "    %n1 = stablehlo.compare NE, %p, %p, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %nan = stablehlo.constant dense<0x7FC00000> : tensor<f32>\n"
      "    %t1 = stablehlo.select %n1, %nan, %s1 : tensor<i1>, tensor<f32>\n"
      "    %e2 = stablehlo.compare EQ, %q, %z, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %s2 = stablehlo.select %e2, %z, %q : tensor<i1>, tensor<f32>\n"
      "    %n2 = stablehlo.compare NE, %q, %q, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %t2 = stablehlo.select %n2, %nan, %s2 : tensor<i1>, tensor<f32>\n"
      "    %c = stablehlo.compare LT, %t1, %t2, TOTALORDER : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    stablehlo.return %c : tensor<i1>\n"
      "  }) : (tensor<5x1xf32>) -> tensor<5x1xf32>\n"
      "  check.expect_eq_const %b, dense<[[-3.0], [-0.0], [0.0], [1.0], [0x7FC00000]]> : tensor<5x1xf32>\n"
      /* a two-key comparator (general path): by first key asc, then second desc */
      "  %x = stablehlo.constant dense<[1, 0, 1, 0]> : tensor<4xui8>\n"
      "  %y = stablehlo.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf64>\n"
      "  %c:2 = \"stablehlo.sort\"(%x, %y) <{dimension = 0 : i64, is_stable = true}> ({\n"
      "  ^bb0(%p: tensor<ui8>, %q: tensor<ui8>, %r: tensor<f64>, %s: tensor<f64>):\n"
      "    %lt = stablehlo.compare LT, %p, %q, UNSIGNED : (tensor<ui8>, tensor<ui8>) -> tensor<i1>\n"
      "    %eq = stablehlo.compare EQ, %p, %q, UNSIGNED : (tensor<ui8>, tensor<ui8>) -> tensor<i1>\n"
      "    %gt = stablehlo.compare GT, %r, %s, FLOAT : (tensor<f64>, tensor<f64>) -> tensor<i1>\n"
      "    %an = stablehlo.and %eq, %gt : tensor<i1>\n"
      "    %o = stablehlo.or %lt, %an : tensor<i1>\n"
      "    stablehlo.return %o : tensor<i1>\n"
      "  }) : (tensor<4xui8>, tensor<4xf64>) -> (tensor<4xui8>, tensor<4xf64>)\n"
      "  check.expect_eq_const %c#0, dense<[0, 0, 1, 1]> : tensor<4xui8>\n"
      "  check.expect_eq_const %c#1, dense<[4.0, 2.0, 3.0, 1.0]> : tensor<4xf64>\n"
      "  return\n"
      "}\n"));
}

HS_TEST(top_k_ties_and_nan) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[[1.0, 0x7FC00000, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, -0.0, 0.0]]> : tensor<2x5xf32>\n"
      "  %v, %i = chlo.top_k(%x, k = 3) : tensor<2x5xf32> -> (tensor<2x3xf32>, tensor<2x3xi32>)\n"
      "  check.expect_eq_const %v, dense<[[0x7FC00000, 3.0, 3.0], [2.0, 2.0, 2.0]]> : tensor<2x3xf32>\n"
      "  check.expect_eq_const %i, dense<[[1, 2, 3], [0, 1, 2]]> : tensor<2x3xi32>\n"
      "  %y = stablehlo.constant dense<[5, 200, 7, 200]> : tensor<4xui8>\n"
      "  %w, %j = chlo.top_k(%y, k = 4) : tensor<4xui8> -> (tensor<4xui8>, tensor<4xi32>)\n"
      "  check.expect_eq_const %w, dense<[200, 200, 7, 5]> : tensor<4xui8>\n"
      "  check.expect_eq_const %j, dense<[1, 3, 2, 0]> : tensor<4xi32>\n"
      "  return\n"
      "}\n"));
}

/* The recognised comparators (integer keys) must order exactly like the
 * region they stand for: the same sort with the comparator hidden behind an
 * extra op runs the general path, and both permutations must agree. */
#define SORT_PROG_FMT \
    "func.func @main(%%x: tensor<300xf32>) -> (tensor<300xf32>, tensor<300xi32>) {\n" \
    "  %%i = stablehlo.iota dim = 0 : tensor<300xi32>\n" \
    "  %%s:2 = \"stablehlo.sort\"(%%x, %%i) <{dimension = 0 : i64, is_stable = true}> ({\n" \
    "  ^bb0(%%p: tensor<f32>, %%q: tensor<f32>, %%r: tensor<i32>, %%t: tensor<i32>):\n" \
    "    %%z = stablehlo.constant dense<0.000000e+00> : tensor<f32>\n" \
    "    %%nan = stablehlo.constant dense<0x7FC00000> : tensor<f32>\n" \
    "    %%e1 = stablehlo.compare EQ, %%p, %%z, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n" \
    "    %%s1 = stablehlo.select %%e1, %%z, %%p : tensor<i1>, tensor<f32>\n" \
    "    %%n1 = stablehlo.compare NE, %%p, %%p, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n" \
    "    %%t1 = stablehlo.select %%n1, %%nan, %%s1 : tensor<i1>, tensor<f32>\n" \
    "    %%e2 = stablehlo.compare EQ, %%q, %%z, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n" \
    "    %%s2 = stablehlo.select %%e2, %%z, %%q : tensor<i1>, tensor<f32>\n" \
    "    %%n2 = stablehlo.compare NE, %%q, %%q, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n" \
    "    %%t2 = stablehlo.select %%n2, %%nan, %%s2 : tensor<i1>, tensor<f32>\n" \
    "    %%c = stablehlo.compare %s, %s, %s, %s : (tensor<f32>, tensor<f32>) -> tensor<i1>\n" \
    "    %%d = stablehlo.and %%c, %%c : tensor<i1>\n" \
    "    stablehlo.return %s : tensor<i1>\n" \
    "  }) : (tensor<300xf32>, tensor<300xi32>) -> (tensor<300xf32>, tensor<300xi32>)\n" \
    "  return %%s#0, %%s#1 : tensor<300xf32>, tensor<300xi32>\n" \
    "}\n"

static hs_status *run_sort(const char *dir, const char *lhs, const char *rhs, const char *type,
                           bool general, const float *x, int32_t *perm) {
  char text[4096];
  snprintf(text, sizeof text, SORT_PROG_FMT, dir, lhs, rhs, type, general ? "%d" : "%c");
  hs_program *p = NULL;
  HS_RETURN_IF_ERROR(hs_program_from_text(text, strlen(text), "sort.mlir", NULL, &p));
  hs_tensor in = {HS_F32, {1, {300}}, (void *)x}, out[2];
  memset(out, 0, sizeof out);
  hs_status *st = hs_program_run(p, &in, 1, out, 2);
  hs_program_free(p);
  if (!st) memcpy(perm, out[1].data, 300 * sizeof(int32_t));
  free(out[0].data);
  free(out[1].data);
  return st;
}

HS_TEST(sort_fast_path_matches_region) {
  float x[300];
  srand(5);
  for (int i = 0; i < 300; i++) {
    int r = rand() % 23;
    x[i] = r == 0 ? NAN : r == 1 ? -NAN : r == 2 ? -0.0f : r == 3 ? 0.0f : r == 4 ? INFINITY
         : (float)(rand() % 9 - 4);
  }
  static const char *forms[][4] = {
      {"LT", "%t1", "%t2", "TOTALORDER"}, {"GT", "%t1", "%t2", "TOTALORDER"},
      {"LT", "%t2", "%t1", "TOTALORDER"}, {"LT", "%p", "%q", "TOTALORDER"},
      {"GT", "%p", "%q", "TOTALORDER"},   {"LT", "%p", "%q", "FLOAT"},
  };
  for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
    int32_t fast[300], slow[300];
    CHECK_OK(run_sort(forms[f][0], forms[f][1], forms[f][2], forms[f][3], false, x, fast));
    CHECK_OK(run_sort(forms[f][0], forms[f][1], forms[f][2], forms[f][3], true, x, slow));
    /* FLOAT with NaNs is no strict weak order: only compare NaN-free prefixes */
    bool partial = strcmp(forms[f][3], "FLOAT") == 0;
    int n = 300;
    if (partial)
      for (n = 0; n < 300 && !isnan(x[fast[n]]); n++) {
      }
    CHECK_MSG(partial || memcmp(fast, slow, sizeof fast) == 0, "form %zu: permutations differ", f);
    for (int i = 1; i < n && partial; i++) CHECK(!(x[fast[i]] < x[fast[i - 1]]));
  }
}

HS_TEST(region_results_are_validated) {
  CHECK_ERR(hs_test_compile(
                "func.func @main() {\n"
                "  %x = stablehlo.constant dense<[1, 2]> : tensor<2xi32>\n"
                "  %a = \"stablehlo.sort\"(%x) <{dimension = 0 : i64}> ({\n"
                "  ^bb0(%p: tensor<i32>, %q: tensor<i32>):\n"
                "    stablehlo.return %p : tensor<i32>\n"
                "  }) : (tensor<2xi32>) -> tensor<2xi32>\n"
                "  return\n"
                "}\n"),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_test_compile(
                "func.func @main() {\n"
                "  %x = stablehlo.constant dense<[1, 2]> : tensor<2xi32>\n"
                "  %i = stablehlo.constant dense<[[0]]> : tensor<1x1xi32>\n"
                "  %u = stablehlo.constant dense<[3]> : tensor<1xi32>\n"
                "  %a = \"stablehlo.scatter\"(%x, %i, %u) <{scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({\n"
                "  ^bb0(%p: tensor<i32>, %q: tensor<i32>):\n"
                "    %c = stablehlo.compare LT, %p, %q : (tensor<i32>, tensor<i32>) -> tensor<i1>\n"
                "    stablehlo.return %c : tensor<i1>\n"
                "  }) : (tensor<2xi32>, tensor<1x1xi32>, tensor<1xi32>) -> tensor<2xi32>\n"
                "  return\n"
                "}\n"),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_test_compile(
                "func.func @main() {\n"
                "  %t = stablehlo.constant dense<[[0.0, 1.0], [2.0, 3.0]]> : tensor<2x2xf32>\n"
                "  %i = stablehlo.constant dense<[[1]]> : tensor<1x1xi32>\n"
                "  %a = \"stablehlo.gather\"(%t, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 1>, slice_sizes = array<i64: 2, 2>}> : (tensor<2x2xf32>, tensor<1x1xi32>) -> tensor<1x2xf32>\n"
                "  return\n"
                "}\n"),
            HS_INVALID_ARGUMENT);
}

/* -------------------------------------------- large moves vs a reference */

HS_TEST(transpose_large_matches_reference) {
  enum { A = 37, B = 64, C = 130 };
  float *x = random_f32(A * B * C, 1);
  hs_tensor in = {HS_F32, {3, {A, B, C}}, x}, out;
  memset(&out, 0, sizeof out);
  for (int threads = 1; threads <= 2; threads++) {
    CHECK_OK(hs_test_run("func.func @main(%x: tensor<37x64x130xf32>) -> tensor<130x37x64xf32> {\n"
                     "  %t = stablehlo.transpose %x, dims = [2, 0, 1] : (tensor<37x64x130xf32>) -> tensor<130x37x64xf32>\n"
                     "  return %t : tensor<130x37x64xf32>\n"
                     "}\n",
                     threads, &in, 1, &out, 1));
    const float *y = out.data;
    int bad = 0;
    for (int c = 0; c < C; c++)
      for (int a = 0; a < A; a++)
        for (int b = 0; b < B; b++)
          if (y[(c * A + a) * B + b] != x[(a * B + b) * C + c]) bad++;
    free(out.data);
    CHECK_MSG(bad == 0, "%d mismatches with %d threads", bad, threads);
  }
  free(x);
}

HS_TEST(pad_slice_broadcast_large_match_reference) {
  enum { H = 150, W = 131 };
  float *x = random_f32(H * W, 2);
  hs_tensor in = {HS_F32, {2, {H, W}}, x}, out;
  memset(&out, 0, sizeof out);
  /* pad low [2, -3], high [-1, 4], interior [1, 0]: 2 + 299 - 1 = 300 rows, 131 - 3 + 4 = 132 cols */
  CHECK_OK(hs_test_run("func.func @main(%x: tensor<150x131xf32>) -> tensor<300x132xf32> {\n"
                   "  %z = stablehlo.constant dense<-7.0> : tensor<f32>\n"
                   "  %p = stablehlo.pad %x, %z, low = [2, -3], high = [-1, 4], interior = [1, 0] : (tensor<150x131xf32>, tensor<f32>) -> tensor<300x132xf32>\n"
                   "  return %p : tensor<300x132xf32>\n"
                   "}\n",
                   2, &in, 1, &out, 1));
  const float *y = out.data;
  int bad = 0;
  for (int r = 0; r < 300; r++)
    for (int c = 0; c < 132; c++) {
      int rr = r - 2, sc = c + 3;
      float want = -7.0f;
      if (rr >= 0 && rr % 2 == 0 && rr / 2 < H && sc < W) want = x[(rr / 2) * W + sc];
      if (y[r * 132 + c] != want) bad++;
    }
  free(out.data);
  CHECK_MSG(bad == 0, "pad: %d mismatches", bad);

  CHECK_OK(hs_test_run("func.func @main(%x: tensor<150x131xf32>) -> tensor<49x44xf32> {\n"
                   "  %s = stablehlo.slice %x [3:150:3, 1:131:3] : (tensor<150x131xf32>) -> tensor<49x44xf32>\n"
                   "  return %s : tensor<49x44xf32>\n"
                   "}\n",
                   2, &in, 1, &out, 1));
  y = out.data;
  bad = 0;
  for (int r = 0; r < 49; r++)
    for (int c = 0; c < 44; c++)
      if (y[r * 44 + c] != x[(3 + 3 * r) * W + 1 + 3 * c]) bad++;
  free(out.data);
  CHECK_MSG(bad == 0, "slice: %d mismatches", bad);

  CHECK_OK(hs_test_run("func.func @main(%x: tensor<150x131xf32>) -> tensor<131x4x150xf32> {\n"
                   "  %b = stablehlo.broadcast_in_dim %x, dims = [2, 0] : (tensor<150x131xf32>) -> tensor<131x4x150xf32>\n"
                   "  return %b : tensor<131x4x150xf32>\n"
                   "}\n",
                   2, &in, 1, &out, 1));
  y = out.data;
  bad = 0;
  for (int a = 0; a < W; a++)
    for (int k = 0; k < 4; k++)
      for (int h = 0; h < H; h++)
        if (y[(a * 4 + k) * H + h] != x[h * W + a]) bad++;
  free(out.data);
  CHECK_MSG(bad == 0, "broadcast: %d mismatches", bad);
  free(x);
}

HS_TEST(gather_rows_large_matches_reference) {
  enum { V = 1000, D = 96, N = 700 };
  float *table = random_f32(V * D, 3);
  int32_t *idx = malloc(sizeof(int32_t) * N);
  for (int i = 0; i < N; i++) idx[i] = (i * 7919) % (V + 40) - 20; /* some out of range: clamped */
  hs_tensor in[2] = {{HS_F32, {2, {V, D}}, table}, {HS_I32, {1, {N}}, idx}}, out;
  memset(&out, 0, sizeof out);
  CHECK_OK(hs_test_run("func.func @main(%t: tensor<1000x96xf32>, %i: tensor<700xi32>) -> tensor<700x96xf32> {\n"
                   "  %g = \"stablehlo.gather\"(%t, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 1>, slice_sizes = array<i64: 1, 96>}> : (tensor<1000x96xf32>, tensor<700xi32>) -> tensor<700x96xf32>\n"
                   "  return %g : tensor<700x96xf32>\n"
                   "}\n",
                   2, in, 2, &out, 1));
  const float *y = out.data;
  int bad = 0;
  for (int i = 0; i < N; i++) {
    int r = idx[i] < 0 ? 0 : idx[i] >= V ? V - 1 : idx[i];
    if (memcmp(y + i * D, table + r * D, sizeof(float) * D) != 0) bad++;
  }
  free(out.data);
  free(table);
  free(idx);
  CHECK_MSG(bad == 0, "%d rows differ", bad);
}

/* FPN's nearest-neighbour upsample as JAX exports it: a [1, C, 1, 1] column of
 * an NCHW map per output pixel (the element-major tiled path), with a second
 * case whose indices go out of range (clamped) and an i16 payload; both
 * against a direct loop, single- and multi-threaded. */
HS_TEST(gather_scattered_window_matches_reference) {
  enum { C = 67, H = 25, W = 22, OH = 50, OW = 44 }; /* 590 KB: split across threads */
  float *map = random_f32(C * H * W, 5);
  int32_t *idx = malloc(sizeof(int32_t) * OH * OW * 2);
  for (int y = 0; y < OH; y++)
    for (int x = 0; x < OW; x++) {
      idx[(y * OW + x) * 2] = y / 2 + (y == 5 ? 40 : 0); /* a row clamped */
      idx[(y * OW + x) * 2 + 1] = x / 2 - (x == 3 ? 9 : 0); /* one column clamped */
    }
  static const char *text =
      "func.func @main(%m: tensor<1x67x25x22xf32>, %i: tensor<50x44x2xi32>) -> tensor<1x67x50x44xf32> {\n"
      "  %g = \"stablehlo.gather\"(%m, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [0, 1], collapsed_slice_dims = [2, 3], start_index_map = [2, 3], index_vector_dim = 2>, slice_sizes = array<i64: 1, 67, 1, 1>}> : (tensor<1x67x25x22xf32>, tensor<50x44x2xi32>) -> tensor<1x67x50x44xf32>\n"
      "  return %g : tensor<1x67x50x44xf32>\n"
      "}\n";
  for (int threads = 1; threads <= 2; threads++) {
    hs_tensor in[2] = {{HS_F32, {4, {1, C, H, W}}, map}, {HS_I32, {3, {OH, OW, 2}}, idx}}, out;
    memset(&out, 0, sizeof out);
    CHECK_OK(hs_test_run(text, threads, in, 2, &out, 1));
    const float *y = out.data;
    int bad = 0;
    for (int c = 0; c < C; c++)
      for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
          int sy = idx[(oy * OW + ox) * 2], sx = idx[(oy * OW + ox) * 2 + 1];
          sy = sy < 0 ? 0 : sy >= H ? H - 1 : sy;
          sx = sx < 0 ? 0 : sx >= W ? W - 1 : sx;
          if (y[(c * OH + oy) * OW + ox] != map[(c * H + sy) * W + sx]) bad++;
        }
    free(out.data);
    CHECK_MSG(bad == 0, "%d elements differ (%d threads)", bad, threads);
  }
  free(map);
  free(idx);
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %m = stablehlo.constant dense<[[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]], [[13, 14], [15, 16]]]> : tensor<4x2x2xi16>\n"
      "  %i = stablehlo.constant dense<[[1, 0], [0, 5]]> : tensor<2x2xi32>\n"
      "  %g = \"stablehlo.gather\"(%m, %i) <{dimension_numbers = #stablehlo.gather<offset_dims = [0], collapsed_slice_dims = [1, 2], start_index_map = [1, 2], index_vector_dim = 1>, slice_sizes = array<i64: 4, 1, 1>}> : (tensor<4x2x2xi16>, tensor<2x2xi32>) -> tensor<4x2xi16>\n"
      "  check.expect_eq_const %g, dense<[[3, 2], [7, 6], [11, 10], [15, 14]]> : tensor<4x2xi16>\n"
      "  return\n"
      "}\n"));
}

int main(void) {
  HS_RUN(broadcast_reshape_transpose);
  HS_RUN(slice_reverse_concat);
  HS_RUN(concat_refuses_bad_shapes);
  HS_RUN(pad_negative_and_interior);
  HS_RUN(iota_all_dtypes);
  HS_RUN(dynamic_slice_clamps);
  HS_RUN(gather_forms);
  HS_RUN(scatter_forms);
  HS_RUN(scatter_variadic_region_and_batching);
  HS_RUN(sort_forms);
  HS_RUN(top_k_ties_and_nan);
  HS_RUN(sort_fast_path_matches_region);
  HS_RUN(region_results_are_validated);
  HS_RUN(transpose_large_matches_reference);
  HS_RUN(pad_slice_broadcast_large_match_reference);
  HS_RUN(gather_rows_large_matches_reference);
  HS_RUN(gather_scattered_window_matches_reference);
  return hs_test_summary();
}
