module {
  func.func @main(%a: tensor<1x4x4x1xf32>, %w: tensor<3x3x1x2xf32>, %t: !stablehlo.token, %p: tensor<i1>) -> (tensor<1x2x2x2xf32>, !stablehlo.token, tensor<f32>) {
    %0 = stablehlo.convolution(%a, %w) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {stride = [2, 2], pad = [[1, 1], [1, 1]], lhs_dilate = [1, 1], rhs_dilate = [1, 1], reverse = [false, false]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]} : (tensor<1x4x4x1xf32>, tensor<3x3x1x2xf32>) -> tensor<1x2x2x2xf32>
    %1 = stablehlo.after_all %t, %t : !stablehlo.token
    %2 = stablehlo.tuple %0, %1 : tuple<tensor<1x2x2x2xf32>, !stablehlo.token>
    %3 = stablehlo.get_tuple_element %2[0] : (tuple<tensor<1x2x2x2xf32>, !stablehlo.token>) -> tensor<1x2x2x2xf32>
    %4:2 = stablehlo.optimization_barrier %3, %1 : tensor<1x2x2x2xf32>, !stablehlo.token
    %c0 = stablehlo.constant dense<1.5> : tensor<f32>
    %c1 = stablehlo.constant dense<-2.5> : tensor<f32>
    %5 = "stablehlo.if"(%p) ({
      stablehlo.return %c0 : tensor<f32>
    }, {
      stablehlo.return %c1 : tensor<f32>
    }) : (tensor<i1>) -> tensor<f32>
    %idx = stablehlo.constant dense<1> : tensor<i32>
    %6 = "stablehlo.case"(%idx) ({
      stablehlo.return %c0 : tensor<f32>
    }, {
      stablehlo.return %5 : tensor<f32>
    }) : (tensor<i32>) -> tensor<f32>
    %7 = stablehlo.composite "my.square" %6 {composite_attributes = {scale = 2.0 : f32}, decomposition = @square, version = 1 : i32} : (tensor<f32>) -> tensor<f32>
    %8 = stablehlo.custom_call @my_target(%7) {api_version = 2 : i32, backend_config = "cfg", has_side_effect = false} : (tensor<f32>) -> tensor<f32>
    %9 = stablehlo.cholesky %a, lower = true : tensor<1x4x4x1xf32>
    %10 = stablehlo.dot %7, %7, precision = [DEFAULT, HIGHEST] : (tensor<f32>, tensor<f32>) -> tensor<f32>
    return %4#0, %4#1, %8 : tensor<1x2x2x2xf32>, !stablehlo.token, tensor<f32>
  }
  func.func private @square(%x: tensor<f32>) -> tensor<f32> {
    %0 = stablehlo.multiply %x, %x : tensor<f32>
    return %0 : tensor<f32>
  }
}
