#loc = loc(unknown)
#loc1 = loc("x")
module @jit_f attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<2x3xf32> {mhlo.layout_mode = "default", mhlo.sharding = "{replicated}"} loc("x"), %arg1: tensor<f32> loc("y")) -> (tensor<2x3xf32> {jax.result_info = "", mhlo.layout_mode = "default"}) {
    %cst = stablehlo.constant dense<1.000000e+00> : tensor<f32> loc(#loc)
    %0 = stablehlo.broadcast_in_dim %arg1, dims = [] : (tensor<f32>) -> tensor<2x3xf32> loc(#loc3)
    %1 = stablehlo.add %arg0, %0 : tensor<2x3xf32> loc(#loc4)
    %2 = call @helper(%1) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc(callsite(#loc1 at #loc2))
    return %2 : tensor<2x3xf32> loc(#loc)
  } loc(#loc)
  func.func private @helper(%arg0: tensor<2x3xf32> loc("h"(#loc1))) -> tensor<2x3xf32> {
    %0 = stablehlo.multiply %arg0, %arg0 : tensor<2x3xf32> loc(fused["a", "b"])
    return %0 : tensor<2x3xf32>
  }
} loc(#loc)
#loc2 = loc("file.py":10:5)
#loc3 = loc("jit(f)/broadcast_in_dim"(#loc2))
#loc4 = loc("jit(f)/add"(#loc2))
