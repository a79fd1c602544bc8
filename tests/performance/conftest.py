from tests.support.stream_fixtures import bus_prefix, redis_server, redis_url  # noqa: F401
