func.func @main() -> (tensor<2x2xf32>, tensor<3xi1>, tensor<2xcomplex<f32>>, tensor<4xui8>, tensor<2xbf16>, tensor<2xf16>, tensor<i64>, tensor<0x3xf32>, tensor<2xf64>, tensor<3xi64>) {
  %0 = stablehlo.constant dense<[[1.0, -2.5], [3.25e+01, 0x7FC00000]]> : tensor<2x2xf32>
  %1 = stablehlo.constant dense<[true, false, true]> : tensor<3xi1>
  %2 = stablehlo.constant dense<[(1.0, 2.0), (-3.0, 0x7F800000)]> : tensor<2xcomplex<f32>>
  %3 = stablehlo.constant dense<"0x00FF7F80"> : tensor<4xui8>
  %4 = stablehlo.constant dense<[1.0, -0.5]> : tensor<2xbf16>
  %5 = stablehlo.constant dense<"0x003C00C0"> : tensor<2xf16>
  %6 = stablehlo.constant dense<-9223372036854775808> : tensor<i64>
  %7 = stablehlo.constant dense<> : tensor<0x3xf32>
  %8 = stablehlo.constant dense<[inf, -nan]> : tensor<2xf64>
  %9 = stablehlo.constant dense<[0x7FFFFFFFFFFFFFFF, -1, 0]> : tensor<3xi64>
  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9 : tensor<2x2xf32>, tensor<3xi1>, tensor<2xcomplex<f32>>, tensor<4xui8>, tensor<2xbf16>, tensor<2xf16>, tensor<i64>, tensor<0x3xf32>, tensor<2xf64>, tensor<3xi64>
}
