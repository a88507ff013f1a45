// Interpreter-style tests: several parts, check ops in both syntaxes.
func.func @add_op_test() {
  %0 = stablehlo.constant dense<[1, 2]> : tensor<2xi32>
  %1 = stablehlo.add %0, %0 : tensor<2xi32>
  check.expect_eq_const %1, dense<[2, 4]> : tensor<2xi32>
  check.expect_eq %1, %1 : tensor<2xi32>, tensor<2xi32>
  func.return
}

// -----

func.func @float_checks() {
  %0 = stablehlo.constant dense<[1.0, 0x7FC00000, 0xFF800000]> : tensor<3xf32>
  check.expect_almost_eq_const %0, dense<[1.0, 0x7FC00000, 0xFF800000]> : tensor<3xf32>
  check.expect_almost_eq %0, %0 : tensor<3xf32>, tensor<3xf32>
  check.expect_close %0, %0, max_ulp_difference = 3, min_ulp_difference = 0 : tensor<3xf32>, tensor<3xf32>
  check.expect_serialized_eq %0, probe_id = "probe0" : tensor<3xf32>
  "check.expect_close"(%0, %0) {max_ulp_difference = 4 : ui64} : (tensor<3xf32>, tensor<3xf32>) -> ()
  "check.expect_eq_const"(%0) {value = dense<[1.0, 0x7FC00000, 0xFF800000]> : tensor<3xf32>} : (tensor<3xf32>) -> ()
  func.return
}

// -----

func.func @while_op_test() {
  %init_i = stablehlo.constant dense<0> : tensor<i64>
  %init_sum = stablehlo.constant dense<0> : tensor<i64>
  %one = stablehlo.constant dense<1> : tensor<i64>
  %ten = stablehlo.constant dense<10> : tensor<i64>
  %results0, %results1 = stablehlo.while(%arg0 = %init_i, %arg1 = %init_sum) : tensor<i64>, tensor<i64>
  cond {
    %cond = stablehlo.compare  LT, %arg0, %ten : (tensor<i64>, tensor<i64>) -> tensor<i1>
    stablehlo.return %cond : tensor<i1>
  } do {
    %new_sum = stablehlo.add %arg1, %one : tensor<i64>
    %new_i = stablehlo.add %arg0, %one : tensor<i64>
    stablehlo.return %new_i, %new_sum : tensor<i64>, tensor<i64>
  }
  check.expect_eq_const %results0, dense<10> : tensor<i64>
  func.return
}
