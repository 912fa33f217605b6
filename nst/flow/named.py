"""Flow estimators by name, as the metrics command and ``metrics_flow`` name them, and the rule that picks a flow
for E_warp that the measured method did not use.

E_warp (Lai et al. 2018) warps each output frame with a flow of the input. An optimizer method whose temporal loss
was minimised under that same flow is scored by the criterion it optimised, which flatters it against methods that
never saw the flow (a fast network, ``naive``); measured with another estimator, every method faces the same,
independent test. ``auto`` therefore takes Farneback for a method that used DIS, and DIS for one that used
Farneback or RAFT (or no flow at all).
"""

from __future__ import annotations

from nst.errors import NSTError
from nst.flow.estimator import FlowEstimator

ESTIMATORS = ("dis", "farneback", "raft")
METRICS_FLOWS = ("auto", *ESTIMATORS)


def build_estimator(name: str, weights: str | None = None) -> FlowEstimator:
    """The flow estimator ``name`` (dis | farneback | raft) with its default settings (RAFT: ``weights``)."""
    if name not in ESTIMATORS or (weights is not None and name != "raft"):
        raise NSTError(f"flow must be one of {', '.join(ESTIMATORS)} (flow.weights only with raft), got flow={name}")
    if name == "raft":
        from nst.flow.raft import RAFTFlow  # torchvision's RAFT only when asked for

        return RAFTFlow(weights=weights or "DEFAULT")
    from nst.flow.opencv import DISFlow, FarnebackFlow

    return DISFlow() if name == "dis" else FarnebackFlow()


def metrics_flow(choice: str, used: str | None) -> str:
    """The estimator E_warp is measured with: ``choice``, or for ``auto`` one the method did not use.

    ``used``: the method's estimator, as its config's ``_target_`` or its ``name`` (``dis-medium``,
    ``nst.flow.opencv.FarnebackFlow``, ...); ``None`` when it used no flow.
    """
    choice = str(choice)
    if choice not in METRICS_FLOWS:
        raise NSTError(f"metrics_flow must be one of {', '.join(METRICS_FLOWS)}, got {choice!r}")
    if choice != "auto":
        return choice
    return "farneback" if family(used) == "dis" else "dis"


def family(estimator: str | None) -> str | None:
    """``dis``, ``farneback`` or ``raft`` for an estimator's ``_target_`` or ``name``; None if it is none of them."""
    name = str(estimator or "").rsplit(".", 1)[-1].lower()
    return next((f for f in ESTIMATORS if name.startswith(f)), None)
