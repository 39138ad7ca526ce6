"""The whole bot against the simulated exchange: in process, and as a process (CLI,
systemd, tmux), with faults."""
