"""Contoli et al. 2023's post-training formats (fedhar.compress.ptq): the folded float model is
the BatchNorm model, full-integer int8 keeps its predictions, and the dynamic-range reference
computes the stated arithmetic."""

from __future__ import annotations

import numpy as np
import torch

from fedhar.compress.ptq import FULL_INT8_CLIP, folded_float, ptq_dynamic, ptq_full_int8
from fedhar.compress.qat import build_qat, fake_quant_logits, to_qnet
from fedhar.models.quantized import quantize_weights, reference_logits
from fedhar.models.torch_model import build_torch


def _float_logits(net, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_folded_float_is_the_batchnorm_model(daghero, data) -> None:  # noqa: ANN001
    bn = build_torch(daghero.spec, seed=0)
    bn.load_state_dict({k: torch.from_numpy(v) for k, v in daghero.state.items()}, strict=False)
    bn.eval()
    folded = folded_float(daghero.folded, daghero.folded_state)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in folded.modules())
    np.testing.assert_allclose(
        _float_logits(folded, data.x_test), _float_logits(bn.eval(), data.x_test), atol=1e-4
    )


def test_full_int8_keeps_the_float_predictions(cnn, daghero, data) -> None:  # noqa: ANN001
    for trained in (cnn, daghero):
        qnet = ptq_full_int8(trained.folded, trained.folded_state, data.x[:256])
        assert set(qnet.bits().values()) <= {(8, 8), (8, 0)}
        ref = reference_logits(qnet, qnet.quantize_input(data.x_test))
        flt = _float_logits(folded_float(trained.folded, trained.folded_state), data.x_test)
        assert np.mean(ref.argmax(axis=1) == flt.argmax(axis=1)) >= 0.97
        # it is the 8/8 QAT network before training, so the fake-quant view agrees with it
        net = build_qat(
            trained.folded, trained.folded_state, trained.bits(8, 8), data.x[:256], FULL_INT8_CLIP
        )
        again = to_qnet(net)
        np.testing.assert_array_equal(
            reference_logits(again, again.quantize_input(data.x_test)), ref
        )
        fq = fake_quant_logits(net, data.x_test)
        assert np.mean(fq.argmax(axis=1) == ref.argmax(axis=1)) >= 0.995


def _dynamic_numpy(spec, state, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The dynamic-range arithmetic written out once more, per window, in numpy."""
    out = []
    for window in x.astype(np.float64):
        h = window
        for layer in spec.layers:
            if layer.kind in ("conv1d", "dense"):
                top = np.abs(h).max()
                s = top / 127 if top > 0 else 1.0
                h_q = np.clip(np.rint(h / s), -127, 127)
                q, s_w = quantize_weights(state[f"{layer.name}.weight"], 8)
                if layer.kind == "conv1d":
                    k = layer.kernel
                    pad = (k - 1) // 2 if layer.padding == "same" else 0
                    t_out = layer.out_shape[1]
                    hp = np.zeros((h_q.shape[0], h_q.shape[1] + 2 * pad))
                    hp[:, pad : pad + h_q.shape[1]] = h_q
                    cols = np.stack([hp[:, t : t + k] for t in range(t_out)])  # [To, C, K]
                    acc = np.einsum("tck,fck->ft", cols, q)
                    h = (
                        acc * (s * s_w.astype(np.float64))[:, None]
                        + state[f"{layer.name}.bias"][:, None]
                    )
                else:
                    acc = q @ h_q
                    h = acc * s * s_w.astype(np.float64) + state[f"{layer.name}.bias"]
            elif layer.kind == "relu":
                h = np.maximum(h, 0)
            elif layer.kind in ("maxpool1d", "avgpool1d"):
                n = (h.shape[1] - layer.kernel) // layer.stride + 1
                win = np.stack(
                    [h[:, i * layer.stride : i * layer.stride + layer.kernel] for i in range(n)], 1
                )
                h = win.max(axis=2) if layer.kind == "maxpool1d" else win.mean(axis=2)
            elif layer.kind == "gap1d":
                h = h.mean(axis=1)
            elif layer.kind == "flatten":
                h = h.reshape(-1)
        out.append(h)
    return np.stack(out)


def test_dynamic_reference_computes_the_stated_arithmetic(cnn, daghero, data) -> None:  # noqa: ANN001
    for trained in (cnn, daghero):
        net = ptq_dynamic(trained.folded, trained.folded_state)
        x = data.x_test[:40]
        got = net.logits(x)
        np.testing.assert_allclose(
            got, _dynamic_numpy(trained.folded, trained.folded_state, x), rtol=1e-9, atol=1e-9
        )
        flt = _float_logits(folded_float(trained.folded, trained.folded_state), data.x_test)
        agree = np.mean(net.logits(data.x_test).argmax(axis=1) == flt.argmax(axis=1))
        assert agree >= 0.97
