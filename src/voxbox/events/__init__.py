"""Realtime fan-out: the EventBus carries committed events to the processes holding sockets."""
