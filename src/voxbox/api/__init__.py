"""The HTTP/WebSocket edge: parse, authenticate, call one core function, shape the response."""
