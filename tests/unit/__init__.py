"""Pure core (scalper/core): the engine and its table, book, signals, risk, scanner,
instrument rounding, the day book, and the import rules of the whole package (the
README's arrows). No trio, no sockets, no clock: events in, commands out."""
