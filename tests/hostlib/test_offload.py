import pytest
import torch
from torch import nn

import kernels
from hostlib.devices import ReferenceDevice, make_device
from hostlib.offload import MismatchError, OffloadedBitLinear, offload


def _ternary(rows, cols, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 2, (rows, cols), generator=generator, dtype=torch.int8)


def _two_layer_model():
    first = kernels.BitLinear(_ternary(32, 64, 1), 0.05, name="first")
    second = kernels.BitLinear(_ternary(16, 32, 2), 4.0, convention="divide", name="second")
    return nn.Sequential(first, nn.ReLU(), second)


class _OffByOneDevice(ReferenceDevice):
    """Returns the reference accumulators plus one at a single position."""

    name = "off-by-one"

    def _run(self, handle, x_2d, stats):
        acc = super()._run(handle, x_2d, stats).clone()
        acc[0, 0] += 1
        return acc


def test_offload_reference_keeps_outputs():
    model = _two_layer_model()
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(0))
    expected = model(x)
    device = ReferenceDevice()
    offload(model, device)
    assert isinstance(model[0], OffloadedBitLinear)
    assert isinstance(model[2], OffloadedBitLinear)
    assert torch.equal(model(x), expected)


def test_offload_counts_calls_and_tokens():
    model = _two_layer_model()
    device = ReferenceDevice()
    offload(model, device)
    model(torch.randn(2, 7, 64))
    stats = device.stats()
    assert [s.name for s in stats] == ["first", "second"]
    assert [s.calls for s in stats] == [1, 1]
    assert [s.tokens for s in stats] == [14, 14]
    assert stats[0].cycles is None


def test_offload_check_catches_wrong_accumulator():
    model = _two_layer_model()
    offload(model, _OffByOneDevice(), check=True)
    with pytest.raises(MismatchError, match=r"layer 'first' on device 'off-by-one': accumulator"):
        model(torch.randn(1, 64))


def test_offload_without_check_passes_wrong_result():
    model = _two_layer_model()
    x = torch.randn(1, 64, generator=torch.Generator().manual_seed(3))
    expected = model(x)
    offload(model, _OffByOneDevice())
    assert not torch.equal(model(x), expected)


def test_offload_names_unnamed_layers():
    model = nn.Sequential(kernels.BitLinear(_ternary(8, 8, 4), 1.0))
    device = ReferenceDevice()
    offload(model, device)
    assert device.stats()[0].name == "0"


def test_offload_rejects_model_without_bitlinear():
    with pytest.raises(ValueError, match="Linear holds no kernels.BitLinear layer to offload"):
        offload(nn.Linear(4, 4), ReferenceDevice())


def test_device_run_rejects_wrong_width():
    device = ReferenceDevice()
    handle = device.upload("layer", _ternary(4, 8, 5))
    with pytest.raises(ValueError, match=r"layer 'layer': activations must be int8 \[\.\.\., 8\]"):
        device.run(handle, torch.zeros((1, 9), dtype=torch.int8))


def test_device_upload_rejects_non_ternary():
    weights = _ternary(4, 8, 6)
    weights[2, 3] = 2
    with pytest.raises(ValueError, match=r"found 2 at \(2, 3\)"):
        ReferenceDevice().upload("layer", weights)


def test_device_upload_rejects_float_weights():
    with pytest.raises(TypeError, match="weights must be a 2-D int8 tensor"):
        ReferenceDevice().upload("layer", torch.zeros((4, 8)))


def test_make_device_names():
    assert make_device("reference").name == "reference"
    with pytest.raises(ValueError, match="the sim device needs a design"):
        make_device("sim")
    with pytest.raises(ValueError, match="device 'rtl' needs a design"):
        make_device("rtl")
    with pytest.raises(ValueError, match="device 'serial:/dev/ttyUSB0' needs a design"):
        make_device("serial:/dev/ttyUSB0")
    with pytest.raises(ValueError, match="unknown device 'gpu'; choose one of: reference, sim"):
        make_device("gpu")
