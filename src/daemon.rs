//! Wires the daemon.
