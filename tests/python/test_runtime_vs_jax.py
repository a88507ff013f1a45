"""f32 results of hloserve's runtime agree with jax (XLA CPU) on the same StableHLO programs.

Programs are lowered by jax itself (jax.jit(f).lower(...).as_text()), so this also checks that the
runtime reads StableHLO exactly as JAX prints it.  Each program runs through `hloserve run-hlo` on
.npy inputs.  Tolerances (the runtime issue's): element-wise and reductions within 1e-5 relative,
convolution and dot_general within 1e-4 relative (relative to the largest expected magnitude, so
that a sum that cancels to ~0 is not judged against its own tiny value).
"""
import os
import subprocess

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy
lax = jax.lax

HLOSERVE = os.path.join(os.environ.get("HS_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build")),
                        "hloserve")


def run_hloserve(tmp_path, fn, args):
    text = jax.jit(fn, keep_unused=True).lower(*args).as_text()
    mlir = tmp_path / "prog.mlir"
    mlir.write_text(text)
    cmd = [HLOSERVE, "run-hlo", str(mlir), "--output-dir", str(tmp_path / "out")]
    for i, a in enumerate(args):
        p = tmp_path / f"in{i}.npy"
        np.save(p, np.asarray(a))
        cmd += ["--input", f"arg{i}={p}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"run-hlo failed: {r.stderr}\n--- program ---\n{text[:3000]}"
    outs = jax.jit(fn)(*args)
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    got = [np.load(tmp_path / "out" / f"output_{i}.npy") for i in range(len(outs))]
    return [np.asarray(o) for o in outs], got


def assert_close(expected, got, rtol):
    assert expected.shape == got.shape and expected.dtype == got.dtype
    if expected.dtype.kind in "iub":
        np.testing.assert_array_equal(got, expected)
        return
    fin = np.isfinite(expected)
    scale = max(float(np.max(np.abs(expected[fin]), initial=0.0)), 1e-30)
    np.testing.assert_array_equal(got[~fin], expected[~fin])  # same infinities and NaNs
    err = np.abs(got[fin].astype(np.float64) - expected[fin].astype(np.float64))
    assert float(np.max(err, initial=0.0)) <= rtol * scale, \
        f"max abs error {np.max(err, initial=0.0)} > {rtol} * {scale}"


UNARY = [jnp.exp, jnp.tanh, jnp.sin, jnp.cos, lambda x: jnp.log(jnp.abs(x) + 1.0),
         lambda x: jnp.sqrt(jnp.abs(x)), jax.nn.sigmoid, jax.nn.relu, jnp.floor, jnp.abs, jnp.negative,
         lambda x: lax.rsqrt(jnp.abs(x) + 0.5), jnp.expm1, lambda x: jnp.log1p(jnp.abs(x))]
BINARY = [jnp.add, jnp.subtract, jnp.multiply, jnp.maximum, jnp.minimum,
          lambda a, b: a / (jnp.abs(b) + 1.0), lambda a, b: jnp.where(a > b, a, b * 2.0),
          lambda a, b: jnp.power(jnp.abs(a) + 0.5, jnp.clip(b, -2.0, 2.0)), jnp.arctan2]


def random_elementwise_program(rng):
    n_ops = int(rng.integers(3, 9))
    plan = [(int(rng.integers(0, 2)), int(rng.integers(0, len(UNARY))), int(rng.integers(0, len(BINARY))))
            for _ in range(n_ops)]

    def f(x, y):
        vals = [x, y]
        for kind, u, b in plan:
            a = vals[-1]
            if kind == 0:
                vals.append(UNARY[u](a))
            else:
                vals.append(BINARY[b](a, vals[-2]))
        return vals[-1]
    return f


@pytest.mark.parametrize("seed", range(24))
def test_random_elementwise_chains(tmp_path, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 9, size=int(rng.integers(1, 4))))
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    f = random_elementwise_program(rng)
    (e,), (g,) = run_hloserve(tmp_path, f, (x, y))
    assert_close(e, g, 1e-5)


