"""Solving a cvxpy problem the one way this project accepts: status checked, failures raised.

``optimal_inaccurate`` is refused too: a plan sent to a broker must come from a solve the
solver itself calls optimal. The installed solvers are listed by ``cvxpy.installed_solvers()``;
``SOLVER`` picks one: CLARABEL (default; QPs, SOCPs and the exponential cones of risk
parity), OSQP (QPs only), SCS (all, less accurate). HIGHS is refused: every formulation here
has a quadratic objective, and HiGHS 1.16 through cvxpy 1.9 did not return within 60 s on a
15-asset QP on this machine.

CLARABEL factors its KKT systems with QDLDL rather than its default (faer, multithreaded):
on the planner's default problem (500 assets, Ledoit–Wolf factor form with K = 120 dense
rows) a solve took 0.29–0.53 s instead of 0.91–1.19 s on this 2-core machine, with the same
weights to 1e-15 (``benchmarks/optimizer.py``); faer's threads only contend with the rest of
the process and the other jobs on the cores.
"""

from __future__ import annotations

import cvxpy as cp

from pipelines.errors import OptimizationError

#: Options passed to a solver on every solve (see the module docstring for why).
OPTIONS: dict[str, dict[str, object]] = {"CLARABEL": {"direct_solve_method": "qdldl"}}


def solve(problem: cp.Problem, solver: str, what: str) -> None:
    """Solve ``problem`` with ``solver``; anything but ``optimal`` raises OptimizationError."""
    if solver == "HIGHS":
        raise OptimizationError(
            f"{what}: SOLVER=HIGHS is not used for these quadratic problems (it hangs); "
            "choose CLARABEL, OSQP or SCS"
        )
    if solver not in cp.installed_solvers():
        raise OptimizationError(
            f"solver {solver} is not installed; choose SOLVER from {cp.installed_solvers()}"
        )
    try:
        problem.solve(solver=solver, **OPTIONS.get(solver, {}))
    except (cp.error.SolverError, cp.error.DCPError, cp.error.DPPError) as exc:
        raise OptimizationError(
            f"{what}: solver {solver} failed: {exc}; try another SOLVER"
        ) from exc
    if problem.status != cp.OPTIMAL:
        raise OptimizationError(
            f"{what}: solver {solver} returned status {problem.status!r}; no plan and no orders "
            "are produced. Loosen the constraints or try another SOLVER"
        )
