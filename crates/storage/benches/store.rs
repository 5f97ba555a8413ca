//! Storage throughput against raw fjall (being written).

fn main() {}
