//! Benchmarks of safecity: edge throughput against its decode and inference
//! ceilings, latency from frame to alert, and server ingest and query rates.
//! The figures go to `BENCHMARKS.md` through `make bench`.

pub mod server;
