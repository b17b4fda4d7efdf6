//! The server, driven over HTTP: through the router without a socket
//! (`api`, `trajectory`, `alerts`, `webhooks`, `openapi`, `retention`) and as
//! the real binary on a loopback port (`socket`). Most run on both
//! backends: SQLite, and PostgreSQL on a server the tests start (`pg`).

mod alerts;
mod api;
mod layers;
mod openapi;
mod pg;
mod plate_index;
mod postgres;
mod retention;
mod socket;
mod support;
mod tls;
mod trajectory;
mod webhooks;
