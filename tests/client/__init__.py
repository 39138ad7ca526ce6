"""Bybit's wire format (scalper/bybit) without a network: signing, the REST client
against an httpx mock transport, the WebSockets and streams against in-memory fakes,
parsing of Bybit's documented payloads (tests/fixtures/bybit)."""
