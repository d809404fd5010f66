//! Login, sessions, CSRF, throttling, security headers (RELIABILITY.md 22–26).

use crate::helpers::{PASSWORD, TestApp, retry_after, spawn_app, spawn_app_with, username};

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

/// Login throttling with a long base delay (30 s), so that no delay can run out while a test is
/// still looking at it; tests make time pass with [`let_delays_pass`] instead of sleeping.
async fn throttled_app() -> TestApp {
    spawn_app_with(|s| s.login_base_delay_secs = 30).await
}

/// Every login delay runs out (as if the clock had moved past them), the failure counts stay.
fn let_delays_pass(app: &TestApp) {
    use diesel::connection::SimpleConnection;
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    conn.batch_execute("UPDATE login_throttle SET not_before = NULL")
        .unwrap();
}

/// Finding A: ten wrong passwords for one username, sent from anywhere, used to lock the account
/// for 15 minutes, also for the right password from the doctor's own machine. Guesses spread
/// over many addresses now slow the account down only for addresses she has not signed in from
/// recently; from her own machine she gets in at once, from a new one after a short wait.
#[tokio::test]
async fn guesses_from_many_addresses_do_not_lock_the_doctor_out_of_her_own_machine() {
    let app = throttled_app().await;
    let user = username("clinician", "TWN-A");
    // She signs in at her usual machine (127.0.0.1) and out again.
    let mut own = app.client();
    assert_eq!(own.login(&user, PASSWORD).await.status(), 303);
    own.post_form("/logout", &[]).await;
    // An attacker guesses from eight addresses, three guesses each.
    let mut statuses = Vec::new();
    for host in 2..=9 {
        let mut attacker = app.client_from(&format!("127.0.0.{host}"));
        for i in 0..3 {
            let r = attacker.login(&user, &format!("guess-{host}-{i}")).await;
            statuses.push((r.status().as_u16(), retry_after(&r)));
        }
    }
    // Twenty failures cost nothing extra; the 21st makes every unknown address wait 30 s.
    let mut expected = vec![(401, None); 20];
    expected.push((401, Some(30)));
    assert_eq!(&statuses[..21], &expected[..], "{statuses:?}");
    for (status, wait) in &statuses[21..] {
        assert_eq!(*status, 429, "{statuses:?}");
        assert!(wait.is_some_and(|w| (1..=30).contains(&w)), "{statuses:?}");
    }
    // From her own machine the right password works at once.
    assert_eq!(
        own.login(&user, PASSWORD).await.status(),
        303,
        "the doctor is locked out of her own machine"
    );
    // From a machine she has not used she is slowed down, not locked out: a short wait …
    let mut elsewhere = app.client_from("127.0.0.99");
    let r = elsewhere.login(&user, PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r).is_some_and(|w| (1..=30).contains(&w)));
    assert!(elsewhere.cookie.is_none());
    // … after which the right password works there too.
    let_delays_pass(&app);
    assert_eq!(elsewhere.login(&user, PASSWORD).await.status(), 303);
}

