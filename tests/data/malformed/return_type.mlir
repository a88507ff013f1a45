module @m {
  func.func public @main(%arg0: tensor<2xf32>) -> tensor<2xi32> {
    return %arg0 : tensor<2xf32>
  }
}
