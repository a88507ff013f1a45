module {
  func.func @main(%a: tensor<i32>) -> tensor<i32> {
    %0 = stablehlo.while(%it = %a) : tensor<i32>
     cond {
      %c = stablehlo.constant dense<true> : tensor<i1>
      stablehlo.return %c : tensor<i1>
    } do {
      stablehlo.return %c : tensor<i32>
    }
    return %0 : tensor<i32>
  }
}
