"""The simulated broker: a real implementation of the contract, its book in the warehouse.

Market-on-open orders for session D fill at D's open from ``bars`` once that bar exists,
priced by the one cost model (:class:`pipelines.execution.costs.CostModel`: half the spread,
slippage, and impact in proportion to the order's share of the average volume of the
:data:`ADV_SESSIONS` sessions before D) and charged ``COMMISSION_PER_SHARE``. Fill ids
are ``{client_order_id}-1``; each fill moves positions and cash in the transaction that makes
it, so replaying a step changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.errors import BrokerError
from pipelines.execution.brokers.base import AccountSnapshot, BrokerOrder, OrderIntent
from pipelines.execution.costs import CostModel

NAME = "simulated"
ADV_SESSIONS = 21  # average daily volume window for market impact (sessions before the fill)


class SimulatedBroker:
    name = NAME
    #: Orders are stamped by the warehouse's clock (``now()``, their insert's start), which
    #: :meth:`now` reads: the overlap only covers an insert still uncommitted while listing.
    listing_overlap = timedelta(seconds=5)

    def __init__(
        self, engine: sa.Engine, settings: Settings, costs: CostModel | None = None
    ) -> None:
        self._engine = engine
        self.costs = costs or CostModel.from_settings(settings)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO broker_accounts (broker, initial_cash, cash) "
                    "VALUES (:b, :c, :c) ON CONFLICT (broker) DO NOTHING"
                ),
                {"b": NAME, "c": settings.initial_capital},
            )

    def submit_order(self, intent: OrderIntent) -> BrokerOrder:
        with self._engine.begin() as conn:
            inserted = conn.execute(
                sa.text(
                    "INSERT INTO sim_broker_orders (broker_order_id, client_order_id, "
                    "symbol, side, qty, session_date, status) VALUES (:id, :c, :s, :side, "
                    ":q, :d, 'accepted') ON CONFLICT (client_order_id) DO NOTHING "
                    "RETURNING *, 0 AS filled"
                ),
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, intent.client_order_id)),
                    "c": intent.client_order_id,
                    "s": intent.symbol,
                    "side": intent.side,
                    "q": intent.qty,
                    "d": intent.session_date,
                },
            ).one_or_none()
        if inserted is not None:
            return self._order(inserted)
        order = self.get_order_by_client_id(intent.client_order_id)
        if order is None:  # cannot happen: the row existed
            raise BrokerError(f"order {intent.client_order_id} vanished from the book")
        if (order.symbol, order.side, order.qty) != (
            intent.symbol,
            intent.side,
            intent.qty,
        ):
            raise BrokerError(
                f"client_order_id {intent.client_order_id} is already used by another order"
            )
        return order  # a known id returns the order it names, as Alpaca's 422 lookup does

    _SELECT = (
        "SELECT o.*, coalesce(f.qty, 0) AS filled FROM sim_broker_orders o "
        "LEFT JOIN fills f ON f.client_order_id = o.client_order_id "
    )

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.text(self._SELECT + "WHERE o.client_order_id = :c"), {"c": client_order_id}
            ).one_or_none()
        return None if row is None else self._order(row)

    def now(self) -> datetime:
        with self._engine.connect() as conn:
            return conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()

    def list_orders(self, since: datetime | None = None) -> list[BrokerOrder]:
        where = "" if since is None else "WHERE o.submitted_at > :since "
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.text(self._SELECT + where + "ORDER BY o.submitted_at"), {"since": since}
            ).all()
        return [self._order(row) for row in rows]

    @staticmethod
    def _order(row: sa.Row) -> BrokerOrder:
        return BrokerOrder(
            row.broker_order_id,
            row.client_order_id,
            row.symbol,
            row.side,
            Decimal(row.qty),
            row.status,
            Decimal(row.filled),
        )

    def process_fills(self) -> int:
        """Fill every accepted order whose session's open is known; return fills made.

        One book writer at a time (the account row is locked first), so each due order is
        filled, and moves the book, exactly once.
        """
        with self._engine.begin() as conn:
            conn.execute(
                sa.text("SELECT 1 FROM broker_accounts WHERE broker = :b FOR UPDATE"),
                {"b": NAME},
            )
            due = conn.execute(
                sa.text("""
                SELECT o.client_order_id, o.symbol, o.side, o.qty,
                       o.session_date, b.open,
                       (SELECT avg(v.volume) FROM (
                            SELECT volume FROM bars p WHERE p.symbol = o.symbol
                            AND p.session_date < o.session_date
                            ORDER BY p.session_date DESC LIMIT :adv) v) AS adv
                FROM sim_broker_orders o
                JOIN bars b ON b.symbol = o.symbol AND b.session_date = o.session_date
                WHERE o.status = 'accepted' ORDER BY o.client_order_id"""),
                {"adv": ADV_SESSIONS},
            ).all()
            if not due:
                return 0
            fills = [self._fill(row) for row in due]
            conn.execute(
                sa.text(
                    "UPDATE sim_broker_orders SET status = 'filled' "
                    "WHERE client_order_id = ANY(:c)"
                ),
                {"c": [f["c"] for f in fills]},
            )
            conn.execute(
                sa.text("""
                INSERT INTO fills (fill_id, client_order_id, symbol, side, qty, price,
                                   commission, filled_at)
                VALUES (:c || '-1', :c, :s, :side, :q, :p, :fee,
                        (CAST(:d AS date) + time '09:30') AT TIME ZONE 'America/New_York')"""),
                fills,
            )
            self._book(conn, fills)
        return len(due)

    def _fill(self, row: sa.Row) -> dict:
        adv = float(row.adv) if row.adv is not None else 0.0  # no history: no impact term
        price = self.costs.fill_price(row.side, float(row.open), float(row.qty), adv)
        return {
            "c": row.client_order_id,
            "s": row.symbol,
            "side": row.side,
            "q": Decimal(row.qty),
            "p": price,
            "fee": self.costs.commission(float(row.qty)),
            "d": row.session_date,
        }

    def _book(self, conn: sa.Connection, fills: list[dict]) -> None:
        """Move positions (shares; average cost in USD) and cash by ``fills``, in order."""
        held = {
            r.symbol: (Decimal(r.qty), r.avg_price)
            for r in conn.execute(
                sa.text(
                    "SELECT symbol, qty, avg_price FROM positions "
                    "WHERE broker = :b AND symbol = ANY(:s)"
                ),
                {"b": NAME, "s": sorted({f["s"] for f in fills})},
            )
        }
        spent = 0.0
        for f in fills:
            signed = f["q"] if f["side"] == "buy" else -f["q"]
            held[f["s"]] = _moved(*held.get(f["s"], (Decimal(0), 0.0)), signed, f["p"])
            spent += float(signed) * f["p"] + f["fee"]
        conn.execute(
            sa.text("DELETE FROM positions WHERE broker = :b AND symbol = ANY(:s)"),
            {"b": NAME, "s": list(held)},
        )
        open_ = [{"b": NAME, "s": s, "q": q, "p": p} for s, (q, p) in held.items() if q != 0]
        if open_:
            conn.execute(
                sa.text(
                    "INSERT INTO positions (broker, symbol, qty, avg_price) "
                    "VALUES (:b, :s, :q, :p)"
                ),
                open_,
            )
        conn.execute(
            sa.text("UPDATE broker_accounts SET cash = cash - :x WHERE broker = :b"),
            {"b": NAME, "x": spent},
        )

    def get_positions(self) -> dict[str, Decimal]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT symbol, qty FROM positions WHERE broker = :b"), {"b": NAME}
            ).all()
        return {symbol: Decimal(qty) for symbol, qty in rows}

    def get_cash(self) -> float:
        with self._engine.connect() as conn:
            return float(
                conn.execute(
                    sa.text("SELECT cash FROM broker_accounts WHERE broker = :b"), {"b": NAME}
                ).scalar_one()
            )

    def get_account_snapshot(self) -> AccountSnapshot:
        """Cash and positions in one REPEATABLE READ transaction: a fill committed meanwhile
        is either wholly in both or in neither."""
        with self._engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                rows = conn.execute(
                    sa.text("SELECT symbol, qty FROM positions WHERE broker = :b"), {"b": NAME}
                ).all()
                cash = conn.execute(
                    sa.text("SELECT cash FROM broker_accounts WHERE broker = :b"), {"b": NAME}
                ).scalar_one()
        return AccountSnapshot(float(cash), {symbol: Decimal(qty) for symbol, qty in rows})


def _moved(qty: Decimal, avg_price: float, signed: Decimal, price: float) -> tuple[Decimal, float]:
    """A position (shares, average cost USD) after trading ``signed`` shares at ``price``:
    adding to it averages the cost, reducing it keeps the cost, crossing zero starts anew."""
    after = qty + signed
    if after == 0:
        return after, 0.0
    if qty == 0 or (qty > 0) == (signed > 0):
        return after, (float(abs(qty)) * avg_price + float(abs(signed)) * price) / float(abs(after))
    if (after > 0) == (qty > 0):
        return after, avg_price
    return after, price
