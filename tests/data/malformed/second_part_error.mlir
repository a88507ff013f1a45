func.func @main(%a: tensor<i32>) -> tensor<i32> {
  return %a : tensor<i32>
}
// -----
func.func @main(%a: tensor<i32>) -> tensor<i32> {
  %0 = stablehlo.negate %b : tensor<i32>
  return %0 : tensor<i32>
}
