"""The cocotb bench of `rtl.MatrixVectorUnit`: driver, monitor, reference model and scoreboard.

This module is the cocotb test module that `rtl.verify` runs inside Verilator or Icarus. A JSON
file named in ``ONEBIT_RTL_CONFIG`` (written by `rtl.verify`) describes the unit under test.
Each cocotb test appends one JSON line with its figures to the file that it names as
``result_path``.

Handshakes are sampled in the read-only phase after each rising edge: a beat whose ``valid``
and ``ready`` are both high then is transferred at the next rising edge. Cycles are counted in
rising edges, so a run's measured cycles are ``last acc edge - first act edge + 1``, the
definition of the timing contract in `rtl.mvu`.
"""

import json
import os
import random
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

import kernels
import sim
from rtl.spec import OUTPUT_BITS, UnitSpec

__all__ = [
    "CycleCounter",
    "MvuBench",
    "Scoreboard",
    "StreamDriver",
    "StreamMonitor",
    "reference_accumulators",
]

CONFIG_VARIABLE = "ONEBIT_RTL_CONFIG"
"""Environment variable naming the bench's JSON configuration file."""


def reference_accumulators(datapath: str, x_q: np.ndarray, w_q: np.ndarray) -> np.ndarray:
    """Return the int32 accumulators ``[T, N]`` that kernels/ computes for the unit's inputs.

    ``ternary`` is `kernels.ternary_matmul` and ``xnor`` is `kernels.xnor_matmul`; both are
    the bit-exact references that the RTL's outputs must equal.
    """
    x = torch.from_numpy(np.ascontiguousarray(x_q, dtype=np.int8))
    w = torch.from_numpy(np.ascontiguousarray(w_q, dtype=np.int8))
    if datapath == "xnor":
        return kernels.xnor_matmul(x, w).numpy().astype(np.int32)
    return kernels.ternary_matmul(x, w).numpy()


def frame(data: int, data_bits: int, first: bool, last: bool) -> int:
    """Pack a framed payload ``{data, first, last}`` into its integer value."""
    return data | (int(first) << data_bits) | (int(last) << (data_bits + 1))


class CycleCounter:
    """Counts rising edges of the clock, so that coroutines can stamp handshakes with them."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.cycle = 0

    async def run(self) -> None:
        from cocotb.triggers import RisingEdge

        while True:
            await RisingEdge(self.clock)
            self.cycle += 1


class StreamDriver:
    """Drives a valid/ready stream from a queue of payloads, with random idle cycles.

    Parameters
    ----------
    bus : str
        The stream's port prefix on the DUT (``act`` for ``act__valid`` ...).
    idle : float
        Probability of holding ``valid`` low in a cycle while payloads are queued.
    """

    def __init__(self, dut, bus: str, counter: CycleCounter, rng: random.Random, idle: float):
        self.valid = getattr(dut, f"{bus}__valid")
        self.ready = getattr(dut, f"{bus}__ready")
        self.payload = getattr(dut, f"{bus}__payload")
        self.counter = counter
        self.rng = rng
        self.idle = idle
        self.queue: deque[int] = deque()
        self.handshakes: list[int] = []
        self.valid.value = 0

    async def run(self) -> None:
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            offer = bool(self.queue) and self.rng.random() >= self.idle
            self.valid.value = int(offer)
            if offer:
                self.payload.value = self.queue[0]
            await ReadOnly()
            if offer and int(self.ready.value):
                self.handshakes.append(self.counter.cycle + 1)
                self.queue.popleft()
            await RisingEdge(self.counter.clock)


class StreamMonitor:
    """Receives a valid/ready stream, with random backpressure, and records each beat.

    Parameters
    ----------
    backpressure : float
        Probability of holding ``ready`` low in a cycle.
    """

    def __init__(self, dut, bus: str, counter: CycleCounter, rng: random.Random, backpressure):
        self.valid = getattr(dut, f"{bus}__valid")
        self.ready = getattr(dut, f"{bus}__ready")
        self.payload = getattr(dut, f"{bus}__payload")
        self.counter = counter
        self.rng = rng
        self.backpressure = backpressure
        self.beats: list[int] = []
        self.handshakes: list[int] = []
        self.ready.value = 0

    async def run(self) -> None:
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            accept = self.rng.random() >= self.backpressure
            self.ready.value = int(accept)
            await ReadOnly()
            if accept and int(self.valid.value):
                self.beats.append(int(self.payload.value))
                self.handshakes.append(self.counter.cycle + 1)
            await RisingEdge(self.counter.clock)


class Scoreboard:
    """Compares each run's accumulators with the reference model and keeps the differences."""

    def __init__(self) -> None:
        self.runs = 0
        self.vectors = 0
        self.mismatches: list[str] = []

    def compare(self, name: str, expected: np.ndarray, got: np.ndarray) -> None:
        self.runs += 1
        self.vectors += expected.shape[0]
        for t, n in np.argwhere(expected != got)[:8]:
            self.mismatches.append(
                f"{name}: vector {t} row {n}: expected {expected[t, n]}, got {got[t, n]}"
            )

    @property
    def passed(self) -> bool:
        return self.runs > 0 and not self.mismatches