REDUCTIONS = [
    lambda x: jnp.sum(x, axis=0), lambda x: jnp.sum(x, axis=-1), lambda x: jnp.max(x, axis=1),
    lambda x: jnp.min(x), lambda x: jnp.mean(x, axis=(0, 2)), lambda x: jnp.argmax(x, axis=1).astype(jnp.int32),
    lambda x: jnp.cumsum(x, axis=1), lambda x: jax.nn.softmax(x, axis=-1),
    lambda x: jnp.transpose(x, (2, 0, 1)) * 2.0, lambda x: jnp.reshape(x, (x.shape[0], -1))[:, ::2],
    lambda x: jnp.concatenate([x, jnp.flip(x, 1)], axis=1), lambda x: jnp.pad(x, ((1, 2), (0, 1), (2, 0))),
    lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2), (1, 2, 1), "SAME"),
    lambda x: jnp.sort(x, axis=-1), lambda x: jnp.take(x, jnp.array([2, 0, 1]), axis=1),
    lambda x: x.at[:, 1].add(3.0),
]


@pytest.mark.parametrize("i", range(len(REDUCTIONS)))
def test_reductions_and_data_movement(tmp_path, i):
    rng = np.random.default_rng(100 + i)
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    (e,), (g,) = run_hloserve(tmp_path, REDUCTIONS[i], (x,))
    assert_close(e, g, 1e-5)


@pytest.mark.parametrize("seed", range(8))
def test_dot_general(tmp_path, seed):
    rng = np.random.default_rng(200 + seed)
    b, m, k, n = (int(v) for v in rng.integers(1, 40, size=4))
    a = rng.standard_normal((b, m, k)).astype(np.float32)
    c = rng.standard_normal((b, k, n)).astype(np.float32)
    (e,), (g,) = run_hloserve(tmp_path, lambda p, q: jnp.einsum("bmk,bkn->bmn", p, q), (a, c))
    assert_close(e, g, 1e-4)
    (e,), (g,) = run_hloserve(tmp_path, lambda p, q: jnp.einsum("bmk,bnk->bnm", p, q),
                              (a, np.swapaxes(c, 1, 2).copy()))
    assert_close(e, g, 1e-4)


CONVS = [
    # (input NCHW, kernel OIHW, stride, padding, lhs_dil, rhs_dil, groups)
    ((1, 3, 17, 19), (8, 3, 3, 3), (1, 1), "SAME", (1, 1), (1, 1), 1),
    ((2, 8, 16, 16), (16, 8, 1, 1), (2, 2), "VALID", (1, 1), (1, 1), 1),
    ((1, 4, 15, 15), (4, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 4),
    ((1, 6, 12, 12), (6, 3, 3, 3), (2, 1), ((2, 0), (1, 3)), (1, 1), (2, 2), 2),
    ((1, 5, 7, 7), (3, 5, 3, 3), (1, 1), ((1, 1), (1, 1)), (2, 2), (1, 1), 1),
    ((1, 16, 20, 20), (32, 16, 7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1), (1, 1), 1),
]


@pytest.mark.parametrize("i", range(len(CONVS)))
def test_convolution(tmp_path, i):
    xs, ws, stride, pad, ld, rd, groups = CONVS[i]
    rng = np.random.default_rng(300 + i)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)

    def f(x, w):
        return lax.conv_general_dilated(x, w, stride, pad, lhs_dilation=ld, rhs_dilation=rd,
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                        feature_group_count=groups)
    (e,), (g,) = run_hloserve(tmp_path, f, (x, w))
    assert_close(e, g, 1e-4)
    # The same convolution in JAX's own NHWC/HWIO layout.
    xt, wt = np.transpose(x, (0, 2, 3, 1)).copy(), np.transpose(w, (2, 3, 1, 0)).copy()

    def g2(x, w):
        return lax.conv_general_dilated(x, w, stride, pad, lhs_dilation=ld, rhs_dilation=rd,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=groups)
    (e,), (g,) = run_hloserve(tmp_path, g2, (xt, wt))
    assert_close(e, g, 1e-4)
