"""The trio tasks of scalper/app under trio's MockClock, against fakes of the
exchange: execution, reconcile, the strategy runner, journal, status, remote control."""