class MvuBench:
    """Drives a `rtl.MatrixVectorUnit`: loads weights, runs vectors and checks every result.

    The unit's parameters come from the configuration file; the port widths read from the DUT
    must match them, so that a stale build is caught before any vector runs.
    """

    def __init__(self, dut, config: dict) -> None:
        design = sim.Design.from_spec(config["design"], config["board"])
        self.spec = UnitSpec(design, config["n"], config["k"], config["tokens"])
        self.dut = dut
        self.config = config
        self.rng = random.Random(config["seed"])
        self.counter = CycleCounter(dut.clk)
        self.scoreboard = Scoreboard()
        self.cycles: list[int] = []
        self._act_bits = self.spec.simd * (1 if design.datapath == "xnor" else self.spec.act_bits)
        self._weight_bits = self.spec.pe * self.spec.simd * self.spec.weight_bits
        self._acc_bits = self.spec.pe * OUTPUT_BITS
        for bus, width in (
            ("weights", self._weight_bits),
            ("act", self._act_bits),
            ("acc", self._acc_bits),
        ):
            found = len(getattr(dut, f"{bus}__payload"))
            if found != width + 2:
                raise ValueError(
                    f"DUT port {bus}__payload is {found} bits wide, but the configuration needs "
                    f"{width + 2}: the build is stale, rebuild it"
                )

    async def start(self, idle: float = 0.0, backpressure: float = 0.0) -> None:
        """Start the clock, reset the unit and start the driver and monitor coroutines."""
        import cocotb
        from cocotb.clock import Clock
        from cocotb.triggers import RisingEdge

        Clock(self.dut.clk, 10, unit="ns").start()
        self.weights = StreamDriver(self.dut, "weights", self.counter, self.rng, idle)
        self.act = StreamDriver(self.dut, "act", self.counter, self.rng, idle)
        self.acc = StreamMonitor(self.dut, "acc", self.counter, self.rng, backpressure)
        self.dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self.counter.run())
        cocotb.start_soon(self.weights.run())
        cocotb.start_soon(self.act.run())
        cocotb.start_soon(self.acc.run())

    async def load_weights(self, w_q: np.ndarray) -> None:
        """Send the layer's weight tiles and wait until the last one is written."""
        words = self.spec.pack_weights(w_q)
        for index, word in enumerate(words):
            self.weights.queue.append(
                frame(word, self._weight_bits, index == 0, index == len(words) - 1)
            )
        await self._wait_for(lambda: not self.weights.queue, 20 * len(words) + 100, "weights")
        self.w_q = np.asarray(w_q, dtype=np.int8)

    async def run_vectors(self, runs: list[np.ndarray], name: str) -> None:
        """Send runs of T vectors back to back; check each run's outputs and count its cycles."""
        spec = self.spec
        first_beat = len(self.act.handshakes)
        first_out = len(self.acc.beats)
        for x_q in runs:
            words = spec.pack_activations(x_q)
            for index, word in enumerate(words):
                self.act.queue.append(
                    frame(word, self._act_bits, index == 0, index == len(words) - 1)
                )
        expected_beats = first_out + len(runs) * spec.acc_beats
        limit = 50 * len(runs) * (spec.predicted_cycles() + spec.act_beats) + 1000
        await self._wait_for(lambda: len(self.acc.beats) >= expected_beats, limit, "acc")

        data_mask = (1 << self._acc_bits) - 1
        for r, x_q in enumerate(runs):
            start = first_out + r * spec.acc_beats
            beats = self.acc.beats[start : start + spec.acc_beats]
            framing = [
                ((beat >> self._acc_bits) & 1, beat >> (self._acc_bits + 1)) for beat in beats
            ]
            want_framing = [(int(b == 0), int(b == spec.acc_beats - 1)) for b in range(len(beats))]
            if framing != want_framing:
                self.scoreboard.mismatches.append(
                    f"{name} run {r}: acc first/last flags {framing}, expected {want_framing}"
                )
            got = spec.unpack_accumulators([beat & data_mask for beat in beats])
            expected = reference_accumulators(spec.design.datapath, x_q, self.w_q)
            if self.config.get("reference_fault"):
                # A deliberately wrong reference, so that tests can see the bench fail.
                expected[0, 0] += 1
            self.scoreboard.compare(f"{name} run {r}", expected, got)
            first_edge = self.act.handshakes[first_beat + r * spec.act_beats]
            last_edge = self.acc.handshakes[start + spec.acc_beats - 1]
            self.cycles.append(last_edge - first_edge + 1)
        if int(self.dut.framing_error.value):
            self.scoreboard.mismatches.append(f"{name}: the unit raised framing_error")

    async def _wait_for(self, done, limit: int, what: str) -> None:
        from cocotb.triggers import RisingEdge

        for _ in range(limit):
            if done():
                return
            await RisingEdge(self.dut.clk)
        raise TimeoutError(f"the {what} stream made no progress within {limit} cycles")

    def random_runs(self, count: int) -> list[np.ndarray]:
        """Return ``count`` runs of random activation codes ``[T, K]`` over the full range."""
        spec = self.spec
        gen = np.random.default_rng(self.rng.getrandbits(32))
        if spec.design.datapath == "xnor":
            return [
                np.where(gen.random((spec.tokens, spec.k)) < 0.5, -1, 1).astype(np.int8)
                for _ in range(count)
            ]
        high = 2 ** (spec.act_bits - 1)
        return [
            gen.integers(-high, high, size=(spec.tokens, spec.k)).astype(np.int8)
            for _ in range(count)
        ]

    def random_weights(self) -> np.ndarray:
        """Return random weight codes ``[N, K]`` for the datapath."""
        gen = np.random.default_rng(self.rng.getrandbits(32))
        spec = self.spec
        if spec.design.datapath == "xnor":
            return np.where(gen.random((spec.n, spec.k)) < 0.5, -1, 1).astype(np.int8)
        return gen.integers(-1, 2, size=(spec.n, spec.k)).astype(np.int8)

    def report(self, test: str, **extra) -> dict:
        """Append this test's figures to the result file and return them."""
        result = {
            "test": test,
            "passed": self.scoreboard.passed,
            "vectors": self.scoreboard.vectors,
            "runs": self.scoreboard.runs,
            "cycles_measured": self.cycles,
            "cycles_predicted": self.spec.predicted_cycles(),
            "mismatches": self.scoreboard.mismatches[:20],
            **extra,
        }
        with open(self.config["result_path"], "a", encoding="utf-8") as file:
            file.write(json.dumps(result) + "\n")
        return result


