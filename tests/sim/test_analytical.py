import json
import math
import re

import numpy as np
import pytest

import sim
from sim.analytical import HOSTS, DesignTable, evaluate_layer, evaluate_model, simulate_model
from tests.sim import stream_reference

LAYER_FIELDS = (
    "cycles",
    "compute_cycles",
    "memory_cycles",
    "stall_cycles",
    "pipeline_depth",
    "time_s",
    "energy_j",
    "weight_bytes",
    "dram_bytes",
)


def random_design(rng, boards=tuple(sim.BOARDS)):
    board = sim.BOARDS[boards[int(rng.integers(len(boards)))]]
    datapath = str(rng.choice(["ternary", "xnor", "lut"]))
    fields = {
        "datapath": datapath,
        "pe": int(rng.choice([1, 2, 4, 8, 16, 32])),
        "clock_mhz": float(rng.choice([24.0, 100.0, 250.0, 300.0])),
    }
    if datapath == "ternary":
        fields["weight_format"] = str(rng.choice(["2bit", "base3", "i2_s"]))
        fields["act_bits"] = int(rng.choice([4, 8]))
        fields["simd"] = int(rng.choice([1, 4, 16, 64]))
    elif datapath == "lut":
        fields["weight_format"] = str(rng.choice(["lut2", "lut3"]))
        group = 2 if fields["weight_format"] == "lut2" else 3
        fields["simd"] = group * int(rng.choice([1, 4, 16]))
    else:
        fields["simd"] = int(rng.choice([1, 8, 32, 128]))
    if datapath != "xnor":
        fields["zero_skip"] = bool(rng.integers(2))
    if rng.integers(4) == 0:
        fields["acc_bits"] = 32
    if board.has_dram and rng.integers(3) == 0:
        fields["weight_store"] = "onchip"
    return sim.Design(board=board, **fields)


def reference_schedule(design, folds, tokens):
    board = design.board
    return stream_reference.stream(
        folds,
        tokens,
        design.tile_bytes,
        board.dram_burst_bytes,
        design.clock_hz,
        board.dram_bytes_per_s,
        board.dram_latency_ns,
    )


def closed_form_is_exact(design, folds, tokens):
    """The cases where the schedule's closed form equals the stepped schedule."""
    if design.weight_store == "onchip":
        return True
    return stream_reference.closed_form_is_exact(reference_schedule(design, folds, tokens))


