module @m {
  func.func public @main(%arg0: tensor<2xf32>) -> tensor<2xf32> {
    %0 = stablehlo.convert %arg0 : (tensor<2xf32>) -> tensor<?xf32>
    return %arg0 : tensor<2xf32>
  }
}
