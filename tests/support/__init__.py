"""Test support shared by the tests and the benchmark (`bench/` imports it): the reference WebRTC client,
a gateway on 127.0.0.1 (in this process or its own), local services (redis-server), the ASR harness and the
virtual-clock session harness."""
