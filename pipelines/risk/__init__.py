"""Pre-trade risk: the persisted kill switch and the gate every plan passes before orders."""