def test_evaluate_layer_equals_estimate_layer():
    rng = np.random.default_rng(29)
    designs = [random_design(rng) for _ in range(300)]
    # Slow SDRAM (ULX3S: 16-byte bursts of 8 cycles) and base3 tiles that straddle bursts.
    designs += [
        sim.Design.from_spec(f"pe={pe},simd=16,weight_format=base3", "ulx3s") for pe in (1, 3, 6)
    ]
    table = DesignTable.from_designs(designs)
    exact = bounded = 0
    cases = [(48, 96, 1, 1.0), (96, 192, 5, 0.6), (16, 48, 2, 0.0), (48, 96, 12, 1.0)]
    for n, k, tokens, fraction in cases:
        arrays = evaluate_layer(table, n, k, tokens, nonzero_fraction=fraction)
        for index, design in enumerate(designs):
            runs = n % design.pe == 0 and k % design.simd == 0
            assert bool(arrays["runs"][index]) == runs
            if not runs:
                continue
            scalar = sim.estimate_layer(
                design, n, k, tokens, nonzero_fraction=fraction, check_capacity=False
            )
            folds = (n // design.pe) * (k // design.simd)
            if closed_form_is_exact(design, folds, tokens):
                exact += 1
                for field in LAYER_FIELDS:
                    # Exact: the same integer and floating-point operations in the same order.
                    assert arrays[field][index] == getattr(scalar, field), (field, design)
                assert bool(arrays["memory_bound"][index]) == (scalar.bound == "memory")
                continue
            bounded += 1
            assert arrays["cycles"][index] <= scalar.cycles, design
            for field in ("compute_cycles", "memory_cycles", "weight_bytes", "dram_bytes"):
                assert arrays[field][index] == getattr(scalar, field), (field, design)
    assert exact > 150
    assert bounded > 0


def test_evaluate_layer_strict_bound_case():
    # 2-byte base3 tiles on 16-byte SDRAM bursts (ULX3S, 8 cycles a burst at 100 MHz from
    # 200 MB/s): a burst contains eight tiles, but the double buffer takes two, so the stream
    # pauses after each burst until the array has drained it. The closed form sees one
    # unbroken stream and is below the stepped schedule.
    design = sim.Design.from_spec("pe=1,simd=8,weight_format=base3", "ulx3s")
    assert design.tile_bytes == 2
    n, k, tokens = 4, 32, 1
    folds = 16
    latency, first, stream = 7, 8, 16  # 70 ns, one burst and two bursts at 100 MHz
    depth = 3 + 3
    closed = max(latency + first + tokens * folds, latency + stream + tokens) + depth
    arrays = evaluate_layer(DesignTable.from_designs([design]), n, k, tokens)
    scalar = sim.estimate_layer(design, n, k, tokens)
    assert arrays["cycles"][0] == closed == 37
    assert scalar.cycles == reference_schedule(design, folds, tokens).cycles + depth == 44
    assert not closed_form_is_exact(design, folds, tokens)


def test_evaluate_layer_flags_narrow_accumulator():
    designs = [sim.Design.from_spec("pe=1,simd=1,acc_bits=10", "kv260")]
    table = DesignTable.from_designs(designs)
    assert bool(evaluate_layer(table, 1, 3)["runs"][0])
    assert not bool(evaluate_layer(table, 1, 4)["runs"][0])


def test_evaluate_layer_errors():
    table = DesignTable.from_designs([sim.Design.from_spec(None, "kv260")])
    with pytest.raises(TypeError, match="table must be a sim.analytical.DesignTable, got list"):
        evaluate_layer([], 16, 64)
    with pytest.raises(ValueError, match="layer n must be >= 1, got 0"):
        evaluate_layer(table, 0, 64)
    with pytest.raises(TypeError, match="layer k must be an int, got float"):
        evaluate_layer(table, 16, 64.0)
    with pytest.raises(ValueError, match="tokens must be >= 1, got 0"):
        evaluate_layer(table, 16, 64, 0)
    with pytest.raises(ValueError, match="nonzero_fraction must be between 0 and 1, got -0.1"):
        evaluate_layer(table, 16, 64, nonzero_fraction=-0.1)


def test_design_table_errors():
    with pytest.raises(ValueError, match="a DesignTable needs at least one design, got none"):
        DesignTable.from_designs([])
    with pytest.raises(TypeError, match="designs must be sim.Design objects, got str at index 1"):
        DesignTable.from_designs([sim.Design.from_spec(None, "kv260"), "kv260"])
    systolic = sim.Design.from_spec("array=systolic", "kv260")
    with pytest.raises(NotImplementedError, match="covers Design.array = 'mvu' only"):
        DesignTable.from_designs([systolic])


# Whole models.


def model_designs(rng, count):
    # Parallelism that divides every layer of the demo and BitNet b1.58 2B-4T models.
    designs = []
    while len(designs) < count:
        design = random_design(rng)
        if 128 % design.pe == 0 and 128 % design.simd == 0:
            designs.append(design)
    return designs


@pytest.mark.parametrize(
    ("model", "phase", "tokens", "context"),
    [
        ("demo", "decode", 1, 100),
        ("demo", "prefill", 17, None),
        ("mmfree-370m", "decode", 1, None),
        ("mmfree-370m", "prefill", 4, None),
    ],
)
def test_evaluate_model_equals_simulate_model(model, phase, tokens, context):
    rng = np.random.default_rng(31)
    designs = model_designs(rng, 40)
    arrays = evaluate_model(designs, model, phase, tokens, context)
    for index, design in enumerate(designs):
        run = simulate_model(design, model, phase, tokens, context)
        assert arrays["cycles"][index] == run.cycles
        assert arrays["dram_bytes_read"][index] == run.dram_bytes_read
        for name in ("lut", "ff", "dsp", "onchip_bytes", "dram_bytes"):
            assert arrays[name][index] == getattr(run.resources, name), name
        assert bool(arrays["fits"][index]) == run.fits
        for name in ("accelerator_time_s", "host_time_s", "time_s", "tokens_per_s", "energy_j"):
            assert arrays[name][index] == pytest.approx(getattr(run, name), rel=1e-12), name


def test_fit_counts_host_memory_on_zynq():
    # The Zynq's processing system keeps the BF16 embedding, LM head and KV cache in the same
    # DDR4 as the streamed weights. A PCIe card's host has its own memory.
    model = sim.get_model("llama3-8b-1.58")
    weights = sim.ternary_parameters(model) // 4
    host = sim.host_memory_bytes(model, 4096)
    zynq = simulate_model(sim.Design.from_spec(None, "zcu104"), model, context=4096)
    assert zynq.resources.dram_bytes == weights + host
    assert not zynq.fits
    assert any(problem.startswith("DRAM bytes") for problem in zynq.fit.problems)
    card = simulate_model(sim.Design.from_spec(None, "u280"), model, context=4096)
    assert card.resources.dram_bytes == weights
    arrays = evaluate_model(
        [sim.Design.from_spec(None, "zcu104"), sim.Design.from_spec(None, "u280")],
        model,
        context=4096,
    )
    assert list(arrays["dram_bytes"]) == [weights + host, weights]


def test_model_run_sums_its_layers():
    design = sim.Design.from_spec("pe=16,simd=64", "kv260")
    run = simulate_model(design, "bitnet-2b-4t", context=512)
    ternary = [layer for layer in run.layers if layer.kind == "ternary"]
    for layer in ternary:
        single = sim.estimate_layer(design, layer.out_features, layer.in_features)
        assert layer.cycles == single.cycles
        assert layer.bound == single.bound
    assert run.cycles == sum(layer.cycles for layer in ternary)
    assert len(ternary) == 30 * 7
    assert run.time_s == pytest.approx(run.accelerator_time_s + run.host_time_s, rel=1e-15)
    assert run.tokens_per_s == pytest.approx(1 / run.time_s, rel=1e-15)
    # Every ternary layer streams its 2-bit weights once per token.
    assert run.dram_bytes_read == sim.ternary_parameters(sim.get_model("bitnet-2b-4t")) // 4


def test_decode_host_layers_on_the_roofline():
    # Recomputed here from the layer list: the KV260 host is its Cortex-A53 at 19.2 GB/s.
    design = sim.Design.from_spec(None, "kv260")
    run = simulate_model(design, "bitnet-2b-4t", context=256)
    assert run.host == "cortex-a53"
    host = HOSTS["cortex-a53"]
    layers = sim.model_layers(sim.get_model("bitnet-2b-4t"), 256)
    expected = [
        max((layer.bytes_read + layer.bytes_written) / host.bytes_per_s, layer.flops / 21.3e9)
        for layer in layers
        if layer.kind == "host"
    ]
    assert run.host_time_s == pytest.approx(sum(expected), rel=1e-12)
    lm_head = next(layer for layer in run.layers if layer.name == "lm_head")
    assert lm_head.kind == "host"
    assert lm_head.time_s == pytest.approx(128256 * 2560 * 2 / 19.2e9, rel=1e-12)
    assert run.host_energy_j == pytest.approx(host.power_w * run.host_time_s, rel=1e-12)


def test_prefill_host_costs_sum_over_contexts():
    config = sim.get_model("demo")
    design = sim.Design.from_spec("pe=16,simd=64", "kv260")
    tokens = 6
    run = simulate_model(design, config, "prefill", tokens)
    last_only = {"norm", "lm_head", "sample"}
    per_context = [sim.model_layers(config, c) for c in range(1, tokens + 1)]
    for position, entry in enumerate(run.layers):
        if entry.kind != "host":
            assert entry.tokens == tokens
            single = sim.estimate_layer(design, entry.out_features, entry.in_features, tokens)
            assert entry.cycles == single.cycles
            continue
        steps = [layers[position] for layers in per_context]
        if entry.name in last_only:
            steps = steps[-1:]
        assert entry.host_bytes == sum(s.bytes_read + s.bytes_written for s in steps), entry.name
        assert entry.host_flops == sum(s.flops for s in steps), entry.name


def test_prefill_reads_weights_once():
    design = sim.Design.from_spec("pe=16,simd=64", "kv260")
    decode = simulate_model(design, "demo", context=1)
    prefill = simulate_model(design, "demo", "prefill", 32)
    assert prefill.dram_bytes_read == decode.dram_bytes_read
    assert prefill.tokens_per_s > decode.tokens_per_s


def test_matmulfree_lm_head_is_ternary_once_in_prefill():
    design = sim.Design.from_spec("pe=16,simd=64", "kv260")
    run = simulate_model(design, "mmfree-370m", "prefill", 8)
    lm_head = next(layer for layer in run.layers if layer.name == "lm_head")
    assert (lm_head.kind, lm_head.tokens) == ("ternary", 1)


@pytest.mark.parametrize("seed", range(5))
def test_tokens_per_s_under_bandwidth_bound(seed):
    # Property: decode can never beat DRAM bandwidth over the weight bytes streamed per token.
    rng = np.random.default_rng(seed)
    boards = tuple(name for name, board in sim.BOARDS.items() if board.has_dram)
    for _ in range(20):
        design = random_design(rng, boards)
        if 128 % design.pe or 128 % design.simd or design.weight_store != "stream":
            continue
        run = simulate_model(design, "demo", context=64)
        bound = design.board.dram_bytes_per_s / run.dram_bytes_read
        assert run.tokens_per_s <= bound
        accelerator_only = 1 / run.accelerator_time_s
        assert accelerator_only <= bound * (1 + 1e-12)


def test_tokens_per_s_bound_vectorized():
    rng = np.random.default_rng(37)
    boards = tuple(name for name, board in sim.BOARDS.items() if board.has_dram)
    designs = [d for d in model_designs(rng, 200) if d.board.name in boards]
    arrays = evaluate_model(designs, "bitnet-2b-4t", context=1024)
    table = DesignTable.from_designs(designs)
    streamed = table.stream & arrays["runs"]
    bound = table.dram_bytes_per_s[streamed] / arrays["dram_bytes_read"][streamed]
    assert streamed.sum() > 20
    assert np.all(1 / arrays["accelerator_time_s"][streamed] <= bound * (1 + 1e-12))


def test_fit_reported_not_raised():
    design = sim.Design.from_spec("pe=8,simd=32", "ulx3s")
    run = simulate_model(design, "bitnet-2b-4t", context=64)
    assert not run.fits
    assert run.fit.problems[0].startswith("DRAM bytes: needs")
    small = sim.Design.from_spec("pe=4,simd=16,weight_format=base3", "icebreaker")
    run = simulate_model(small, "demo", context=64)
    assert not run.fits
    assert run.fit.problems[0].startswith("on-chip bytes: needs")
    arrays = evaluate_model([design, small], "demo", context=64)
    assert list(arrays["fits"]) == [True, False]


def test_model_run_to_dict():
    run = simulate_model(sim.Design.from_spec(None, "kv260"), "demo", context=8)
    fields = json.loads(json.dumps(run.to_dict()))
    for key in ("cycles", "tokens_per_s", "energy_j_per_token", "resources", "fits", "layers"):
        assert key in fields
    assert fields["layers"][1]["name"] == "layers.0.input_layernorm"
    assert {"name", "kind", "cycles", "bound", "time_s", "energy_j"} <= set(fields["layers"][2])
    assert fields["layers"][0]["cycles"] is None
    assert fields["layers"][0]["bound"] == "host"
    assert math.isclose(fields["energy_j"], fields["energy_j_per_token"])


def test_simulate_model_errors():
    design = sim.Design.from_spec("pe=16,simd=64", "kv260")
    with pytest.raises(ValueError, match="phase must be one of decode, prefill, got 'train'"):
        simulate_model(design, "demo", "train")
    message = "tokens = 4 applies to prefill; decode costs one token at a time"
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate_model(design, "demo", "decode", 4)
    with pytest.raises(ValueError, match="context = 8 applies to decode"):
        simulate_model(design, "demo", "prefill", 4, 8)
    with pytest.raises(ValueError, match=re.escape("tokens (300) exceeds the max_context of demo")):
        simulate_model(design, "demo", "prefill", 300)
    with pytest.raises(ValueError, match="unknown model 'gpt2'"):
        simulate_model(design, "gpt2")
    with pytest.raises(TypeError, match="model must be a model name or a sim.ModelConfig"):
        simulate_model(design, 3)
    with pytest.raises(ValueError, match="unknown host 'vax'; valid names: cortex-a9"):
        simulate_model(design, "demo", host="vax")
    with pytest.raises(TypeError, match="design must be a sim.Design, got NoneType"):
        simulate_model(None, "demo")
    odd = sim.Design.from_spec("pe=16,simd=256", "kv260")
    message = "layer 'layers.0.self_attn.q_proj' (128 x 128): Design.simd = 256 must divide"
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate_model(odd, "demo")
    with pytest.raises(NotImplementedError, match="simulate_model covers Design.array = 'mvu'"):
        simulate_model(sim.Design.from_spec("array=systolic", "kv260"), "demo")


def test_host_override():
    design = sim.Design.from_spec(None, "kv260")
    run = simulate_model(design, "demo", context=8, host="desktop")
    assert run.host == "desktop"
    arrays = evaluate_model([design], "demo", context=8, host=HOSTS["desktop"])
    assert arrays["host_time_s"][0] == pytest.approx(run.host_time_s, rel=1e-12)


def test_evaluate_rejects_int64_overflow():
    design = sim.Design.from_spec("pe=1,simd=1", "kv260")
    table = DesignTable.from_designs([design])
    limit = r"beyond the timing model's limit of 2\*\*62"
    with pytest.raises(ValueError, match=limit):
        evaluate_layer(table, 16, 32, 2**62)
    with pytest.raises(ValueError, match=limit):
        evaluate_layer(table, 2**30, 1024)
    with pytest.raises(ValueError, match=limit):
        evaluate_model(table, "mmfree-370m", "prefill", 2**36)
