"""Real services for the tests (sshd, slapd, the SS 12000 server), started on loopback."""
