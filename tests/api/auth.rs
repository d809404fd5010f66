//! Login, sessions, CSRF, throttling, security headers (RELIABILITY.md 22–26).

use crate::helpers::{PASSWORD, spawn_app, username};

#[tokio::test]
async fn login_sets_a_secure_httponly_strict_cookie_and_a_new_session_each_time() {
    let app = spawn_app().await;
    let mut c = app.client();
    let r = c.login(&username("clinician", "TWN-A"), PASSWORD).await;
    assert_eq!(r.status(), 303);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    let first = c.cookie.clone().unwrap();
    c.login(&username("clinician", "TWN-A"), PASSWORD).await;
    assert_ne!(c.cookie.clone().unwrap(), first, "a new session id on every login");
    assert_eq!(c.get("/").await.status, 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    let mut c = app.client();
    let wrong = c.login(&username("clinician", "TWN-A"), "not-the-password").await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = wrong.text().await.unwrap();
    let unknown = c.login("nobody.at.all", "not-the-password").await;
    assert_eq!(unknown.status(), 401);
    let unknown_body = unknown.text().await.unwrap();
    assert!(wrong_body.contains("用户名或密码错误"));
    assert_eq!(
        wrong_body.replace(&username("clinician", "TWN-A"), "U"),
        unknown_body.replace("nobody.at.all", "U"),
        "the page must not reveal whether the user exists"
    );
    assert!(c.cookie.is_none());
}

#[tokio::test]
async fn ten_failed_logins_lock_the_username_even_for_the_right_password() {
    let app = spawn_app().await;
    let mut c = app.client();
    let user = username("clinician", "TWN-A");
    for _ in 0..10 {
        assert_eq!(c.login(&user, "wrong-password").await.status(), 401);
    }
    let r = c.login(&user, PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(c.cookie.is_none());
    // Another user is not affected.
    assert_eq!(c.login(&username("clinician", "TWN-B"), PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let stolen = c.cookie.clone();
    let out = c.post_form("/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login"));
    c.cookie = stolen; // replaying the old cookie must not work
    let page = c.get("/").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn an_idle_session_expires_after_thirty_minutes() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    assert_eq!(c.get("/").await.status, 200);
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    let old = (chrono::Utc::now().naive_utc() - chrono::Duration::minutes(31))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    conn.batch_execute(&format!("UPDATE sessions SET last_seen_at = '{old}'"))
        .unwrap();
    let page = c.get("/").await;
    assert_eq!(page.status, 303, "idle session must be refused");
}

#[tokio::test]
async fn pages_and_api_need_authentication_but_health_does_not() {
    let app = spawn_app().await;
    let mut c = app.client();
    for path in [
        "/",
        "/persons",
        "/persons/01a20f1b-10ad-7542-aa4c-f351d47077ed",
        "/audit",
    ] {
        let p = c.get(path).await;
        let back = if path == "/" {
            "/login".to_string()
        } else {
            format!("/login?next={path}")
        };
        assert_eq!(
            (path, p.status, p.location.as_deref()),
            (path, 303, Some(back.as_str()))
        );
    }
    for path in ["/api/worklist", "/api/persons?q=x"] {
        let (status, body) = c.get_json(path).await;
        assert_eq!(status, 401, "{path}");
        assert!(body["error"].is_string());
    }
    let (status, _) = c.post_json("/api/card-reads", &serde_json::json!({})).await;
    assert_eq!(status, 401);
    let r = reqwest::get(format!("{}/api/worklist", app.base)).await.unwrap();
    assert_eq!(r.status(), 401);
    let (status, _) = c.get_json("/healthz").await;
    assert_eq!(status, 200);
    // A made-up bearer token is refused.
    let r = reqwest::Client::new()
        .get(format!("{}/api/worklist", app.base))
        .bearer_auth("ab".repeat(32))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn state_changing_requests_without_a_csrf_token_or_from_another_site_are_refused() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let id = "01a20f1b-10ad-7542-aa4c-f351d47077ed";
    let routes = [
        "/logout".to_string(),
        "/persons".into(),
        format!("/persons/{id}/pregnancies"),
        format!("/pregnancies/{id}/visits"),
    ];
    for route in &routes {
        let p = c.post_form_raw(route, &[("name", "王小红")]).await;
        assert_eq!(p.status, 403, "{route} without a CSRF token");
        let p = c
            .post_form_raw(route, &[("csrf_token", &"0".repeat(64)), ("name", "王小红")])
            .await;
        assert_eq!(p.status, 403, "{route} with a wrong CSRF token");
    }
    // The JSON API with the session cookie needs the X-CSRF-Token header too.
    c.csrf = None;
    let (status, _) = c
        .post_json(
            "/api/persons",
            &serde_json::json!({"name": "王小红", "birth_date": "1990-01-01"}),
        )
        .await;
    assert_eq!(status, 403);
    // A foreign Origin is refused before anything runs, even with a valid token.
    c.get("/persons").await;
    let token = c.csrf.clone().unwrap();
    let r = c
        .http
        .post(format!("{}/persons", app.base))
        .header("cookie", format!("mch_session={}", c.cookie.clone().unwrap()))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", "王小红"),
            ("birth_date", "1990-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, found) = c.get_json("/api/persons?q=王小红").await;
    assert_eq!(found["persons"].as_array().unwrap().len(), 0, "nothing was created");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    for path in [
        "/login",
        "/",
        "/persons",
        "/healthz",
        "/api/worklist",
        "/no-such-page",
        "/static/app.css",
    ] {
        let r = c
            .http
            .get(format!("{}{path}", app.base))
            .header("cookie", format!("mch_session={}", c.cookie.clone().unwrap()))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        for name in [
            "content-security-policy",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
            "strict-transport-security",
        ] {
            assert!(h.contains_key(name), "{path} lacks {name}");
        }
    }
    assert_eq!(c.get("/no-such-page").await.status, 404);
}
