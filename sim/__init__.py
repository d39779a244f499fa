"""sim: the cycle-approximate simulator of 1-bit and ternary LLM accelerators.

A `Design` describes an accelerator on a `Board`. `prepare_layer` and `run_layer` run a layer
on the Numba engine with exact outputs and modelled cycles, time and energy; `estimate_layer`
gives the same timing from the shapes alone. `simulate_gemm` runs one GEMM on a systolic
array with SCALE-Sim's timing model, and `estimate_gemm` gives its closed form.
`simulate_model` costs a whole model (decode or prefill) on a design, layer by layer, with the
host-side layers and the fit on the board; `evaluate_model` does so for many designs at once.
`explore` sweeps a `Space` of designs for a model and a board into a `ResultStore` and returns
the feasible designs and their Pareto front.
"""

from sim.analytical import (
    HOSTS,
    DesignTable,
    Host,
    ModelLayerRun,
    ModelRun,
    evaluate_layer,
    evaluate_model,
    simulate_model,
)
from sim.boards import BOARDS, Board, get_board
from sim.design import ARRAYS, DATAFLOWS, DATAPATHS, WEIGHT_FORMATS, WEIGHT_STORES, Design
from sim.engine import LayerProgram, prepare_layer, run_layer, warm_up
from sim.explore import (
    EVALUATOR,
    OBJECTIVES,
    ExploreResult,
    NoFeasibleDesignError,
    Workload,
    explore,
    pareto_front,
)
from sim.models import (
    FAMILIES,
    LAYER_KINDS,
    MODELS,
    Layer,
    ModelConfig,
    get_model,
    host_bytes_per_token,
    host_memory_bytes,
    host_parameters,
    model_layers,
    ternary_parameters,
)
from sim.resources import FitReport, Resources, design_resources, fit_report
from sim.space import Space, default_space, parse_axis
from sim.store import ResultStore, design_key
from sim.systolic import GemmRun, estimate_gemm, simulate_gemm
from sim.timing import (
    BOUNDS,
    LayerRun,
    estimate_layer,
    latency_cycles,
    load_cycles,
    pipeline_depth,
)

__all__ = [
    "EVALUATOR",
    "OBJECTIVES",
    "ExploreResult",
    "NoFeasibleDesignError",
    "ResultStore",
    "Space",
    "Workload",
    "default_space",
    "design_key",
    "explore",
    "parse_axis",
    "pareto_front",
    "HOSTS",
    "DesignTable",
    "FitReport",
    "Host",
    "ModelLayerRun",
    "ModelRun",
    "Resources",
    "design_resources",
    "evaluate_layer",
    "evaluate_model",
    "fit_report",
    "simulate_model",
    "DATAFLOWS",
    "GemmRun",
    "estimate_gemm",
    "simulate_gemm",
    "ARRAYS",
    "FAMILIES",
    "LAYER_KINDS",
    "MODELS",
    "Layer",
    "ModelConfig",
    "get_model",
    "host_bytes_per_token",
    "host_memory_bytes",
    "host_parameters",
    "model_layers",
    "ternary_parameters",
    "BOARDS",
    "BOUNDS",
    "DATAPATHS",
    "WEIGHT_FORMATS",
    "WEIGHT_STORES",
    "Board",
    "Design",
    "LayerProgram",
    "LayerRun",
    "estimate_layer",
    "get_board",
    "latency_cycles",
    "load_cycles",
    "pipeline_depth",
    "prepare_layer",
    "run_layer",
    "warm_up",
]
