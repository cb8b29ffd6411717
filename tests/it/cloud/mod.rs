//! The cloud path's fan-out and grace period, end to end through the API
//! Gateway stand-in on moto: the presence table's stream → `fanout` → the
//! push FIFO queue → `push`, and the settle queue's delayed messages →
//! `settle`, as Lambda's event source mappings run them.

mod grace;
mod order;
mod retry;