/// Wrong passwords from one address for one username: five are free, then each failure doubles
/// the wait (announced as `Retry-After`); while waiting nothing is checked, not even the right
/// password (so a guess cannot be confirmed early). The same doctor elsewhere is not affected.
#[tokio::test]
async fn failed_logins_from_one_address_wait_longer_and_longer() {
    let app = throttled_app().await;
    let user = username("clinician", "TWN-B");
    let mut c = app.client_from("127.0.0.7");
    for _ in 0..5 {
        let r = c.login(&user, "wrong-password").await;
        assert_eq!((r.status().as_u16(), retry_after(&r)), (401, None));
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        let r = c.login(&user, "wrong-password").await;
        assert_eq!(r.status(), 401);
        waits.push(retry_after(&r));
        // While the wait runs even the right password is refused, unchecked.
        let r = c.login(&user, PASSWORD).await;
        assert_eq!(r.status(), 429);
        let limit = waits.last().copied().flatten().unwrap_or(0);
        assert!(retry_after(&r).is_some_and(|w| (1..=limit).contains(&w)));
        let body = r.text().await.unwrap();
        assert!(body.contains("秒后再试"), "{body}");
        assert!(c.cookie.is_none());
        let_delays_pass(&app);
    }
    assert_eq!(waits, vec![Some(30), Some(60), Some(120), Some(240)]);
    // Elsewhere she signs in as usual, also while 127.0.0.7 waits.
    let r = c.login(&user, "wrong-password").await;
    assert_eq!(retry_after(&r), Some(480));
    assert_eq!(app.client().login(&user, PASSWORD).await.status(), 303);
    // The right password ends the run for that address.
    let_delays_pass(&app);
    assert_eq!(c.login(&user, PASSWORD).await.status(), 303);
    let r = c.login(&user, "wrong-password").await;
    assert_eq!((r.status().as_u16(), retry_after(&r)), (401, None));
}

/// One address trying many usernames (password spraying): twenty failures are free, then the
/// address waits, whatever username it types next. Other addresses are not affected.
#[tokio::test]
async fn an_address_trying_many_usernames_is_slowed_down() {
    let app = throttled_app().await;
    let mut c = app.client_from("127.0.0.8");
    for i in 0..20 {
        let r = c.login(&format!("staff{i}"), "Spring2026!").await;
        assert_eq!((r.status().as_u16(), retry_after(&r)), (401, None), "attempt {i}");
    }
    let r = c.login("staff20", "Spring2026!").await;
    assert_eq!((r.status().as_u16(), retry_after(&r)), (401, Some(30)));
    let r = c.login(&username("clinician", "TWN-A"), PASSWORD).await;
    assert_eq!(r.status(), 429, "the address waits whatever username it types");
    assert_eq!(
        app.client_from("127.0.0.9")
            .login(&username("clinician", "TWN-A"), PASSWORD)
            .await
            .status(),
        303
    );
}

/// The throttle answers an unknown username exactly as it answers a real one (status, wait,
/// page), so it does not tell which usernames exist.
#[tokio::test]
async fn the_throttle_does_not_reveal_whether_a_user_exists() {
    let app = throttled_app().await;
    let real = username("clinician", "TWN-A");
    let unknown = "nobody.at.all";
    let mut answers = Vec::new();
    for (addr, name) in [("127.0.0.10", real.as_str()), ("127.0.0.11", unknown)] {
        let mut c = app.client_from(addr);
        let mut seen = Vec::new();
        for _ in 0..8 {
            let r = c.login(name, "wrong-password").await;
            let (status, wait) = (r.status().as_u16(), retry_after(&r));
            // A wait still running is shown in whole seconds; the two runs may be a second apart.
            let mut body = r.text().await.unwrap().replace(name, "U");
            if let (429, Some(w)) = (status, wait) {
                body = body.replace(&format!("{w} 秒"), "N 秒");
            }
            seen.push((status, wait.map(|w| status == 429 || w == 30), body));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][6].0, 429);
}

