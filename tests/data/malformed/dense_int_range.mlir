module @m {
  func.func public @main(%arg0: tensor<2xf32>) -> tensor<2xf32> {
    %0 = stablehlo.constant dense<[300, 1]> : tensor<2xi8>
    return %arg0 : tensor<2xf32>
  }
}
