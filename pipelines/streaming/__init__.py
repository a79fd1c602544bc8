"""Real-time streaming: WebSocket clients, the event bus, the processor (docs/streaming.md).

Path of an event: Alpaca stream (``clients``) -> bus (``bus``, Redis Streams in
``redis_bus``) -> processor (``processor``: minute bars into ``minute_bars``, trade updates
into the orders ledger, intraday risk in ``risk``) -> warehouse, then the bus entry is
acknowledged. ``service`` wires them for ``mltrade stream``.
"""
