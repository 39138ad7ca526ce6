"""The client and the simulated exchange together over loopback (127.0.0.1), and
third-party clients (pybit, ccxt) against the simulator."""