def checkpoint_slice(path: Path, spec: UnitSpec) -> tuple[np.ndarray, np.ndarray]:
    """Return a real layer slice: weights ``[N, K]`` and activations ``[T, K]`` from a checkpoint.

    The weights are the top-left N x K corner of the first packed projection at least that
    large (Hugging Face ``hf`` layout, unpacked with `kernels.unpack_weights`); the activations
    are rows of the token embedding table quantized with `kernels.quantize_activations`. For
    ``xnor`` both are binarized with sign(v) and sign(0) = -1.

    Raises
    ------
    ValueError
        If no projection in the checkpoint is at least N x K, or the embedding is narrower
        than K.
    """
    from safetensors import safe_open

    config = json.loads((path.parent / "config.json").read_text(encoding="utf-8"))
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    # (out_features, in_features) of the projections of the Hugging Face BitNet layer.
    shapes = {
        "mlp.gate_proj": (inter, hidden),
        "mlp.up_proj": (inter, hidden),
        "mlp.down_proj": (hidden, inter),
    }
    with safe_open(str(path), framework="np") as tensors:
        weight = None
        for name, (rows, cols) in shapes.items():
            if rows >= spec.n and cols >= spec.k:
                packed = tensors.get_tensor(f"model.layers.0.{name}.weight")
                weight = kernels.unpack_weights(packed, "hf", (rows, cols))[: spec.n, : spec.k]
                break
        if weight is None:
            raise ValueError(
                f"no projection of checkpoint {path} is at least {spec.n} x {spec.k}; "
                "use a smaller layer for the checkpoint slice"
            )
        embedding = tensors.get_tensor("model.embed_tokens.weight")
    if embedding.shape[1] < spec.k:
        raise ValueError(
            f"the embedding of checkpoint {path} has {embedding.shape[1]} columns, fewer than "
            f"K = {spec.k}"
        )
    rows = embedding[: spec.tokens, : spec.k].astype(np.float32)
    w_q = np.asarray(weight, dtype=np.int8)
    if spec.design.datapath == "xnor":
        return np.where(w_q > 0, 1, -1).astype(np.int8), np.where(rows > 0, 1, -1).astype(np.int8)
    x_q, _ = kernels.quantize_activations(torch.from_numpy(rows), bits=spec.act_bits)
    return w_q, x_q.numpy()


