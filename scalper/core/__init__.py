"""The sans-IO trading core: pure decisions, no trio, no sockets, no clock reads.

Every module here is fed plain events (with timestamps as data) and returns plain
values or commands, so the same code runs live, against the simulator and in replay,
and is tested with lists of events.
"""
