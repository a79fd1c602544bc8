"""Operations: structured logging with redaction, Prometheus metrics, start-up checks."""