def _load_config() -> dict:
    return json.loads(Path(os.environ[CONFIG_VARIABLE]).read_text(encoding="utf-8"))


# The cocotb tests. cocotb is imported here, not at the top, so that the helpers above stay
# importable (and testable) outside a simulator.
try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a declared dependency
    cocotb = None

if cocotb is not None and CONFIG_VARIABLE in os.environ:

    @cocotb.test()
    async def timing(dut):
        """Check one full-rate run: outputs exact, cycles equal to sim's prediction."""
        bench = MvuBench(dut, _load_config())
        await bench.start()
        await bench.load_weights(bench.random_weights())
        await bench.run_vectors(bench.random_runs(1), "timing")
        result = bench.report("timing")
        assert result["passed"], result["mismatches"]
        assert bench.cycles == [bench.spec.predicted_cycles()], (
            f"measured {bench.cycles} cycles, sim predicts {bench.spec.predicted_cycles()}"
        )

    @cocotb.test()
    async def random_stalls(dut):
        """Check back-to-back random runs under random idle input cycles and backpressure."""
        config = _load_config()
        bench = MvuBench(dut, config)
        await bench.start(idle=config["idle"], backpressure=config["backpressure"])
        await bench.load_weights(bench.random_weights())
        await bench.run_vectors(bench.random_runs(config["runs"]), "random")
        result = bench.report("random_stalls")
        assert result["passed"], result["mismatches"]
        # Stalls only ever add cycles to the full-rate schedule.
        assert min(bench.cycles) >= bench.spec.predicted_cycles(), bench.cycles

    @cocotb.test(skip=not _load_config().get("checkpoint"))
    async def checkpoint(dut):
        """Check a real layer slice of the checkpoint that the configuration names."""
        config = _load_config()
        path = config["checkpoint"]
        bench = MvuBench(dut, config)
        await bench.start()
        w_q, x_q = checkpoint_slice(Path(path), bench.spec)
        await bench.load_weights(w_q)
        await bench.run_vectors([x_q], "checkpoint")
        result = bench.report("checkpoint", checkpoint=path)
        assert result["passed"], result["mismatches"]
        assert bench.cycles == [bench.spec.predicted_cycles()], bench.cycles

    @cocotb.test(skip=not _load_config().get("speed_runs"))
    async def speed(dut):
        """Measure simulated cycles per second over full-rate runs back to back."""
        config = _load_config()
        bench = MvuBench(dut, config)
        await bench.start()
        await bench.load_weights(bench.random_weights())
        runs = bench.random_runs(config["speed_runs"])
        start_cycle, start_time = bench.counter.cycle, time.perf_counter()
        await bench.run_vectors(runs, "speed")
        seconds = time.perf_counter() - start_time
        cycles = bench.counter.cycle - start_cycle
        result = bench.report("speed", cycles=cycles, seconds=seconds)
        assert result["passed"], result["mismatches"]
