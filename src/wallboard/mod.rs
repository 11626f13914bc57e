//! The supervisor wallboard, embedded in the binary: nothing loads from
//! outside. Served at `/`.

use crate::hub::Hub;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

const INDEX: &str = include_str!("index.html");

pub fn routes() -> Router<Arc<Hub>> {
    Router::new().route("/", get(|| async { Html(INDEX) }))
}
