//! SCIM 2.0 service provider (RFC 7643, RFC 7644): the schema table, filters, PATCH, resource
//! normalization and projection, listing, and the HTTP layer.

pub mod error;
pub mod filter;
pub mod http;
pub mod list;
pub mod patch;
pub mod resource;
pub mod schema;
