"""The simulated venue's position arithmetic: average cost on known answers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.execution.brokers.simulated import _moved


@pytest.mark.parametrize(
    ("qty", "avg", "signed", "price", "expected"),
    [
        (0, 0.0, 100, 10.0, (100, 10.0)),  # opened at the fill price
        (100, 10.0, 100, 12.0, (200, 11.0)),  # added: the cost averages
        (200, 11.0, -50, 20.0, (150, 11.0)),  # reduced: the cost stays
        (150, 11.0, -150, 9.0, (0, 0.0)),  # closed
        (100, 10.0, -300, 8.0, (-200, 8.0)),  # crossed zero: a new short at the fill price
        (-200, 8.0, -200, 6.0, (-400, 7.0)),  # a short added to averages too
        (-400, 7.0, 100, 5.0, (-300, 7.0)),  # and covered in part keeps its cost
    ],
)
def test_average_cost(qty, avg, signed, price, expected) -> None:
    after, cost = _moved(Decimal(qty), avg, Decimal(signed), price)
    assert (after, cost) == (Decimal(expected[0]), pytest.approx(expected[1], rel=1e-15))
