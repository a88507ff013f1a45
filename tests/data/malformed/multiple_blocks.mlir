module {
  func.func @main(%a: tensor<i32>) -> tensor<i32> {
    return %a : tensor<i32>
  ^bb1:
    return %a : tensor<i32>
  }
}
