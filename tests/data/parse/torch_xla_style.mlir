module @IrToHlo.16 attributes {mhlo.cross_program_prefetches = [], mhlo.is_dynamic = false, mhlo.use_auto_spmd_partitioning = false} {
  func.func @main(%arg0: tensor<10xf32>, %arg1: tensor<10xf32>) -> tuple<tensor<10xf32>> {
    %0 = stablehlo.add %arg0, %arg1 : tensor<10xf32>
    %1 = stablehlo.tuple %0 {xla_shape = "(f32[10]{0})"} : tuple<tensor<10xf32>>
    return %1 : tuple<tensor<10xf32>>
  }
}
