//! The web client: static pages compiled into the binary (`crates/api/web`),
//! served in every mode with no build step and nothing fetched elsewhere.
//! The pages are clients of the public API like any other; they stay out of
//! the OpenAPI document, like `/metrics`.

use crate::error::ApiError;
use actix_web::http::header::{
    ETag, EntityTag, Header, IfNoneMatch, CACHE_CONTROL, CONTENT_SECURITY_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{route, web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One embedded file: the name it is served under, its type, its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../web/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("operator.html", HTML),
    asset!("app.css", CSS),
    asset!("api.js", JS),
    asset!("buyer.js", JS),
    asset!("operator.js", JS),
    asset!("operator.css", CSS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// Each asset's strong ETag, computed once: a digest of its bytes.
static ETAGS: LazyLock<Vec<EntityTag>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
            EntityTag::new_strong(hex)
        })
        .collect()
});

/// Only this origin: no inline script, no third-party anything.
const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// Revalidate every time: a new binary may carry new assets under the same name.
const NO_CACHE: &str = "no-cache";

/// The buyer's page.
#[route("/", method = "GET", method = "HEAD")]
pub async fn buyer_page(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, "index.html")
}

/// The operator's page.
#[route("/operator", method = "GET", method = "HEAD")]
pub async fn operator_page(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, "operator.html")
}

/// The scripts and styles the pages load.
#[route("/assets/{name}", method = "GET", method = "HEAD")]
pub async fn asset_file(
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &name)
}

/// The routes of the web client (not part of the documented API).
pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.service(buyer_page)
        .service(operator_page)
        .service(asset_file);
}

/// 200 with the asset, or 304 when `If-None-Match` names its tag, or 404.
fn serve(req: &HttpRequest, name: &str) -> Result<HttpResponse, ApiError> {
    let index = ASSETS
        .iter()
        .position(|a| a.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no asset named {name:?}")))?;
    let asset = &ASSETS[index];
    let tag = &ETAGS[index];
    let unchanged = match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(items)) => items.iter().any(|t| t.weak_eq(tag)),
        Err(_) => false,
    };
    let mut response = match unchanged {
        true => HttpResponse::NotModified(),
        false => HttpResponse::Ok(),
    };
    response
        .insert_header(ETag(tag.clone()))
        .insert_header((CACHE_CONTROL, NO_CACHE))
        .insert_header((CONTENT_SECURITY_POLICY, CSP))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"));
    Ok(match unchanged {
        true => response.finish(),
        false => response.content_type(asset.content_type).body(asset.bytes),
    })
}
