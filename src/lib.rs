//! idpsync receives users and groups from an identity provider over SCIM 2.0, keeps them in
//! one redb file, maps the IdP's groups to permissions from TOML files, and syncs the
//! organization on a schedule, on SIGHUP, or on a control-socket command.
//!
//! Modules:
//! - `config`: the TOML config file, validated, paths resolved.
//! - `store`: the redb file, its tables, the batching writer, the directory and tokens.
//! - `scim`: the SCIM protocol (schema table, filters, PATCH, lists, HTTP handlers).
//! - `server`: the HTTPS listener; `tls`: certificates and reload.
//! - `sync`: the organization, sync runs, audit history, effective access, export.
//! - `permissions`: permission files, their validation and watching.
//! - `control`: the control socket (HTTP over a Unix socket), server and client.
//! - `scheduler`: the cron schedule; `daemon`: wires everything for `idpsync serve`.
//! - `cli`: the command line; `metrics`: Prometheus metrics.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod logging;
pub mod metrics;
pub mod permissions;
pub mod scheduler;
pub mod scim;
pub mod server;
pub mod store;
pub mod sync;
pub mod tls;
