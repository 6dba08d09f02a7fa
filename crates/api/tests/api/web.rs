//! The web client's files come from the binary: right types, revalidation
//! by ETag, and a problem for a name that is not there.

use crate::helpers::*;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_and_assets_are_served_with_their_content_types() {
    let app = spawn_embedded_app().await;
    for (path, content_type, marker) in [
        ("/", "text/html", "/assets/buyer.js"),
        ("/operator", "text/html", "/assets/operator.js"),
        ("/assets/api.js", "text/javascript", "export"),
        ("/assets/buyer.js", "text/javascript", "import"),
        ("/assets/operator.js", "text/javascript", "import"),
        ("/assets/app.css", "text/css", ":root"),
        ("/assets/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header(&response, CONTENT_TYPE).starts_with(content_type),
            "{path}"
        );
        assert_eq!(header(&response, CACHE_CONTROL), "no-cache", "{path}");
        assert!(header(&response, CONTENT_SECURITY_POLICY).contains("default-src 'self'"));
        assert!(!header(&response, ETAG).is_empty(), "{path}");
        assert!(response.text().await.unwrap().contains(marker), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_asset_revalidated_with_its_etag_is_not_sent_again() {
    let app = spawn_embedded_app().await;
    let first = app.get("/assets/app.css", None).await;
    let etag = header(&first, ETAG).to_owned();

    let again = app
        .client
        .get(app.url("/assets/app.css"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, ETAG), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let other = app
        .client
        .get(app.url("/assets/app.css"))
        .header(IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_asset_is_a_404_problem() {
    let app = spawn_embedded_app().await;
    let response = app.get("/assets/nothing.js", None).await;
    let problem = expect_problem(response, StatusCode::NOT_FOUND).await;
    assert!(problem["detail"].as_str().unwrap().contains("nothing.js"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_stay_out_of_the_api_description() {
    let app = spawn_embedded_app().await;
    let doc = expect_status(app.get("/api/openapi.json", None).await, StatusCode::OK).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths
        .keys()
        .all(|p| p.starts_with("/api/") || p.starts_with("/health/")));
}