/// An administrator sees who is being made to wait, from where, and clears it on
/// `/admin/login-locks`; the wait starting and its clearing are in the audit log. Other roles
/// are refused the page.
#[tokio::test]
async fn an_administrator_sees_and_clears_a_login_wait_and_both_are_audited() {
    let app = throttled_app().await;
    let user = username("clinician", "TWN-A");
    let mut c = app.client_from("127.0.0.5");
    for _ in 0..6 {
        assert_eq!(c.login(&user, "wrong-password").await.status(), 401);
    }
    assert_eq!(c.login(&user, PASSWORD).await.status(), 429);

    let mut clinician = app.login("clinician", "TWN-B").await;
    assert_eq!(clinician.get("/admin/login-locks").await.status, 403);
    let refused = clinician
        .post_form("/admin/login-locks/clear", &[("username", user.as_str())])
        .await;
    assert_eq!(refused.status, 403);

    let mut admin = app.login("admin", "PROV").await;
    let home = admin.get("/").await;
    assert!(
        home.body.contains("href=\"/admin/login-locks\""),
        "the administrators' menu links the page"
    );
    let page = admin.get("/admin/login-locks").await;
    assert_eq!(page.status, 200);
    let row = page
        .body
        .split("<tr class=\"lock-pair\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no pair row: {}", page.body));
    assert!(
        row.contains(&user) && row.contains("127.0.0.5") && row.contains("<td>6</td>"),
        "{row}"
    );
    assert!(row.contains("秒"), "the running wait is shown: {row}");

    let done = admin
        .post_form(
            "/admin/login-locks/clear",
            &[("username", user.as_str()), ("address", "")],
        )
        .await;
    assert_eq!(done.status, 303);
    let page = admin.get(done.location.as_deref().unwrap()).await;
    assert!(page.body.contains("已解除"), "{}", page.body);
    assert!(!page.body.contains("lock-pair"), "{}", page.body);
    // Cleared: she signs in from that address at once.
    assert_eq!(c.login(&user, PASSWORD).await.status(), 303);
    // Clearing nothing is refused with a reason.
    let empty = admin
        .post_form("/admin/login-locks/clear", &[("username", " "), ("address", "")])
        .await;
    assert_eq!(empty.status, 422);

    let mut auditor = app.login("auditor", "PROV").await;
    let log = auditor.get(&format!("/audit?actor={user}")).await;
    assert!(
        log.body.contains("login_lock"),
        "the wait starting is audited: {}",
        log.body
    );
    assert!(log.body.contains(&format!("pair:{user}@127.0.0.5")), "{}", log.body);
    let log = auditor.get("/audit?actor=admin.prov").await;
    assert!(
        log.body.contains("login_unlock"),
        "the clearing is audited: {}",
        log.body
    );
    assert!(log.body.contains(&format!("username {user}")), "{}", log.body);
}

/// Behind a reverse proxy (`MCH_TRUSTED_PROXIES`) the throttle sees each client's own address, as
/// the proxy forwards it, instead of one shared proxy address; a client that is not a trusted
/// proxy cannot pick an address by sending `X-Forwarded-For` itself.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_is_throttled_on_its_own() {
    let app = spawn_app_with(|s| {
        s.login_base_delay_secs = 30;
        s.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    let user = username("clinician", "TWN-A");
    let attempt = |from: &'static str, forwarded_for: &'static str, password: &'static str| {
        let (c, base, user) = (app.client_from(from), app.base.clone(), user.clone());
        async move {
            c.http
                .post(format!("{base}/login"))
                .header("x-forwarded-for", forwarded_for)
                .form(&[("username", user.as_str()), ("password", password)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Through the proxy, a guesser at 203.0.113.66 starts to wait …
    for _ in 0..6 {
        assert_eq!(attempt("127.0.0.1", "203.0.113.66", "wrong-password").await, 401);
    }
    assert_eq!(attempt("127.0.0.1", "203.0.113.66", PASSWORD).await, 429);
    // … and someone not behind the proxy claiming to be at 203.0.113.10 is counted as himself.
    for _ in 0..6 {
        assert_eq!(attempt("127.0.0.3", "203.0.113.10", "wrong-password").await, 401);
    }
    // The doctor at 203.0.113.10, through the same proxy, signs in.
    assert_eq!(attempt("127.0.0.1", "203.0.113.10", PASSWORD).await, 303);
    let locks = mch_chain::auth::service::login_locks(&app.db, mch_chain::auth::service::Operator::CommandLine)
        .await
        .unwrap();
    let mut pairs: Vec<&str> = locks
        .iter()
        .filter(|l| l.kind == mch_chain::auth::model::ThrottleKind::Pair)
        .map(|l| l.address.as_str())
        .collect();
    pairs.sort_unstable();
    assert_eq!(pairs, ["127.0.0.3", "203.0.113.66"]);
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
