"""Layer implementations written the way course code (cs231n-style assignments) writes
them, each with a correct backward and a buggy one: the material for tests/test_backward.py
and bench/backward_vs_gradcheck.py.  Plain NumPy; nothing here knows about derive.

Each ``CASES`` entry says how to call a layer: its input shapes, ``forward(*inputs) -> out``
and ``backward(dout, *inputs) -> grads`` (the correct one and the buggy one), and, for the
test, which gradient the bug breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


# ------------------------------------------------------------------ affine
def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def affine_backward_bug(dout, cache):
    x, w, b = cache
    N = x.shape[0]
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T.dot(dout) / N  # BUG: averaged over the batch, but the forward pass sums
    db = np.sum(dout, axis=0)
    return dx, dw, db


# ------------------------------------------------------------------ relu
def relu_forward(x):
    out = np.maximum(0, x)
    return out, x


def relu_backward(dout, cache):
    x = cache
    dx = dout.copy()
    dx[x <= 0] = 0
    return dx


def relu_backward_mask(dout, cache):
    x = cache
    return dout * (x > 0)


def relu_backward_bug(dout, cache):
    x = cache
    dx = np.where(x > 0, 1.0, 0.0)  # BUG: the local derivative only, dout forgotten
    return dx


# ------------------------------------------------------------------ batchnorm (training mode)
def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu = np.mean(x, axis=0)
    xmu = x - mu
    sq = xmu**2
    var = np.mean(sq, axis=0)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    out = gamma * xhat + beta
    cache = (xhat, gamma, xmu, ivar, sqrtvar, var, eps)
    return out, cache


def batchnorm_backward(dout, cache):
    """The staged form: one step of the computational graph at a time."""
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    N, D = dout.shape
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1.0 / (sqrtvar**2) * divar
    dvar = 0.5 * 1.0 / np.sqrt(var + eps) * dsqrtvar
    dsq = 1.0 / N * np.ones((N, D)) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -1 * np.sum(dx1, axis=0)
    dx2 = 1.0 / N * np.ones((N, D)) * dmu
    dx = dx1 + dx2
    return dx, dgamma, dbeta


def batchnorm_backward_bug(dout, cache):
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    N, D = dout.shape
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1.0 / (sqrtvar**2) * divar
    dvar = 1.0 / np.sqrt(var + eps) * dsqrtvar  # BUG: d sqrt(v)/dv = 1/(2 sqrt(v)): the 0.5 is missing
    dsq = 1.0 / N * np.ones((N, D)) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -1 * np.sum(dx1, axis=0)
    dx2 = 1.0 / N * np.ones((N, D)) * dmu
    dx = dx1 + dx2
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """The one-line form."""
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(xhat * dout, axis=0)
    dx = (gamma * ivar / N) * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_alt_bug(dout, cache):
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(xhat * dout, axis=0)
    dx = (gamma * ivar / N) * (N * dout - dbeta - xhat * dbeta)  # BUG: xhat * dbeta, not xhat * dgamma
    return dx, dgamma, dbeta


def batchnorm_backward_alt_no_eps(dout, cache):
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(xhat * dout, axis=0)
    istd = 1.0 / np.sqrt(var)  # BUG: eps left out of the backward pass (a relative error of about eps/var)
    dx = (gamma * istd / N) * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


# ------------------------------------------------------------------ dropout (inverted, training mode)
def dropout_forward(x, mask, p):
    out = x * mask / p
    return out, (mask, p)


def dropout_backward(dout, cache):
    mask, p = cache
    return dout * mask / p


def dropout_backward_bug(dout, cache):
    mask, p = cache
    return dout * mask  # BUG: the 1/p scaling of the forward pass is forgotten


# ------------------------------------------------------------------ softmax loss with integer labels
def softmax_loss(x, y):
    shifted = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted), axis=1, keepdims=True)
    log_probs = shifted - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def softmax_loss_bug(x, y):
    shifted = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted), axis=1, keepdims=True)
    log_probs = shifted - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1  # BUG: no dx /= N, though the loss is averaged
    return loss, dx


# ------------------------------------------------------------------ conv, naive loops
def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), "constant")
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    out[n, f, i, j] = np.sum(x_pad[n, :, hs:hs + HH, ws:ws + WW] * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache, swap_ij=False):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), "constant")
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.sum(dout, axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    up = dout[n, f, j, i] if swap_ij else dout[n, f, i, j]  # the BUG: i and j swapped in dw
                    dw[f] += x_pad[n, :, hs:hs + HH, ws:ws + WW] * up
                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db


def conv_backward_naive_bug(dout, cache):
    return conv_backward_naive(dout, cache, swap_ij=True)


# ------------------------------------------------------------------ conv, im2col (cs231n's indices)
def get_im2col_indices(x_shape, field_height, field_width, padding=1, stride=1):
    N, C, H, W = x_shape
    out_height = (H + 2 * padding - field_height) // stride + 1
    out_width = (W + 2 * padding - field_width) // stride + 1
    i0 = np.repeat(np.arange(field_height), field_width)
    i0 = np.tile(i0, C)
    i1 = stride * np.repeat(np.arange(out_height), out_width)
    j0 = np.tile(np.arange(field_width), field_height * C)
    j1 = stride * np.tile(np.arange(out_width), out_height)
    i = i0.reshape(-1, 1) + i1.reshape(1, -1)
    j = j0.reshape(-1, 1) + j1.reshape(1, -1)
    k = np.repeat(np.arange(C), field_height * field_width).reshape(-1, 1)
    return k, i, j


def im2col_indices(x, field_height, field_width, padding=1, stride=1):
    p = padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="constant")
    k, i, j = get_im2col_indices(x.shape, field_height, field_width, padding, stride)
    cols = x_padded[:, k, i, j]
    C = x.shape[1]
    cols = cols.transpose(1, 2, 0).reshape(field_height * field_width * C, -1)
    return cols


def col2im_indices(cols, x_shape, field_height=3, field_width=3, padding=1, stride=1, buffered=False):
    N, C, H, W = x_shape
    H_padded, W_padded = H + 2 * padding, W + 2 * padding
    x_padded = np.zeros((N, C, H_padded, W_padded), dtype=cols.dtype)
    k, i, j = get_im2col_indices(x_shape, field_height, field_width, padding, stride)
    cols_reshaped = cols.reshape(C * field_height * field_width, -1, N)
    cols_reshaped = cols_reshaped.transpose(2, 0, 1)
    if buffered:
        x_padded[:, k, i, j] += cols_reshaped  # the BUG: repeated indices are added once, not accumulated
    else:
        np.add.at(x_padded, (slice(None), k, i, j), cols_reshaped)
    if padding == 0:
        return x_padded
    return x_padded[:, :, padding:-padding, padding:-padding]


def conv_forward_im2col(x, w, b, conv_param):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    H_out = (H + 2 * pad - HH) // stride + 1
    W_out = (W + 2 * pad - WW) // stride + 1
    x_cols = im2col_indices(x, HH, WW, pad, stride)
    res = w.reshape(F, -1).dot(x_cols) + b.reshape(-1, 1)
    out = res.reshape(F, H_out, W_out, N).transpose(3, 0, 1, 2)
    return out, (x, w, b, conv_param, x_cols)


def conv_backward_im2col(dout, cache, buffered=False):
    x, w, b, conv_param, x_cols = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, C, HH, WW = w.shape
    db = np.sum(dout, axis=(0, 2, 3))
    dout_reshaped = dout.transpose(1, 2, 3, 0).reshape(F, -1)
    dw = dout_reshaped.dot(x_cols.T).reshape(w.shape)
    dx_cols = w.reshape(F, -1).T.dot(dout_reshaped)
    dx = col2im_indices(dx_cols, x.shape, HH, WW, pad, stride, buffered=buffered)
    return dx, dw, db


def conv_backward_im2col_bug(dout, cache):
    return conv_backward_im2col(dout, cache, buffered=True)


# ------------------------------------------------------------------ max pool, naive loops
def max_pool_forward_naive(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    H_out = 1 + (H - ph) // stride
    W_out = 1 + (W - pw) // stride
    out = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    out[n, c, i, j] = np.max(x[n, c, hs:hs + ph, ws:ws + pw])
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache, use_mask=True):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    window = x[n, c, hs:hs + ph, ws:ws + pw]
                    mask = (window == np.max(window)) if use_mask else 1  # the BUG: no mask
                    dx[n, c, hs:hs + ph, ws:ws + pw] += mask * dout[n, c, i, j]
    return dx


def max_pool_backward_naive_bug(dout, cache):
    return max_pool_backward_naive(dout, cache, use_mask=False)


# ------------------------------------------------------------------ vanilla RNN step
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache, bug=False):
    x, prev_h, Wx, Wh, next_h = cache
    if bug:
        dtanh = dnext_h * (1 - next_h) ** 2  # BUG: (1 - h)**2, not 1 - h**2
    else:
        dtanh = dnext_h * (1 - next_h**2)
    dx = dtanh.dot(Wx.T)
    dprev_h = dtanh.dot(Wh.T)
    dWx = x.T.dot(dtanh)
    dWh = prev_h.T.dot(dtanh)
    db = np.sum(dtanh, axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_step_backward_bug(dnext_h, cache):
    return rnn_step_backward(dnext_h, cache, bug=True)


# ------------------------------------------------------------------ LSTM step
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache, bug=False):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    do = dnext_h * tc
    if bug:
        dc = dnext_c  # BUG: the path from next_h into next_c is forgotten
    else:
        dc = dnext_c + dnext_h * o * (1 - tc**2)
    di = dc * g
    df = dc * prev_c
    dg = dc * i
    dprev_c = dc * f
    da = np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)))
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = np.sum(da, axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_step_backward_bug(dnext_h, dnext_c, cache):
    return lstm_step_backward(dnext_h, dnext_c, cache, bug=True)


# ------------------------------------------------------------------ the cases
BN_PARAM = {"mode": "train", "eps": 1e-5}
CONV_PARAM = {"stride": 1, "pad": 1}
POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}
DROPOUT_MASK = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
DROPOUT_P = 0.5
LABELS = np.array([2, 0])


@dataclass
class Case:
    """One layer: how derive and a numeric gradient check call it.

    ``forward(*inputs) -> out`` (a tuple for several outputs) and
    ``backward(dout, *inputs) -> grads`` in the order of ``shapes`` (``dout`` a tuple for
    several outputs); a loss (``loss=True``) has ``forward(*inputs) -> (loss, grads)``
    and no backward.  ``wrong`` is the gradient the bug breaks."""

    name: str
    shapes: dict[str, tuple[int, ...]]
    forward: Callable[..., Any]
    correct: Callable[..., Any] | None
    buggy: Callable[..., Any] | None
    wrong: str
    loss: bool = False
    loss_buggy: Callable[..., Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _affine_cases() -> list[Case]:
    fwd = lambda x, w, b: affine_forward(x, w, b)[0]  # noqa: E731
    return [Case("affine", {"x": (2, 3), "w": (3, 2), "b": (2,)}, fwd,
                 lambda d, x, w, b: affine_backward(d, affine_forward(x, w, b)[1]),
                 lambda d, x, w, b: affine_backward_bug(d, affine_forward(x, w, b)[1]), "w")]


def _bn(backward: Callable[..., Any]) -> Callable[..., Any]:
    return lambda d, x, gamma, beta: backward(d, batchnorm_forward(x, gamma, beta, BN_PARAM)[1])


CASES: list[Case] = [
    *_affine_cases(),
    Case("relu", {"x": (2, 3)}, lambda x: relu_forward(x)[0],
         lambda d, x: relu_backward(d, relu_forward(x)[1]),
         lambda d, x: relu_backward_bug(d, relu_forward(x)[1]), "x"),
    Case("batchnorm", {"x": (3, 2), "gamma": (2,), "beta": (2,)},
         lambda x, gamma, beta: batchnorm_forward(x, gamma, beta, BN_PARAM)[0],
         _bn(batchnorm_backward), _bn(batchnorm_backward_bug), "x"),
    Case("batchnorm_alt", {"x": (3, 2), "gamma": (2,), "beta": (2,)},
         lambda x, gamma, beta: batchnorm_forward(x, gamma, beta, BN_PARAM)[0],
         _bn(batchnorm_backward_alt), _bn(batchnorm_backward_alt_bug), "x"),
    Case("batchnorm_eps", {"x": (3, 2), "gamma": (2,), "beta": (2,)},
         lambda x, gamma, beta: batchnorm_forward(x, gamma, beta, BN_PARAM)[0],
         _bn(batchnorm_backward_alt), _bn(batchnorm_backward_alt_no_eps), "x"),
    Case("dropout", {"x": (2, 3)}, lambda x: dropout_forward(x, DROPOUT_MASK, DROPOUT_P)[0],
         lambda d, x: dropout_backward(d, dropout_forward(x, DROPOUT_MASK, DROPOUT_P)[1]),
         lambda d, x: dropout_backward_bug(d, dropout_forward(x, DROPOUT_MASK, DROPOUT_P)[1]), "x"),
    Case("softmax_loss", {"x": (2, 3)}, lambda x: softmax_loss(x, LABELS), None, None, "x", loss=True,
         loss_buggy=lambda x: softmax_loss_bug(x, LABELS)),
    Case("conv_naive", {"x": (1, 1, 3, 3), "w": (1, 1, 2, 2), "b": (1,)},
         lambda x, w, b: conv_forward_naive(x, w, b, CONV_PARAM)[0],
         lambda d, x, w, b: conv_backward_naive(d, conv_forward_naive(x, w, b, CONV_PARAM)[1]),
         lambda d, x, w, b: conv_backward_naive_bug(d, conv_forward_naive(x, w, b, CONV_PARAM)[1]), "w"),
    Case("conv_im2col", {"x": (1, 1, 3, 3), "w": (1, 1, 2, 2), "b": (1,)},
         lambda x, w, b: conv_forward_im2col(x, w, b, CONV_PARAM)[0],
         lambda d, x, w, b: conv_backward_im2col(d, conv_forward_im2col(x, w, b, CONV_PARAM)[1]),
         lambda d, x, w, b: conv_backward_im2col_bug(d, conv_forward_im2col(x, w, b, CONV_PARAM)[1]), "x"),
    Case("max_pool_naive", {"x": (1, 1, 4, 4)}, lambda x: max_pool_forward_naive(x, POOL_PARAM)[0],
         lambda d, x: max_pool_backward_naive(d, max_pool_forward_naive(x, POOL_PARAM)[1]),
         lambda d, x: max_pool_backward_naive_bug(d, max_pool_forward_naive(x, POOL_PARAM)[1]), "x"),
    # the same code, and for the numeric check an input whose top two entries in a window are
    # 1e-7 apart (closer than a finite difference's step): derive's verdict is for every input
    Case("max_pool_near_tie", {"x": (1, 1, 4, 4)}, lambda x: max_pool_forward_naive(x, POOL_PARAM)[0],
         lambda d, x: max_pool_backward_naive(d, max_pool_forward_naive(x, POOL_PARAM)[1]),
         lambda d, x: max_pool_backward_naive_bug(d, max_pool_forward_naive(x, POOL_PARAM)[1]), "x",
         notes={"numeric_inputs": {"x": np.array([[[[0.3, 0.3 + 1e-7, -1.2, 0.4], [-0.5, 0.1, 0.9, -0.7],
                                                    [1.1, -0.2, 0.6, 0.25], [0.05, -1.3, -0.8, 0.35]]]])}}),
    Case("rnn_step", {"x": (2, 2), "prev_h": (2, 2), "Wx": (2, 2), "Wh": (2, 2), "b": (2,)},
         lambda x, h, Wx, Wh, b: rnn_step_forward(x, h, Wx, Wh, b)[0],
         lambda d, x, h, Wx, Wh, b: rnn_step_backward(d, rnn_step_forward(x, h, Wx, Wh, b)[1]),
         lambda d, x, h, Wx, Wh, b: rnn_step_backward_bug(d, rnn_step_forward(x, h, Wx, Wh, b)[1]), "x"),
    Case("lstm_step", {"x": (1, 2), "prev_h": (1, 1), "prev_c": (1, 1), "Wx": (2, 4), "Wh": (1, 4), "b": (4,)},
         lambda x, h, c, Wx, Wh, b: lstm_step_forward(x, h, c, Wx, Wh, b)[:2],
         lambda d, x, h, c, Wx, Wh, b: lstm_step_backward(d[0], d[1], lstm_step_forward(x, h, c, Wx, Wh, b)[2]),
         lambda d, x, h, c, Wx, Wh, b: lstm_step_backward_bug(d[0], d[1], lstm_step_forward(x, h, c, Wx, Wh, b)[2]),
         "prev_c"),
]


# ------------------------------------------------------------------ the numerically stable sigmoid (cs231n's rnn_layers)
def stable_sigmoid(x):
    pos_mask = (x >= 0)
    neg_mask = (x < 0)
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)
